"""Convolution benchmark: every conv2d implementation (and PyTorch, when installed) on
the UNet's convolution shapes, forward and forward+backward (and, on request, the input
and weight gradients alone), float32 and bfloat16.

    python -m benchmarks conv [--shapes unet|issue|8x64x64x128:128,8x32x32x512:256/k1,...]
        [--dtypes float32,bfloat16] [--impls xla,taps] [--passes fwd,fwdbwd,dx,dw]
        [--padding SAME] [--repeats 5] [--no-torch] [--out benchmark_results/conv]

A shape is BxHxWxCIN:COUT (or, quoted for the shell, BxHxWxCIN->COUT), optionally
followed by /k1 (1x1 kernel; default 3x3) and /s2 (stride 2). Presets: "issue" = the
three float32 shapes of issue 4; "unet" (the default) = those plus the other
convolutions of a UNet level at resolutions 128, 64, 32 and 16 with widths 64 to 512
(the 2C->C convolution after a skip concatenation, a 1x1 skip projection and a
stride-2 down-sampling).

For each shape and dtype, all programs are compiled first (outside the timers) and
checked against the "xla" implementation (and PyTorch against it); then `--repeats`
rounds call every candidate once in turn, including a 2048-square matrix product of
the same dtype: load from other processes on a shared CPU then hits all alike, and the
"% matmul" column compares with the matrix-product rate measured in the same rounds.
GFLOP/s count direct-convolution FLOPs, 2 * B * H' * W' * Cin * Cout * k * k for the
forward pass and 3 times that for forward+backward (input and weight gradients), from
the median time. Memory: XLA's compiled memory_analysis() (arguments, outputs,
temporaries) per program and the process's peak RSS after each shape (it includes
everything before: a running maximum, not a per-program figure). The "CPU" columns
repeat the comparison with the process's CPU time per call (all threads) instead of
wall time: on a shared CPU it is the steadier measure of the work each implementation
does (it also counts threads spin-waiting, which favours no one in particular).
Writes conv.json, conv.md and conv.png (GFLOP/s chart) to --out.
"""

import argparse
import dataclasses
import functools
import importlib.util
import os
import pathlib
import re
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from genjax.kernels import autotune, conv
from genjax.kernels.conv_reference import conv2d_reference

PRESETS = {
    "issue": ["8x64x64x128->128", "8x32x32x256->256", "8x16x16x512->512"],
    "unet": ["8x128x128x64->64", "8x64x64x128->128", "8x32x32x256->256", "8x16x16x512->512",
             "8x32x32x512->256", "8x32x32x512->256/k1", "8x64x64x128->128/s2"],
}
PASSES = ("fwd", "fwdbwd", "dx", "dw")  # dx, dw: the input and weight gradients alone (JAX only)
DEFAULT_PASSES = ("fwd", "fwdbwd")
MATMUL_N = 2048
# Agreement with the "xla" implementation (relative L2 error), per dtype.
AGREE = {"float32": 1e-4, "bfloat16": 3e-2}
_SHAPE_RE = re.compile(r"^(\d+)x(\d+)x(\d+)x(\d+)(?:->|:)(\d+)((?:/[ks]\d+)*)$")


@dataclasses.dataclass(frozen=True)
class Shape:
  batch: int
  height: int
  width: int
  cin: int
  cout: int
  k: int = 3
  stride: int = 1

  @classmethod
  def parse(cls, text: str) -> "Shape":
    m = _SHAPE_RE.match(text.strip())
    if not m:
      raise ValueError(f"--shapes: {text!r} is not BxHxWxCIN:COUT[/k1|/k3][/s1|/s2]")
    opts = dict((o[0], int(o[1:])) for o in m.group(6).split("/")[1:])
    shape = cls(*map(int, m.groups()[:5]), k=opts.get("k", 3), stride=opts.get("s", 1))
    if shape.k % 2 == 0 or shape.stride not in (1, 2):
      raise ValueError(f"--shapes: {text!r}: kernel size must be odd and stride 1 or 2")
    return shape

  @property
  def out_hw(self) -> tuple[int, int]:
    return (self.height - 1) // self.stride + 1, (self.width - 1) // self.stride + 1

  def flops(self, pass_: str) -> float:
    ho, wo = self.out_hw
    fwd = 2.0 * self.batch * ho * wo * self.cin * self.cout * self.k * self.k
    return 3 * fwd if pass_ == "fwdbwd" else fwd

  def __str__(self) -> str:
    s = f"{self.batch}x{self.height}x{self.width}x{self.cin}->{self.cout}"
    return s + (f"/k{self.k}" if self.k != 3 else "") + (f"/s{self.stride}" if self.stride != 1
                                                         else "")


def parse_shapes(spec: str) -> list[Shape]:
  texts = []
  for part in spec.split(","):
    texts += PRESETS.get(part.strip(), [part])
  return [Shape.parse(t) for t in texts]


def _rel(a, b) -> float:
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def _operands(shape: Shape, dtype, seed: int = 0):
  rng = np.random.default_rng(seed)
  ho, wo = shape.out_hw
  x = rng.standard_normal((shape.batch, shape.height, shape.width, shape.cin), np.float32)
  w = rng.standard_normal((shape.k, shape.k, shape.cin, shape.cout), np.float32)
  w /= np.sqrt(shape.k * shape.k * shape.cin)
  g = rng.standard_normal((shape.batch, ho, wo, shape.cout), np.float32)
  return [jnp.asarray(a, dtype) for a in (x, w, g)]


def _jax_programs(impl: str, shape: Shape, padding: str, operands, passes) -> dict:
  """pass -> (compiled, args) for one implementation: `passes`, and always "fwdbwd"."""
  f = functools.partial(conv.conv2d, stride=shape.stride, padding=padding, impl=impl)

  def fwdbwd(x, w, g):
    y, vjp = jax.vjp(f, x, w)
    return (y, *vjp(g))

  functions = {"fwd": lambda x, w, g: f(x, w), "fwdbwd": fwdbwd,
               "dx": lambda x, w, g: jax.vjp(lambda x_: f(x_, w), x)[1](g)[0],
               "dw": lambda x, w, g: jax.vjp(lambda w_: f(x, w_), w)[1](g)[0]}
  return {p: (jax.jit(functions[p]).lower(*operands).compile(), tuple(operands))
          for p in dict.fromkeys(["fwdbwd", *passes])}


class _Torch:
  """PyTorch conv2d, channels_last, the same operands (NCHW views of NHWC data)."""

  def __init__(self, shape: Shape, dtype: str, operands):
    import torch  # pylint: disable=import-outside-toplevel  (optional extra "bench")
    self.torch = torch
    tdtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    to_t = lambda a, perm: torch.from_numpy(np.array(a, np.float32)).permute(*perm).to(
        tdtype).contiguous(memory_format=torch.channels_last)
    x, w, g = operands
    self.x = to_t(x, (0, 3, 1, 2)).requires_grad_()
    self.w = to_t(w, (3, 2, 0, 1)).requires_grad_()   # HWIO -> OIHW
    self.g = to_t(g, (0, 3, 1, 2))
    self.stride, self.pad = shape.stride, (shape.k - 1) // 2

  def fwd(self):
    with self.torch.no_grad():
      return self.torch.nn.functional.conv2d(self.x, self.w, stride=self.stride,
                                             padding=self.pad)

  def fwdbwd(self):
    self.x.grad = self.w.grad = None
    y = self.torch.nn.functional.conv2d(self.x, self.w, stride=self.stride, padding=self.pad)
    y.backward(self.g)
    return y

  def outputs_nhwc(self):
    y = self.fwdbwd()
    nhwc = lambda t, perm: t.detach().float().permute(*perm).numpy()
    return (nhwc(y, (0, 2, 3, 1)), nhwc(self.x.grad, (0, 2, 3, 1)),
            nhwc(self.w.grad, (2, 3, 1, 0)))


def torch_available() -> bool:
  return importlib.util.find_spec("torch") is not None


def bench_shape(shape: Shape, dtype: str, *, impls, passes, padding: str, repeats: int,
                with_torch: bool) -> list[dict]:
  """Rows (one per implementation and pass) for one shape and dtype."""
  operands = _operands(shape, jnp.dtype(dtype))
  candidates, info = {}, {}   # name -> callable(); name -> row fields
  reference = None
  # The forward pass in float64 from the same (rounded) operands: each implementation's
  # own error, Winograd's in particular.
  exact = conv2d_reference(operands[0], operands[1], stride=shape.stride, padding=padding)
  for impl in impls:
    t = time.perf_counter()
    programs = _jax_programs(impl, shape, padding, operands, passes)
    compile_s = time.perf_counter() - t
    outputs = jax.block_until_ready(programs["fwdbwd"][0](*programs["fwdbwd"][1]))
    if reference is None:
      reference = outputs
    errors = [_rel(o, r) for o, r in zip(outputs, reference)]
    if max(errors) > AGREE[dtype]:
      raise AssertionError(f"{impl} on {shape} {dtype} disagrees with {impls[0]}: "
                           f"relative errors (y, dx, dw) {errors}")
    for p in passes:
      compiled, args = programs[p]
      candidates[(impl, p)] = functools.partial(compiled, *args)
      mem = common.memory_analysis(compiled)
      info[(impl, p)] = {"compile_s": compile_s, "rel_err_vs_" + impls[0]: max(errors),
                         "rel_err_fwd_f64": _rel(outputs[0], exact),
                         "args_mib": mem.get("argument", 0) / 2**20,
                         "out_mib": mem.get("output", 0) / 2**20,
                         "temp_mib": mem.get("temp", 0) / 2**20}
  if with_torch:
    if padding != "SAME":
      raise ValueError(f"PyTorch columns need --padding SAME, got {padding!r}")
    tt = _Torch(shape, dtype, operands)
    torch_outputs = tt.outputs_nhwc()
    errors = [_rel(o, r) for o, r in zip(torch_outputs, reference)]
    if max(errors) > AGREE[dtype]:
      raise AssertionError(f"torch on {shape} {dtype} disagrees with {impls[0]}: {errors}")
    for p in (p for p in passes if p in DEFAULT_PASSES):
      candidates[("torch", p)] = getattr(tt, p)
      info[("torch", p)] = {"rel_err_vs_" + impls[0]: max(errors),
                            "rel_err_fwd_f64": _rel(torch_outputs[0], exact)}
  a = jnp.ones((MATMUL_N, MATMUL_N), dtype)
  matmul = jax.jit(lambda a, b: jnp.dot(a, b, preferred_element_type=jnp.float32)).lower(
      a, a).compile()
  candidates[("matmul", "")] = functools.partial(matmul, a, a)

  times = {name: [] for name in candidates}
  cpu = {name: [] for name in candidates}
  for fn in candidates.values():  # warm-up
    jax.block_until_ready(fn())
  for _ in range(repeats):
    for name, fn in candidates.items():
      wall, cpu_s = common.time_and_cpu(fn)
      times[name].append(wall)
      cpu[name].append(cpu_s)
  matmul_gflops = 2 * MATMUL_N**3 / common.median(times[("matmul", "")]) / 1e9
  matmul_cpu = 2 * MATMUL_N**3 / common.median(cpu[("matmul", "")]) / 1e9
  rss = common.peak_rss_bytes() / 2**20
  rows = []
  for (impl, p), ts in times.items():
    if impl == "matmul":
      continue
    med = common.median(ts)
    gflops = shape.flops(p) / med / 1e9
    rows.append({"shape": str(shape), "k": shape.k, "stride": shape.stride, "dtype": dtype,
                 "padding": padding, "pass": p, "impl": impl, "median_ms": 1e3 * med,
                 "min_ms": 1e3 * min(ts), "times_s": ts, "gflops": gflops,
                 "matmul_gflops": matmul_gflops, "pct_matmul": 100 * gflops / matmul_gflops,
                 "cpu_ms": 1e3 * common.median(cpu[(impl, p)]),
                 "pct_matmul_cpu": 100 * shape.flops(p) / common.median(cpu[(impl, p)]) / 1e9
                                   / matmul_cpu,
                 "peak_rss_mib": rss, **info[(impl, p)]})
  by = {(r["impl"], r["pass"]): r for r in rows}
  for r in rows:  # speed relative to PyTorch in the same rounds (>1: faster than PyTorch)
    t = by.get(("torch", r["pass"]))
    r["vs_torch"] = t["median_ms"] / r["median_ms"] if t else None
    r["vs_torch_cpu"] = t["cpu_ms"] / r["cpu_ms"] if t else None
  return rows


def chart(rows: list[dict], path: pathlib.Path) -> None:
  """Grouped bars of GFLOP/s per shape, one panel per (dtype, pass)."""
  try:
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  except ImportError:
    return _chart_pillow(rows, path)
  panels = sorted({(r["dtype"], r["pass"]) for r in rows})
  impls = list(dict.fromkeys(r["impl"] for r in rows))
  fig, axes = plt.subplots(len(panels), 1, figsize=(11, 3.6 * len(panels)), squeeze=False)
  for ax, (dtype, p) in zip(axes[:, 0], panels):
    sub = [r for r in rows if (r["dtype"], r["pass"]) == (dtype, p)]
    shapes = list(dict.fromkeys(r["shape"] for r in sub))
    width = 0.8 / len(impls)
    for i, impl in enumerate(impls):
      vals = [next((r["gflops"] for r in sub if r["shape"] == s and r["impl"] == impl), 0)
              for s in shapes]
      ax.bar(np.arange(len(shapes)) + i * width, vals, width, label=impl)
    mm = [next(r["matmul_gflops"] for r in sub if r["shape"] == s) for s in shapes]
    ax.plot(np.arange(len(shapes)) + 0.4 - width / 2, mm, "k_", markersize=18,
            label=f"{MATMUL_N}² matmul")
    ax.set_xticks(np.arange(len(shapes)) + 0.4 - width / 2, shapes, fontsize=8)
    ax.set_ylabel("GFLOP/s")
    ax.set_title(f"{dtype}, {'forward' if p == 'fwd' else 'forward + backward'}")
    ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return None


def _chart_pillow(rows: list[dict], path: pathlib.Path) -> None:
  """Fallback without matplotlib: one bar per row, labelled."""
  from PIL import Image, ImageDraw  # pylint: disable=import-outside-toplevel
  top = max(r["gflops"] for r in rows)
  img = Image.new("RGB", (900, 16 * len(rows) + 20), "white")
  d = ImageDraw.Draw(img)
  for i, r in enumerate(rows):
    y = 10 + 16 * i
    d.text((5, y), f"{r['shape']} {r['dtype'][:4]} {r['pass']} {r['impl']}", fill="black")
    d.rectangle((330, y + 2, 330 + int(500 * r["gflops"] / top), y + 12), fill="steelblue")
    d.text((840, y), f"{r['gflops']:.0f}", fill="black")
  img.save(path)


COLUMNS = [("shape", "shape", ""), ("dtype", "dtype", ""), ("pass", "pass", ""),
           ("impl", "impl", ""), ("median_ms", "median ms", ".2f"), ("gflops", "GFLOP/s", ".0f"),
           ("pct_matmul", "% matmul", ".0f"), ("vs_torch", "x torch", ".2f"),
           ("cpu_ms", "CPU ms", ".1f"), ("pct_matmul_cpu", "% matmul CPU", ".0f"),
           ("vs_torch_cpu", "x torch CPU", ".2f"), ("rel_err_fwd_f64", "fwd err vs f64", ".1e"),
           ("args_mib", "args MiB", ".1f"), ("out_mib", "out MiB", ".1f"),
           ("temp_mib", "temp MiB", ".1f"), ("peak_rss_mib", "peak RSS MiB", ".0f")]


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(prog="python -m benchmarks conv", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--shapes", default="unet", help="comma-separated shapes and presets "
                 f"({', '.join(PRESETS)})")
  p.add_argument("--dtypes", default="float32,bfloat16")
  p.add_argument("--impls", default=None,
                 help="conv2d implementations; the first is the reference of the check "
                 "(default: every one available here)")
  p.add_argument("--passes", default=",".join(DEFAULT_PASSES),
                 help=f"any of {', '.join(PASSES)}")
  p.add_argument("--padding", default="SAME")
  p.add_argument("--repeats", type=int, default=5)
  p.add_argument("--no-torch", action="store_true", help="skip the PyTorch columns")
  p.add_argument("--out", default="benchmark_results/conv")
  args = p.parse_args(argv)
  shapes = parse_shapes(args.shapes)
  impls = args.impls.split(",") if args.impls else conv.available_implementations()
  for name in impls:
    if name not in conv.IMPLEMENTATIONS:
      p.error(f"--impls: unknown {name!r}; valid: {', '.join(conv.IMPLEMENTATIONS)}")
  passes = args.passes.split(",")
  if not set(passes) <= set(PASSES):
    p.error(f"--passes: {args.passes!r}; valid: {', '.join(PASSES)}")
  dtypes = args.dtypes.split(",")
  if not set(dtypes) <= set(AGREE):
    p.error(f"--dtypes: {args.dtypes!r}; valid: {', '.join(AGREE)}")
  with_torch = not args.no_torch and torch_available() and args.padding == "SAME"
  if not args.no_torch and not with_torch:  # say why the torch columns will show "-"
    print("no PyTorch comparison: " + (
        "PyTorch is not installed (pip install 'genjax-engine[bench]')" if not torch_available()
        else f"it runs with --padding SAME only, not {args.padding}")
        + "; the 'x torch' columns show '-'", flush=True)
  device = common.device_info()
  device["host_cpu"] = autotune._host_cpu()  # pylint: disable=protected-access
  if with_torch:
    import torch  # pylint: disable=import-outside-toplevel
    device.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
  print(f"device: {device}", flush=True)
  load_before = os.getloadavg()
  rows = []
  for shape in shapes:
    for dtype in dtypes:
      new = bench_shape(shape, dtype, impls=impls, passes=passes, padding=args.padding,
                        repeats=args.repeats, with_torch=with_torch)
      rows += new
      common.print_table(new, COLUMNS)
      print(flush=True)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  payload = {"benchmark": "conv", "device": device, "repeats": args.repeats,
             "load_average_before_after": [load_before, os.getloadavg()],
             "peak_rss_mib": common.peak_rss_bytes() / 2**20, "results": rows}
  common.write_json(out / "conv.json", payload)
  (out / "conv.md").write_text(common.markdown_table(rows, COLUMNS))
  chart(rows, out / "conv.png")
  print(f"wrote {out / 'conv.json'}, {out / 'conv.md'}, {out / 'conv.png'}")
  return payload


if __name__ == "__main__":
  import benchmarks
  benchmarks.setup()
  main()
