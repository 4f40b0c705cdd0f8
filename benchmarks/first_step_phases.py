"""Where the time to the first train step goes: `genjax train`'s start-up, phase by phase.

    python -m benchmarks first_step_phases [--config cifar] [--out benchmark_results/first_step]

Runs the start of a new run in this process, each phase in order on one thread, with
the persistent compilation cache on (the `genjax` command's folder, or $GENJAX_CACHE_DIR;
GENJAX_COMPILE_CACHE is ignored here):
run it twice, or after `first_step`, for the warm numbers (the "cache" column says
whether the phase's programs came from the cache). Wall and CPU seconds (all threads of
the process) per phase; CPU seconds are the steadier column on a shared machine.
`genjax train` itself overlaps the train step's trace, lowering and compile (a thread of
its own, genjax.train.runtime.StepAhead) with the state's lowering, compile and run.
"""

import argparse
import os
import pathlib
import sys
import time

from benchmarks import common

# Imported in main, after the cache is on: the "import" phases time them.
jax = None


def _seconds_since_launch() -> float | None:
  """Wall seconds since this process started (Linux /proc), else None."""
  try:
    with open("/proc/self/stat") as f:
      ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
      uptime = float(f.read().split()[0])
    return uptime - ticks / os.sysconf("SC_CLK_TCK")
  except (OSError, ValueError, IndexError):
    return None


def _events():
  """Counts of the compilation cache's hits and misses, from jax.monitoring."""
  counts = {"hits": 0, "misses": 0}

  def listener(event, **_):
    if event.endswith("/cache_hits"):
      counts["hits"] += 1
    elif event.endswith("/cache_misses"):
      counts["misses"] += 1
  jax.monitoring.register_event_listener(listener)
  return counts


def main(argv=None) -> dict:
  global jax
  p = argparse.ArgumentParser(prog="python -m benchmarks first_step_phases", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--config", default="cifar")
  p.add_argument("--out", default="benchmark_results/first_step")
  args = p.parse_args(argv)
  from genjax.kernels import compile_cache
  launched = _seconds_since_launch()
  rows, t0, c0 = [], time.perf_counter(), common.process_cpu_seconds()
  if launched is not None:  # the interpreter, jax's import, the process settings
    rows.append({"phase": "launch -> main (python, import jax)", "wall_s": launched,
                 "cpu_s": c0, "cache": ""})
  cache = {"hits": 0, "misses": 0}

  def mark(name, seen=None):
    nonlocal t0, c0
    t, c = time.perf_counter(), common.process_cpu_seconds()
    hit = "" if seen is None else ("hit" if cache["hits"] > seen["hits"] else
                                   "miss" if cache["misses"] > seen["misses"] else "")
    rows.append({"phase": name, "wall_s": t - t0, "cpu_s": c - c0, "cache": hit})
    t0, c0 = t, c
    return dict(cache)

  import jax as jax_module  # noqa: PLC0415
  jax = jax_module
  # On whatever benchmarks.setup() or GENJAX_COMPILE_CACHE say: the cache is what is measured.
  environ = {k: v for k, v in os.environ.items() if k != compile_cache.OPT_OUT_ENV}
  settings = compile_cache.enable(environ)
  cache = _events()
  mark("compilation cache on")
  from genjax import configs  # noqa: PLC0415
  from genjax.train import loop, sharding, startup  # noqa: PLC0415
  seen = mark("import genjax.train.loop")
  config = configs.load(args.config, ["train.num_steps=2"])
  mesh = sharding.make_mesh(config.mesh)
  trainer = loop.DiffusionTrainer(config)
  trainer.check(mesh)
  trainer.build()
  seen = mark("config, dataset, model, data loader")
  key = jax.random.split(jax.random.PRNGKey(config.seed))[0]
  abstract = jax.eval_shape(trainer.create_state, key)
  shardings = sharding.state_shardings(abstract, mesh)
  seen = mark("state init: trace (eval_shape)", seen)
  lowered = jax.jit(trainer.create_state, out_shardings=shardings).lower(key)
  seen = mark("state init: lower", seen)
  init = lowered.compile(startup.INIT_CPU_COMPILER_OPTIONS)  # as genjax train does on the CPU
  seen = mark("state init: compile", seen)
  state = jax.block_until_ready(init(key))
  seen = mark("state init: run", seen)
  batch = trainer.next_batch(mesh)
  seen = mark("first batch", seen)
  traced = trainer.make_step_fn(mesh, shardings).trace(startup.specs(abstract, shardings),
                                                       startup.specs(batch))
  seen = mark("train step: trace (conv table lookups)", seen)
  lowered = traced.lower()
  seen = mark("train step: lower", seen)
  compiled = lowered.compile()
  seen = mark("train step: compile", seen)
  state, metrics = compiled(state, batch)
  jax.block_until_ready(metrics)
  mark("step 1: run", seen)
  columns = [("phase", "phase", ""), ("wall_s", "wall s", ".2f"), ("cpu_s", "CPU s", ".2f"),
             ("cache", "cache", "")]
  print(f"config {args.config}; compilation cache {settings.get('dir', 'off')}")
  common.print_table(rows, columns)
  print(f"total: {sum(r['wall_s'] for r in rows):.1f} s wall, "
        f"{sum(r['cpu_s'] for r in rows):.1f} CPU s")
  out = pathlib.Path(args.out)
  payload = {"benchmark": "first_step_phases", "config": args.config,
             "device": common.device_info(), "results": rows}
  common.write_json(out / "first_step_phases.json", payload)
  return payload


if __name__ == "__main__":
  import benchmarks
  benchmarks.setup()
  sys.exit(main() and 0)
