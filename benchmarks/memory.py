"""Per-device memory and step time of the train step on a CPU mesh: data-only, fsdp, fsdp+remat.

    XLA_FLAGS=--xla_force_host_platform_device_count=4 \
      python -m benchmarks.memory --configs cifar,large [--steps 3]

Uses XLA's compiled memory analysis (per device: the program is SPMD, so every device
runs the same program on its shard).
"""

import argparse

import jax

from benchmarks import common
from genjax import configs

VARIANTS = {
    "data": ["mesh.fsdp=1"],
    "fsdp": ["mesh.fsdp={n}", "mesh.data=1"],
    "fsdp+remat": ["mesh.fsdp={n}", "mesh.data=1", "model.remat=True"],
}


def measure(name: str, variant: str, *, steps: int, batch: int | None) -> dict:
  n = jax.device_count()
  over = [o.format(n=n) for o in VARIANTS[variant]]
  if batch:
    over.append(f"train.batch_size={batch}")
  config = configs.load(name, over)
  compiled, state, batch_arrays, _, _ = common.compiled_train_step(config)
  times, _ = common.time_train_steps(compiled, state, batch_arrays, steps)
  b = config.train.batch_size
  mem = common.memory_analysis(compiled)
  return {"config": name, "variant": variant, "devices": n, "batch": b,
          "args_mb": mem.get("argument", 0) / 2**20, "temp_mb": mem.get("temp", 0) / 2**20,
          "out_mb": mem.get("output", 0) / 2**20, "step_ms": 1e3 * common.median(times)}


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--configs", default="cifar,large")
  p.add_argument("--variants", default=",".join(VARIANTS))
  p.add_argument("--steps", type=int, default=3)
  p.add_argument("--batch", type=int, default=None, help="override the configs' batch size")
  p.add_argument("--json", default="benchmark_results/memory.json")
  args = p.parse_args(argv)
  rows = [measure(c, v, steps=args.steps, batch=args.batch)
          for c in args.configs.split(",") for v in args.variants.split(",")]
  print(f"device: {common.device_info()}")
  common.print_table(rows, [("config", "config", ""), ("variant", "variant", ""),
                            ("devices", "devices", "d"), ("batch", "batch", "d"),
                            ("args_mb", "args/device (MiB)", ".1f"),
                            ("temp_mb", "temp/device (MiB)", ".1f"),
                            ("step_ms", "step (ms)", ".0f")])
  common.write_json(args.json, {"benchmark": "memory", "device": common.device_info(),
                                "results": rows})
  print(f"wrote {args.json}")


if __name__ == "__main__":
  import benchmarks
  benchmarks.setup()
  main()
