"""The train step before and after the conv core, in one run: variants alternated.

    python -m benchmarks train_step_compare [--config cifar] [--rounds 2] [--steps 5]
        [--variants before,xla,auto,onednn,winograd] [--out benchmark_results/train_step_compare]

Each variant runs `python -m benchmarks.train_step` in a process of its own (XLA reads
its flags once per process), one variant after another, `--rounds` times, so load from
other jobs falls on all of them alike. Variants:

  before   the models' convolution before the conv core existed (explicit padding,
           then XLA's VALID convolution: benchmarks.train_step.conv2d_before_conv_core)
           under XLA's default CPU flags and glibc's malloc defaults
           (GENJAX_XLA_FLAGS=0, GENJAX_MALLOC=0);
  xla      XLA's convolution with genjax's XLA:CPU flag (genjax.kernels.xla_flags);
  auto     the dispatcher's choice, what `genjax train` runs;
  onednn   oneDNN's direct convolution forced (left out when oneDNN is not available here);
  winograd oneDNN's Winograd forced (likewise).

Prints per-round step times, the median per variant, and each median's speed-up over
`before` and over `xla`, XLA's temporary memory and each round's peak RSS (the first
`auto` process may also run the conv autotune, cached on disk for the rest: compare the
last rounds); writes JSON and a markdown table.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

from benchmarks import common

VARIANTS = {  # name -> (environment overrides, --conv-impl)
    "before": ({"GENJAX_XLA_FLAGS": "0", "GENJAX_MALLOC": "0"}, "before_conv_core"),
    "xla": ({}, "xla"),
    "auto": ({}, "auto"),
    "onednn": ({}, "onednn"),
    "winograd": ({}, "winograd"),
}


def run_variant(name: str, config: str, steps: int, workdir: pathlib.Path) -> dict:
  """One train_step benchmark process for `name`; its result row."""
  env_over, impl = VARIANTS[name]
  env = {**os.environ, **env_over}
  env.pop("GENJAX_CONV_IMPL", None)  # the variant decides
  out = workdir / f"{name}.json"
  cmd = [sys.executable, "-m", "benchmarks.train_step", "--configs", config, "--steps",
         str(steps), "--conv-impl", impl, "--json", str(out)]
  done = subprocess.run(cmd, env=env, capture_output=True, text=True)
  if done.returncode != 0:
    raise RuntimeError(f"variant {name}: {' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
  (row,) = json.loads(out.read_text())["results"]
  return row


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(prog="python -m benchmarks train_step_compare", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--config", default="cifar")
  p.add_argument("--rounds", type=int, default=2)
  p.add_argument("--steps", type=int, default=5)
  p.add_argument("--variants", default=None,
                 help=f"any of {', '.join(VARIANTS)} (default: all that run here)")
  p.add_argument("--out", default="benchmark_results/train_step_compare")
  args = p.parse_args(argv)
  if args.variants:
    names = args.variants.split(",")
    if not set(names) <= set(VARIANTS):
      p.error(f"--variants: {args.variants!r}; valid: {', '.join(VARIANTS)}")
  else:
    from genjax.kernels import onednn_build  # pylint: disable=import-outside-toplevel
    names = [n for n in VARIANTS if n not in ("onednn", "winograd") or onednn_build.available()]
  runs = {n: [] for n in names}
  with tempfile.TemporaryDirectory() as tmp:
    for r in range(args.rounds):
      for name in names:
        row = run_variant(name, args.config, args.steps, pathlib.Path(tmp))
        runs[name].append(row)
        print(f"round {r + 1} {name}: {row['step_ms']:.1f} ms/step", flush=True)
  median = {n: common.median([row["step_ms"] for row in rows]) for n, rows in runs.items()}
  rows = []
  for name, variant_rows in runs.items():
    rows.append({
        "variant": name,
        "rounds_ms": " / ".join(f"{row['step_ms']:.0f}" for row in variant_rows),
        "median_ms": median[name],
        "vs_before": median["before"] / median[name] if "before" in median else None,
        "vs_xla": median["xla"] / median[name] if "xla" in median else None,
        "temp_mib": variant_rows[0]["memory"].get("temp", 0) / 2**20,
        # The last round's: the first `auto` process may run the conv autotune, whose
        # measurements (cached on disk for the processes after it) are not the step's.
        "peak_rss_mib": variant_rows[-1]["peak_rss_mb"],
        "rounds_rss_mib": " / ".join(f"{row['peak_rss_mb']:.0f}" for row in variant_rows)})
  columns = [("variant", "variant", ""), ("rounds_ms", "ms per step, each round", ""),
             ("median_ms", "median ms", ".0f"), ("vs_before", "x before", ".2f"),
             ("vs_xla", "x xla", ".2f"), ("temp_mib", "XLA temp MiB", ".0f"),
             ("rounds_rss_mib", "peak RSS MiB, each round", "")]
  print(f"config {args.config}, {args.steps} timed steps per process")
  common.print_table(rows, columns)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  payload = {"benchmark": "train_step_compare", "config": args.config, "steps": args.steps,
             "device": common.device_info(), "results": rows,
             "runs": {n: [row["step_ms"] for row in rs] for n, rs in runs.items()}}
  common.write_json(out / "train_step_compare.json", payload)
  (out / "train_step_compare.md").write_text(common.markdown_table(rows, columns))
  print(f"wrote {out / 'train_step_compare.json'}, {out / 'train_step_compare.md'}")
  return payload


if __name__ == "__main__":
  main()
