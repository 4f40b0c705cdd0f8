"""Time to the first train step of `genjax train`, with a cold and a warm compilation cache.

    python -m benchmarks first_step [--config cifar] [--rounds 1] [--out benchmark_results/first_step]

(`python -m benchmarks first_step_phases` splits the start-up into its phases.)

Each measurement is the `genjax` command in a process of its own, timed from its launch
to the moment its metrics.jsonl receives step 1's record (written once step 1 is done,
after step 2 is dispatched; samples are not drawn before it; before 2026-12-06 the record
also waited for step 2):

  tune    `genjax tune --config=<config>` first (fills the conv autotune table, so the
          runs below do not measure; its time is reported, not counted in the others);
  cold    `genjax train` into a new run folder with an empty compilation cache folder;
  warm    the same command into another new run folder, the cache now filled by `cold`;
  resume  `genjax train` resuming `warm`'s run folder for one more step;
  nocache the warm command with --no-compile-cache (what every run paid before the cache).

Writes JSON and prints a table.
"""

import argparse
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

from benchmarks import common

POLL_S = 0.05


def _genjax(*args) -> list[str]:
  return [sys.executable, "-m", "genjax.cli", *args]


def time_to_first_record(cmd: list[str], workdir: pathlib.Path, env: dict) -> dict:
  """Seconds from launch to the first metrics.jsonl record, and the whole command's wall
  and CPU seconds (CPU: steadier than wall time on a shared machine)."""
  metrics = workdir / "metrics.jsonl"
  lines_before = len(metrics.read_text().splitlines()) if metrics.exists() else 0
  c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
  t0 = time.perf_counter()
  proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
  first = None
  while proc.poll() is None:
    if first is None and metrics.exists() and len(metrics.read_text().splitlines()) > lines_before:
      first = time.perf_counter() - t0
    time.sleep(POLL_S)
  total = time.perf_counter() - t0
  c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
  cpu = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
  out = proc.stdout.read()
  if proc.returncode != 0:
    raise RuntimeError(f"{' '.join(cmd)} failed:\n{out[-3000:]}")
  return {"first_step_s": first, "total_s": total, "command_cpu_s": cpu}


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(prog="python -m benchmarks first_step", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--config", default="cifar")
  p.add_argument("--rounds", type=int, default=1, help="cold/warm pairs, each on a new cache")
  p.add_argument("--out", default="benchmark_results/first_step")
  args = p.parse_args(argv)
  over = ["--config.train.log_every=1", "--config.train.sample_every=1000",
          "--config.train.checkpoint_every=1000"]
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    t = time.perf_counter()
    subprocess.run(_genjax("tune", f"--config={args.config}"), check=True, capture_output=True)
    rows.append({"run": "tune", "first_step_s": None, "total_s": time.perf_counter() - t})
    for r in range(args.rounds):
      env = {**os.environ, "GENJAX_CACHE_DIR": str(tmp / f"cache{r}")}
      env.pop("JAX_COMPILATION_CACHE_DIR", None)
      env.pop("GENJAX_COMPILE_CACHE", None)
      for name, extra, steps, run in (("cold", [], 2, f"cold{r}"), ("warm", [], 2, f"warm{r}"),
                                      ("resume", [], 3, f"warm{r}"),
                                      ("nocache", ["--no-compile-cache"], 2, f"nocache{r}")):
        workdir = tmp / run
        cmd = _genjax("train", f"--config={args.config}", f"--workdir={workdir}",
                      f"--config.train.num_steps={steps}", *over, *extra)
        row = {"run": name, "round": r + 1, **time_to_first_record(cmd, workdir, env)}
        rows.append(row)
        print(f"round {r + 1} {name}: first step {row['first_step_s']:.1f} s, "
              f"command {row['total_s']:.1f} s ({row['command_cpu_s']:.1f} CPU s)", flush=True)
  columns = [("run", "run", ""), ("first_step_s", "launch -> step 1 done (s)", ".1f"),
             ("total_s", "whole command (s)", ".1f"),
             ("command_cpu_s", "whole command, CPU s", ".1f")]
  print(f"config {args.config}")
  common.print_table(rows, columns)
  out = pathlib.Path(args.out)
  payload = {"benchmark": "first_step", "config": args.config, "device": common.device_info(),
             "results": rows}
  common.write_json(out / "first_step.json", payload)
  print(f"wrote {out / 'first_step.json'}")
  return payload


if __name__ == "__main__":
  import benchmarks
  benchmarks.setup()
  main()
