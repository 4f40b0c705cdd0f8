"""Held-out evaluation of the comic translator: PSNR against the procedural renderer,
and the photo | renderer | translator sample sheet."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from genjax.apps.comic import render as render_lib
from genjax.apps.comic import translator as tr
from genjax.apps.comic.translator_data import make_key, sample_knobs


def evaluate(translator: tr.Translator, photos, *, seed: int = 0) -> dict[str, float]:
  """Mean PSNR (dB) of the translator against the procedural renderer, photo by photo.

  "psnr_default": the training defaults of every knob; "psnr_random": the conditioned
  knobs drawn at random per photo (seeded).
  """
  from genjax.metrics.paired import psnr
  cfg = translator.config
  out = {"psnr_default": [], "psnr_random": []}
  for i, photo in enumerate(photos):
    x = jnp.asarray(photo[None], jnp.float32) / 255.0
    for name, knobs in (("psnr_default", cfg.default_knobs()),
                        ("psnr_random", sample_knobs(jax.random.fold_in(make_key(seed), i), cfg,
                                                     1))):
      knobs = _as_numpy_knobs(knobs)
      target = render_lib.compose(render_lib.render_layers(x, cfg.style, knobs))
      pred = tr.translate(translator, x, knobs).image
      out[name].append(float(psnr(pred, target, data_range=1.0)[0]))
  return {k: round(float(np.mean(v)), 2) for k, v in out.items()}


def _as_numpy_knobs(knobs):
  return jax.tree.map(np.asarray, knobs)


def save_samples(path, translator: tr.Translator, photos) -> pathlib.Path:
  """Rows of photo | procedural renderer | translator (default knobs) as one PNG."""
  from genjax.image.io import save_image
  rows = []
  for photo in photos:
    x = jnp.asarray(photo[None], jnp.float32) / 255.0
    target = render_lib.render(x, translator.config.style,
                               _as_numpy_knobs(translator.config.default_knobs())).image
    pred = tr.translate(translator, x).image
    rows.append(np.concatenate([np.asarray(a[0]) for a in (x, target, pred)], axis=1))
  width = max(r.shape[1] for r in rows)
  rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=1.0) for r in rows]
  return save_image(path, np.concatenate(rows, axis=0))
