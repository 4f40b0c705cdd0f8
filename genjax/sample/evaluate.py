"""`genjax eval`: metrics of generated images (a run's samples, or a folder) against real ones."""

import os
import pathlib

import jax

from genjax import files, metrics
from genjax.metrics import evaluate as ev
from genjax.sample import run as sample_run


MAX_SIDE = 4096  # pixels: metrics hold every image in host memory


def _parse_size(size) -> tuple[int, int] | None:
  if size is None or isinstance(size, tuple):
    return size
  try:
    h, w = (int(s) for s in str(size).lower().split("x"))
  except ValueError:
    raise ValueError(f"--size must be HxW, e.g. 32x64, got {size!r}") from None
  if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
    raise ValueError(f"--size {size}: height and width must be in [1, {MAX_SIDE}]")
  return h, w


def evaluate_sources(real: str, fake: str, *, metric_names="swd,kid", n: int = 1000,
                     features: str | None = None, inception_weights: str | None = None,
                     size=None, sampler: str | None = None, steps: int | None = None, seed: int = 0,
                     out_json: str | os.PathLike | None = None, progress: bool = True) -> dict:
  """Evaluates `fake` (a run folder: n samples are drawn; or an image folder) against `real`
  (an image folder, a run folder: its training data, or a built-in dataset name).

  features: "inception" (needs inception_weights), "random_conv" or "pixels"; default
  inception when weights are given, else random_conv (its KID/FID compare runs with each
  other only, not with published numbers). Writes the results as JSON to out_json.
  """
  names = ev.parse_metric_names(metric_names)
  if n < 2:
    raise ValueError(f"--n must be >= 2, got {n}")
  size = _parse_size(size)
  if out_json:  # a bad -o fails now, not after the sampling
    files.check_can_create(out_json, "-o")
    if pathlib.Path(out_json).is_dir():
      raise ValueError(f"-o {out_json} is a folder; name the JSON file, e.g. "
                       f"{pathlib.Path(out_json) / 'eval.json'}")
  key = jax.random.PRNGKey(seed)
  # The side that knows its size (a run, a dataset) goes first; image folders follow it.
  if ev.is_run_folder(fake):
    fake_images = sample_run.sample_images(fake, n=n, sampler=sampler, steps=steps, seed=seed,
                                           progress=progress)
    real_images = ev.image_source(real, n=n, image_size=size or fake_images.shape[1:3],
                                  seed=seed)
  else:
    real_images = ev.image_source(real, n=n, image_size=size, seed=seed)
    fake_images = ev.image_source(fake, n=n, image_size=real_images.shape[1:3], seed=seed)
  extractor = None
  if any(m in ev.FEATURE_METRICS for m in names):
    features = features or ("inception" if inception_weights else "random_conv")
    kwargs = {"weights": inception_weights} if features == "inception" else {}
    extractor = metrics.get_extractor(features, **kwargs)
  results = ev.evaluate(real_images, fake_images, names, key=key, extractor=extractor)
  results = {"real": str(real), "fake": str(fake), **results}
  if out_json:
    files.write_json(out_json, results)
  return results
