"""`genjax demo`: the five-minute tour on built-in data, on the CPU.

1. Trains the tiny panorama UNet (panorama_tiny: sphere padding, mask conditioning) on
   procedural 360-degree landscapes (16x32) and writes sample grids, a loss curve, the
   sample-quality curve (SWD against the data, falling as it learns), metrics and
   checkpoints.
2. Photo to comic: example photos as colour comics, manga and a comic page.
3. Photo to VR: the trained model grows a 360-degree photo sphere (JPEG with GPano XMP,
   and a standalone HTML viewer) around a photo it never saw.
"""

import pathlib

from genjax import configs, files
from genjax.train import loop

# Two evaluations (steps 250 and 500) of 128 EMA samples: SWD should fall between them.
_EVAL = ("train.eval_every=250", "train.eval_num_images=128", "train.eval_metrics=swd")


def run(workdir: str | pathlib.Path = "genjax_demo", *, steps: int | None = None,
        overrides=(), num_photos: int = 3, vr_steps: int = 50) -> int:
  """Runs every step into workdir/<step>; overrides go to the training config. 0 on success."""
  workdir = files.check_can_create(workdir, "--workdir", folder=True)
  if steps is not None and steps < 1:
    raise ValueError(f"--steps must be >= 1, got {steps}")
  overrides = list(_EVAL) + list(overrides)
  if steps is not None:
    overrides.append(f"train.num_steps={steps}")
  config = configs.load("panorama_tiny", overrides)
  steps_total = 3
  print(f"[1/{steps_total}] training the tiny panorama UNet on procedural panoramas -> {workdir / 'train'}")
  summary = loop.train(config, workdir / "train")
  print(f"      loss {summary.final_loss:.4f} after {summary.final_step} steps, "
        f"{summary.seconds:.0f} s; samples: {workdir / 'train' / 'samples.png'}, "
        f"loss curve: {workdir / 'train' / 'loss.png'}, SWD curve: {workdir / 'train' / 'eval.png'}")
  if summary.interrupted_by is not None:
    return 1

  from genjax.apps.comic import run as comic_run
  print(f"[2/{steps_total}] photo to comic: colour comic, manga and a page -> {workdir / 'comic'}")
  written = comic_run.comic_examples(workdir / "comic", n=num_photos)
  print(f"      wrote {len(written)} images, e.g. {written[1]} and {workdir / 'comic' / 'page.png'}")

  from genjax.apps.vr import run as vr_run
  print(f"[3/{steps_total}] photo to VR: a 360-degree photo sphere grown around a photo "
        f"-> {workdir / 'vr'}")
  info = vr_run.vr_demo(workdir / "vr", workdir / "train", steps=vr_steps)
  print(f"      {info['photo']} -> photo sphere {info['panorama']}, viewer {info['html']}; seam "
        f"column ratio {info['column_ratio']:.2f}, gradient ratio {info['gradient_ratio']:.2f}")
  return 0
