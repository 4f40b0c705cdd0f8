"""Fused residual-block benchmark: fused_conv3x3 = conv3x3(SiLU(GroupNorm(x))) + bias + residual,
the Pallas kernel against the XLA composition, forward and forward+backward.

    python -m benchmarks.fused [--shapes unet|8x32x32x256:256,...] [--dtypes float32,bfloat16]
        [--impls xla,pallas] [--passes fwd,fwdbwd] [--groups 32] [--repeats 10]
        [--out benchmark_results/fused]

Runs unchanged on a GPU: there both implementations are timed. On the CPU the Pallas
kernel runs only in Pallas interpret mode (a correctness tool, orders of magnitude slow),
so only the XLA composition is timed and the run says so. Shapes are BxHxWxCIN:COUT
(3x3, stride 1, SAME, with a residual); "unet" = the residual-block convolutions of a
UNet at resolutions 128 to 16 with widths 64 to 512.

Every program is compiled outside the timers and its forward output checked against the
float64 NumPy reference (fused_resblock_reference) first. Then `--repeats` rounds call
every candidate once in turn, with a 2048-square matrix product of the same dtype, so
load from other processes hits all alike; "% matmul" compares with that rate. GFLOP/s
count the convolution only, 2 * B * H * W * Cin * Cout * 9 for the forward pass and 3
times that for forward+backward (the normalization's few FLOPs per element are left out).
Memory: XLA's compiled memory_analysis() per program. Writes fused.json and fused.md.
"""

import argparse
import functools
import os
import pathlib
import re
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from genjax.kernels import fused_resblock
from genjax.kernels.fused_resblock_reference import fused_conv3x3_reference

PRESETS = {"unet": ["8x128x128x64:64", "8x64x64x128:128", "8x32x32x256:256", "8x16x16x512:512"]}
PASSES = ("fwd", "fwdbwd")
MATMUL_N = 2048
# Forward output against float64 (relative L2). float32 allows TF32 products: XLA's and
# Pallas's default matmul precision on recent NVIDIA GPUs.
TOL = {"float32": 2e-3, "bfloat16": 2e-2}
_SHAPE_RE = re.compile(r"^(\d+)x(\d+)x(\d+)x(\d+)(?:->|:)(\d+)$")


def parse_shapes(spec: str) -> list[tuple[int, ...]]:
  out = []
  for text in (t for part in spec.split(",") for t in PRESETS.get(part.strip(), [part])):
    m = _SHAPE_RE.match(text.strip())
    if not m:
      raise ValueError(f"--shapes: {text!r} is not BxHxWxCIN:COUT")
    out.append(tuple(map(int, m.groups())))
  return out


def _operands(shape, dtype):
  """float64 NumPy operands, and the same as JAX arrays (parameters float32, as in flax)."""
  b, h, w, cin, cout = shape
  rng = np.random.default_rng(0)
  ops = {"x": rng.standard_normal((b, h, w, cin)) + 0.5,
         "w": rng.standard_normal((3, 3, cin, cout)) / np.sqrt(9 * cin),
         "gn_scale": 1 + 0.1 * rng.standard_normal(cin), "gn_bias": 0.1 * rng.standard_normal(cin),
         "bias": rng.standard_normal(cout), "residual": rng.standard_normal((b, h, w, cout))}
  arrays = {k: jnp.asarray(v, dtype if k in ("x", "w", "residual") else jnp.float32)
            for k, v in ops.items()}
  return ops, arrays, jnp.asarray(rng.standard_normal((b, h, w, cout)), dtype)


def _programs(impl: str, groups: int, arrays: dict, g) -> dict:
  """pass -> (compiled, args)."""
  def fwd(ops):
    return fused_resblock.fused_conv3x3(**ops, num_groups=groups, impl=impl)

  def fwdbwd(ops, g):
    y, vjp = jax.vjp(fwd, ops)
    return y, vjp(g)

  return {"fwd": (jax.jit(fwd).lower(arrays).compile(), (arrays,)),
          "fwdbwd": (jax.jit(fwdbwd).lower(arrays, g).compile(), (arrays, g))}


def bench_shape(shape, dtype: str, *, impls, passes, groups: int, repeats: int) -> list[dict]:
  b, h, w, cin, cout = shape
  ops, arrays, g = _operands(shape, jnp.dtype(dtype))
  ref = fused_conv3x3_reference(**ops, num_groups=groups)
  candidates, info = {}, {}
  for impl in impls:
    t = time.perf_counter()
    programs = _programs(impl, groups, arrays, g)
    compile_s = time.perf_counter() - t
    y = np.asarray(jax.block_until_ready(programs["fwd"][0](*programs["fwd"][1])), np.float64)
    err = float(np.linalg.norm(y - ref) / np.linalg.norm(ref))
    if err > TOL[dtype]:
      raise AssertionError(f"{impl} on {shape} {dtype}: relative error {err:.2e} against "
                           f"float64 > {TOL[dtype]}")
    for p in passes:
      compiled, args = programs[p]
      candidates[(impl, p)] = functools.partial(compiled, *args)
      mem = common.memory_analysis(compiled)
      info[(impl, p)] = {"compile_s": compile_s, "rel_err_fwd": err,
                         "args_mib": mem.get("argument", 0) / 2**20,
                         "temp_mib": mem.get("temp", 0) / 2**20}
  a = jnp.ones((MATMUL_N, MATMUL_N), dtype)
  matmul = jax.jit(lambda a, b: jnp.dot(a, b, preferred_element_type=jnp.float32)).lower(
      a, a).compile()
  candidates[("matmul", "")] = functools.partial(matmul, a, a)
  for fn in candidates.values():  # warm-up
    jax.block_until_ready(fn())
  times = {name: [] for name in candidates}
  for _ in range(repeats):
    for name, fn in candidates.items():
      times[name] += common.time_call(fn, repeats=1, warmup=0)
  matmul_gflops = 2 * MATMUL_N**3 / common.median(times.pop(("matmul", ""))) / 1e9
  fwd_flops = 2.0 * b * h * w * cin * cout * 9
  rows = []
  for (impl, p), ts in times.items():
    med = common.median(ts)
    gflops = fwd_flops * (1 if p == "fwd" else 3) / med / 1e9
    rows.append({"shape": f"{b}x{h}x{w}x{cin}->{cout}", "dtype": dtype, "pass": p, "impl": impl,
                 "median_ms": 1e3 * med, "min_ms": 1e3 * min(ts), "times_s": ts,
                 "gflops": gflops, "matmul_gflops": matmul_gflops,
                 "pct_matmul": 100 * gflops / matmul_gflops, **info[(impl, p)]})
  by = {(r["impl"], r["pass"]): r for r in rows}
  for r in rows:  # >1: faster than the XLA composition in the same rounds
    x = by.get(("xla", r["pass"]))
    r["vs_xla"] = x["median_ms"] / r["median_ms"] if x else None
  return rows


COLUMNS = [("shape", "shape", ""), ("dtype", "dtype", ""), ("pass", "pass", ""),
           ("impl", "impl", ""), ("median_ms", "median ms", ".3f"), ("gflops", "GFLOP/s", ".0f"),
           ("pct_matmul", "% matmul", ".0f"), ("vs_xla", "x xla", ".2f"),
           ("rel_err_fwd", "err vs f64", ".1e"), ("args_mib", "args MiB", ".1f"),
           ("temp_mib", "temp MiB", ".1f")]


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(prog="python -m benchmarks.fused", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--shapes", default="unet", help=f"shapes and presets ({', '.join(PRESETS)})")
  p.add_argument("--dtypes", default="float32,bfloat16")
  p.add_argument("--impls", default=",".join(fused_resblock.IMPLEMENTATIONS))
  p.add_argument("--passes", default=",".join(PASSES))
  p.add_argument("--groups", type=int, default=32, help="GroupNorm groups (at most C_in)")
  p.add_argument("--repeats", type=int, default=10)
  p.add_argument("--out", default="benchmark_results/fused")
  args = p.parse_args(argv)
  shapes = parse_shapes(args.shapes)
  impls = args.impls.split(",")
  if not set(impls) <= set(fused_resblock.IMPLEMENTATIONS):
    p.error(f"--impls: {args.impls!r}; valid: {', '.join(fused_resblock.IMPLEMENTATIONS)}")
  passes = args.passes.split(",")
  if not set(passes) <= set(PASSES):
    p.error(f"--passes: {args.passes!r}; valid: {', '.join(PASSES)}")
  dtypes = args.dtypes.split(",")
  if not set(dtypes) <= set(TOL):
    p.error(f"--dtypes: {args.dtypes!r}; valid: {', '.join(TOL)}")
  device = common.device_info()
  note = f"device: {device}"
  if device["platform"] == "cpu" and "pallas" in impls:
    impls = [i for i in impls if i != "pallas"]
    note += ("\nThe Pallas kernel runs only in interpret mode on the CPU (a correctness "
             "tool, not a speed): timing the XLA composition only. Run on a GPU for the "
             "Pallas column.")
  print(note, flush=True)
  rows = []
  for shape in shapes:
    for dtype in dtypes:
      new = bench_shape(shape, dtype, impls=impls, passes=passes,
                        groups=min(args.groups, shape[3]), repeats=args.repeats)
      rows += new
      common.print_table(new, COLUMNS)
      print(flush=True)
  out = pathlib.Path(args.out)
  payload = {"benchmark": "fused", "device": device, "note": note, "repeats": args.repeats,
             "load_average": os.getloadavg(), "results": rows}
  common.write_json(out / "fused.json", payload)
  (out / "fused.md").write_text(note + "\n\n" + common.markdown_table(rows, COLUMNS))
  print(f"wrote {out / 'fused.json'}, {out / 'fused.md'}")
  return payload


if __name__ == "__main__":
  import benchmarks
  benchmarks.setup()
  main()
