"""The compiled 50-step DDIM sampler with conv "xla" forced against conv "auto", in one process.

    python -m benchmarks ddim_conv [--config cifar] [--batch 16] [--steps 50] [--rounds 5]
        [--json benchmark_results/ddim_conv.json] [overrides ...]

Both programs are `genjax.sample.make_sampler(..., sampler="ddim")` jitted on the same
parameters (the config's initialization, its zero-initialized kernels drawn at random so
that the network's output is not 0) and start noise; they differ only in the model's
kernels.conv_impl: "xla", or "auto", where the conv dispatcher picks forward-only
implementations for the sampler (genjax.kernels.conv, `forward_only`; the autotune table
of this machine applies as in `genjax sample`). Compiles both outside the timers,
reports the max abs difference of the samples, then `--rounds` rounds call each once in
turn (load from other processes falls on both alike) and reports the median wall time
and the median process CPU time (all threads) per call, images/s, XLA's
memory_analysis() temporaries and the XLA convolutions left in each program.
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from genjax import configs
from genjax import sample as genjax_sample
from genjax.train import loop

VARIANTS = ("xla", "auto")


def _all_nonzero(params):
  """The initial parameters with the zero-initialized kernels (the residual branches' last
  convolutions and the output layer, which make a new UNet's output exactly 0) drawn as
  N(0, 1 / fan_in): so every convolution changes the samples compared below."""
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(3), len(leaves))
  leaves = [jax.random.normal(k, p.shape) / np.sqrt(np.prod(p.shape[:-1]))
            if p.ndim == 4 and not bool(jnp.any(p)) else p for k, p in zip(keys, leaves)]
  return jax.tree.unflatten(tree, leaves)


def bench(config_name: str, *, batch: int, steps: int, rounds: int, overrides=()) -> dict:
  programs, params = {}, None
  for variant in VARIANTS:
    config = configs.load(config_name, [*overrides, f"kernels.conv_impl={variant}"])
    model, spec, _, _, create = loop.build(config)
    if params is None:
      params = _all_nonzero(jax.jit(create)(jax.random.PRNGKey(0)).params)
      h, w = config.data.image_size
      z = jax.random.normal(jax.random.PRNGKey(1), (batch, h, w, config.model.out_channels))
    fn = genjax_sample.make_sampler(model, spec, image_shape=(h, w), sampler="ddim",
                                    steps=steps, channels=config.model.out_channels)
    programs[variant] = jax.jit(fn).lower(params, jax.random.PRNGKey(2), z).compile()
  outs = {v: np.asarray(c(params, jax.random.PRNGKey(2), z)) for v, c in programs.items()}
  wall, cpu = {v: [] for v in VARIANTS}, {v: [] for v in VARIANTS}
  for _ in range(rounds):
    for v, c in programs.items():
      t, s = common.time_and_cpu(c, params, jax.random.PRNGKey(2), z)
      wall[v].append(t)
      cpu[v].append(s)
  rows = [{"variant": v, "wall_s": common.median(wall[v]), "cpu_s": common.median(cpu[v]),
           "images_per_s": batch / common.median(wall[v]),
           "temp_mib": common.memory_analysis(programs[v]).get("temp", 0) / 2**20,
           # XLA convolutions left in the optimized program (the rest became Winograd's).
           "xla_convs": programs[v].as_text().count(" convolution(")}
          for v in VARIANTS]
  return {"config": config_name, "batch": batch, "steps": steps, "rounds": rounds,
          "max_abs_diff": float(np.max(np.abs(outs["auto"] - outs["xla"]))),
          "wall_s": wall, "cpu_s": cpu, "rows": rows, "device": common.device_info()}


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--config", default="cifar")
  p.add_argument("--batch", type=int, default=16)
  p.add_argument("--steps", type=int, default=50)
  p.add_argument("--rounds", type=int, default=5)
  p.add_argument("--json", default="benchmark_results/ddim_conv.json")
  p.add_argument("overrides", nargs="*", help="config overrides, key=value")
  args = p.parse_args(argv)
  result = bench(args.config, batch=args.batch, steps=args.steps, rounds=args.rounds,
                 overrides=args.overrides)
  common.print_table(result["rows"], [("variant", "conv", "s"), ("wall_s", "wall s", ".2f"),
                                      ("cpu_s", "CPU s", ".2f"),
                                      ("images_per_s", "images/s", ".2f"),
                                      ("temp_mib", "XLA temp MiB", ".0f"),
                                      ("xla_convs", "XLA convs", "d")])
  print(f"max |auto - xla| over the samples: {result['max_abs_diff']:.2e}")
  common.write_json(args.json, result)
  return result


if __name__ == "__main__":
  main()
