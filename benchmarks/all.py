"""`python -m benchmarks all --out DIR`: conv, train-step and sampler benchmarks in one run,
one report (DIR/report.md, DIR/report.json, the conv chart DIR/conv/conv.png).

    python -m benchmarks all --out benchmark_results/all [--quick]

The train step runs twice, with the conv implementation forced to `xla` and with the
dispatcher's choice (`auto`), so their ratio is measured in the same run on the same machine.
--quick uses the issue's three conv shapes in float32 and fewer repeats.
"""

import argparse
import json
import pathlib

from benchmarks import common, conv, sampler, train_step


def _scalar_table(rows: list[dict]) -> str:
  """A markdown table of the scalar (str, int, float) fields shared by every row."""
  if not rows:
    return "(no rows)\n"
  keys = [k for k, v in rows[0].items()
          if isinstance(v, (str, int, float)) and all(k in r for r in rows)]
  fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)
  lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
  lines += ["| " + " | ".join(fmt(r[k]) for k in keys) + " |" for r in rows]
  return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(prog="python -m benchmarks all", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--out", default="benchmark_results/all")
  p.add_argument("--quick", action="store_true")
  p.add_argument("--train-configs", default="cifar")
  p.add_argument("--sampler-config", default="cifar")
  args = p.parse_args(argv)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)

  conv_args = ["--out", str(out / "conv")]
  if args.quick:
    conv_args += ["--shapes", "issue", "--dtypes", "float32", "--repeats", "3"]
  steps = "3" if args.quick else "10"
  results = {"device": common.device_info(), "conv": conv.main(conv_args)}
  results["train_step"] = {
      impl: train_step.main(["--configs", args.train_configs, "--steps", steps,
                             "--conv-impl", impl, "--json", str(out / f"train_step_{impl}.json")])
      for impl in ("xla", "auto")}
  results["sampler"] = sampler.main(["--config", args.sampler_config, "--json", str(out / "sampler.json")]
                                    + (["--repeats", "1"] if args.quick else []))

  speedups = []
  for forced, chosen in zip(results["train_step"]["xla"]["results"],
                            results["train_step"]["auto"]["results"]):
    speedups.append({"config": forced["config"], "xla_step_ms": forced["step_ms"],
                     "auto_step_ms": chosen["step_ms"],
                     "speedup": forced["step_ms"] / chosen["step_ms"],
                     "xla_temp_mib": forced["memory"].get("temp", 0) / 2**20,
                     "auto_temp_mib": chosen["memory"].get("temp", 0) / 2**20})
  results["train_step_speedup"] = speedups

  report = [f"# genjax benchmarks\n\ndevice: `{json.dumps(results['device'])}`\n",
            "## Convolutions (`python -m benchmarks conv`)\n",
            (out / "conv" / "conv.md").read_text() if (out / "conv" / "conv.md").exists() else "",
            "\n![conv chart](conv/conv.png)\n",
            "## Train step: conv implementation forced to xla vs the dispatcher's choice\n",
            _scalar_table(speedups),
            "## Sampler (`python -m benchmarks sampler`)\n",
            _scalar_table(results["sampler"].get("results", [results["sampler"]]))]
  (out / "report.md").write_text("\n".join(report))
  common.write_json(out / "report.json", results)
  print(f"wrote {out / 'report.md'} and {out / 'report.json'}")
  return results


if __name__ == "__main__":
  import benchmarks
  benchmarks.setup()
  main()
