"""`python -m benchmarks <name> [flags]`: runs one benchmark module's main(flags).

    python -m benchmarks conv --shapes issue --dtypes float32
    python -m benchmarks train_step --configs cifar
    python -m benchmarks train_step_compare --config cifar   # before / xla / auto / onednn / winograd
    python -m benchmarks layers                              # GroupNorm, attention vs flax / jax.nn
    python -m benchmarks peer --rounds 2                     # vs diffusers' UNet2DModel (PyTorch)
    python -m benchmarks bf16                                # bfloat16 vs float32: loss, PSNR
    python -m benchmarks first_step --config cifar           # cold / warm compilation cache
    python -m benchmarks first_step_phases --config cifar    # where the start-up's seconds go
    python -m benchmarks step_profile --config cifar         # the train step's time op by op
    python -m benchmarks comic_style                         # unpaired training learns a shown style
    python -m benchmarks fewstep --config tiny               # SWD / KID vs NFE: solvers, students
    python -m benchmarks vr_fewstep --teacher RUN --student RUN_4STEP   # photo sphere, 4 vs 50 steps
    python -m benchmarks all --out benchmark_results/all      # one report of all of them
    python -m benchmarks <name> --help
"""

import importlib
import pathlib
import sys

import benchmarks

# name -> module under benchmarks/, each with main(argv).
COMMANDS = {"conv": "conv", "train_step": "train_step",
            "train_step_compare": "train_step_compare", "sampler": "sampler",
            "memory": "memory", "fused": "fused", "comic": "comic", "layers": "layers",
            "peer": "peer", "bf16": "bf16", "first_step": "first_step",
            "first_step_phases": "first_step_phases", "step_profile": "step_profile",
            "comic_style": "comic_style", "fewstep": "fewstep", "vr_fewstep": "vr_fewstep",
            "all": "all"}


def main(argv=None) -> None:
  argv = sys.argv[1:] if argv is None else list(argv)
  if not argv or argv[0] in ("-h", "--help"):
    print(__doc__.strip() + f"\n\nbenchmarks: {', '.join(COMMANDS)}")
    return
  name, rest = argv[0], argv[1:]
  if name not in COMMANDS:
    sys.exit(f"unknown benchmark {name!r}; valid: {', '.join(COMMANDS)}")
  benchmarks.setup()   # before the benchmark's first jax computation
  module = importlib.import_module(f"benchmarks.{COMMANDS[name]}")
  if not {"-h", "--help"} & set(rest):
    print(f"benchmarks: results go to {results_location(rest)}", flush=True)
  module.main(rest)


def results_location(argv: list[str]) -> pathlib.Path:
  """Where a benchmark writes: its --out / --json, else benchmark_results/ under the current
  folder (every benchmark's default), as an absolute path."""
  for i, arg in enumerate(argv):
    for flag in ("--out", "--json"):
      if arg == flag and i + 1 < len(argv):
        return pathlib.Path(argv[i + 1]).absolute()
      if arg.startswith(flag + "="):
        return pathlib.Path(arg.split("=", 1)[1]).absolute()
  return pathlib.Path("benchmark_results").absolute()


if __name__ == "__main__":
  main()
