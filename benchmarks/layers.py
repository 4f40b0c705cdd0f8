"""The UNet's GroupNorm and attention against the flax / jax versions they replace.

    python -m benchmarks layers [--repeats 9] [--out benchmark_results/layers]

At the CIFAR UNet's shapes (batch 32): GroupNorm + SiLU on 32x32x64 (32 groups), and
self-attention over 16x16 = 256 tokens, 128 channels in 4 heads. Forward, and forward +
backward (the gradient of a fixed random projection of the output), each output checked
against the reference version first; candidates interleaved in every round. Prints a
table, writes JSON.
"""

import argparse
import functools
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from genjax.models.attention import dot_product_attention
from genjax.models.layers import GroupNorm

GN_SHAPE, GROUPS = (32, 32, 32, 64), 32
ATTN_SHAPE = (32, 256, 4, 32)  # [B, T, heads, head dim]


def _group_norm_silu(module):
  return lambda params, x: nn.silu(module.apply(params, x))


def cases() -> dict:
  """name -> (fn, args, reference name); fn's first output is compared to the reference's."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal(GN_SHAPE), jnp.float32)
  params = nn.GroupNorm(GROUPS).init(jax.random.key(0), x)
  qkv = [jnp.asarray(rng.standard_normal(ATTN_SHAPE), jnp.float32) for _ in range(3)]
  return {
      "GroupNorm+SiLU flax": (_group_norm_silu(nn.GroupNorm(GROUPS)), (params, x)),
      "GroupNorm+SiLU genjax": (_group_norm_silu(GroupNorm(GROUPS)), (params, x)),
      "attention jax.nn": (jax.nn.dot_product_attention, qkv),
      "attention genjax": (dot_product_attention, qkv),
  }


def _programs(fn, args):
  out = jax.eval_shape(fn, *args)
  proj = jnp.asarray(np.random.default_rng(1).standard_normal(out.shape), out.dtype)
  loss = lambda *a: jnp.sum(fn(*a) * proj)
  grad = jax.grad(loss, argnums=tuple(range(len(args))))
  return {"fwd": jax.jit(fn), "fwdbwd": jax.jit(lambda *a: (fn(*a), grad(*a)))}


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(prog="python -m benchmarks layers", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--repeats", type=int, default=9)
  p.add_argument("--out", default="benchmark_results/layers")
  args = p.parse_args(argv)
  runs, outputs = {}, {}
  for name, (fn, fn_args) in cases().items():
    for pass_, prog in _programs(fn, fn_args).items():
      outputs[(name, pass_)] = jax.block_until_ready(prog(*fn_args))  # compiles
      runs[(name, pass_)] = functools.partial(prog, *fn_args)
  for name in cases():
    if name.endswith("genjax"):
      ref = name.replace("genjax", "flax" if name.startswith("Group") else "jax.nn")
      for a, b in zip(jax.tree.leaves(outputs[(name, "fwdbwd")]),
                      jax.tree.leaves(outputs[(ref, "fwdbwd")])):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3, atol=1e-4)
  times = {k: [] for k in runs}
  for _ in range(args.repeats):
    for k, fn in runs.items():
      times[k].append(common.time_and_cpu(fn)[0])
  rows = [{"layer": name, "pass": pass_, "median_ms": 1e3 * common.median(ts)}
          for (name, pass_), ts in times.items()]
  by = {(r["layer"], r["pass"]): r for r in rows}
  for r in rows:
    base = r["layer"].replace("genjax", "flax" if r["layer"].startswith("Group") else "jax.nn")
    r["speedup"] = by[(base, r["pass"])]["median_ms"] / r["median_ms"]
  columns = [("layer", "layer", ""), ("pass", "pass", ""), ("median_ms", "median ms", ".2f"),
             ("speedup", "x flax / jax.nn", ".2f")]
  print(f"device: {common.device_info()}")
  common.print_table(rows, columns)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  payload = {"benchmark": "layers", "device": common.device_info(), "results": rows}
  common.write_json(out / "layers.json", payload)
  print(f"wrote {out / 'layers.json'}")
  return payload


if __name__ == "__main__":
  import benchmarks
  benchmarks.setup()
  main()
