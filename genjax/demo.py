"""`genjax demo`: the five-minute tour on built-in data, on the CPU.

1. Trains the tiny UNet on procedural 360-degree landscapes (16x32) and writes
   sample grids, a loss curve, metrics and checkpoints.
"""

import pathlib

from genjax import configs
from genjax.train import loop


def run(workdir: str | pathlib.Path = "genjax_demo", *, steps: int | None = None,
        overrides=()) -> int:
  workdir = pathlib.Path(workdir)
  overrides = list(overrides)
  if steps is not None:
    overrides.append(f"train.num_steps={steps}")
  config = configs.load("tiny", overrides)
  print(f"[1/1] training the tiny UNet on procedural panoramas -> {workdir / 'train'}")
  summary = loop.train(config, workdir / "train")
  print(f"      loss {summary.final_loss:.4f} after {summary.final_step} steps, "
        f"{summary.seconds:.0f} s; samples: {workdir / 'train' / 'samples.png'}, "
        f"loss curve: {workdir / 'train' / 'loss.png'}")
  return 0 if summary.interrupted_by is None else 1
