"""Longitude-seam metrics for 360-degree panoramas (equirectangular, width = longitude).

A panorama should continue from its last column into its first as smoothly as it does
between any two interior columns. Two ratios, each 1.0 when the wrap looks like the
interior and >> 1 at a visible seam:

- column_ratio: mean |x[:, W-1] - x[:, 0]| / mean |x[:, j+1] - x[:, j]| over interior j.
  Catches a jump in value.
- gradient_ratio: the Discontinuity Score idea, with a second difference across the
  columns, |x[j-1] - 2 x[j] + x[j+1]| = |change of the horizontal gradient at j|, at the two
  columns beside the wrap (their neighbours taken circularly) over its mean at interior
  columns 1..W-2. Smooth content has small second differences, so this reacts to a seam
  more strongly than column_ratio, and also to a kink (continuous values, broken slope).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

_EPS = 1e-12  # 0/0 (a constant image) reads as 1.0: no seam


class SeamScores(NamedTuple):
  column_ratio: jax.Array     # [B]
  gradient_ratio: jax.Array   # [B]


@jax.jit
def _seam_scores(x):
  # x: [B, H, W, C]; means over rows and channels (and interior columns).
  mean = lambda a: jnp.mean(jnp.abs(a), axis=(1, 2, 3))
  seam_d1 = x[:, :, :1] - x[:, :, -1:]
  interior_d1 = x[:, :, 1:] - x[:, :, :-1]
  column = (mean(seam_d1) + _EPS) / (mean(interior_d1) + _EPS)
  # Second differences at every column with circular neighbours; columns 0 and W-1 see
  # across the wrap, columns 1..W-2 only interior pixels.
  d2 = jnp.roll(x, 1, axis=2) - 2.0 * x + jnp.roll(x, -1, axis=2)
  seam_d2 = jnp.concatenate([d2[:, :, :1], d2[:, :, -1:]], axis=2)
  gradient = (mean(seam_d2) + _EPS) / (mean(d2[:, :, 1:-1]) + _EPS)
  return SeamScores(column, gradient)


def seam_scores(images) -> SeamScores:
  """images: [B, H, W, C] or [H, W, C] (any value range, W >= 4) -> SeamScores of [B] arrays
  (a leading batch of 1 for a single image)."""
  x = jnp.asarray(images, jnp.float32)
  if x.ndim == 3:
    x = x[None]
  if x.ndim != 4 or x.shape[2] < 4:
    raise ValueError(f"seam_scores: images must be [B, H, W, C] or [H, W, C] with W >= 4, "
                     f"got shape {jnp.shape(images)}")
  return _seam_scores(x)
