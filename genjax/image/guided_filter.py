"""Guided filter (He, Sun & Tang, ECCV 2010 / TPAMI 2013) and the fast guided filter
(He & Sun, arXiv:1505.00996, 2015): edge-preserving smoothing in O(1) per pixel.

The output is locally a linear function of the guide, q = a I + b, fitted by least
squares in each (2 r + 1)^2 window with ridge penalty eps on a; eps is in units of
guide variance (the guide in [0, 1]): edges with local variance >> eps are kept,
variations with variance << eps are smoothed away.

The guide is either one channel (shared by every channel of the source) or has as
many channels as the source (each channel guided by its own guide channel, as in the
White-box Cartoonization code). The colour-guide variant of the paper (a 3x3 solve
per pixel) is not implemented.
"""

import functools

import jax
import jax.numpy as jnp

from genjax.image.box_filter import as_bhwc, box_filter, per_image


def _check(guide: jax.Array, src: jax.Array) -> None:
  if guide.ndim != 4 or src.ndim != 4 or guide.shape[:3] != src.shape[:3]:
    raise ValueError(f"guide and src must be [B, H, W, C] with equal B, H, W; got guide "
                     f"{guide.shape}, src {src.shape}")
  if guide.shape[-1] not in (1, src.shape[-1]):
    raise ValueError(f"guide must have 1 or {src.shape[-1]} channels (src has "
                     f"{src.shape[-1]}), got {guide.shape[-1]}")


def _coefficients(guide, src, r, eps):
  """Per-window linear model (a, b): [B, H, W, C] each."""
  mean_i = box_filter(guide, r)
  mean_p = box_filter(src, r)
  cov_ip = box_filter(guide * src, r) - mean_i * mean_p
  var_i = box_filter(guide * guide, r) - mean_i * mean_i
  a = cov_ip / (var_i + as_bhwc(eps))
  return a, mean_p - a * mean_i


@jax.jit
def guided_filter(guide: jax.Array, src: jax.Array, radius, eps) -> jax.Array:
  """He et al. guided filter.

  Args:
    guide: [B, H, W, 1 or C] float, typically in [0, 1].
    src: [B, H, W, C] float.
    radius: int scalar or [B], window radius in pixels (runtime value, no recompile).
    eps: float scalar or [B], regularization (a variance); > 0.
  Returns:
    [B, H, W, C] float32.
  """
  _check(guide, src)
  b = src.shape[0]
  r = per_image(radius, b, jnp.int32)
  eps = per_image(eps, b)
  a, bias = _coefficients(guide, src, r, eps)
  return box_filter(a, r) * guide + box_filter(bias, r)


@functools.partial(jax.jit, static_argnames=("scale",))
def fast_guided_filter(guide: jax.Array, src: jax.Array, radius, eps, *,
                       scale: int = 4) -> jax.Array:
  """Fast guided filter: fits (a, b) on images subsampled by `scale`, then upsamples them.

  Costs about 1 / scale^2 of guided_filter; equal to it for scale=1. The radius stays
  in full-resolution pixels (scaled down internally, at least 1 when radius > 0).

  Args:
    guide, src, radius, eps: as in guided_filter.
    scale: static int >= 1, the subsampling factor s of the paper.
  Returns:
    [B, H, W, C] float32.
  """
  _check(guide, src)
  if scale < 1:
    raise ValueError(f"fast_guided_filter: scale must be >= 1, got {scale}")
  if scale == 1:
    return guided_filter(guide, src, radius, eps)
  bsz, h, w, _ = src.shape
  r = per_image(radius, bsz)
  r_lo = jnp.where(r > 0, jnp.maximum(jnp.round(r / scale), 1.0), 0.0).astype(jnp.int32)
  eps = per_image(eps, bsz)
  lo_hw = (max(1, -(-h // scale)), max(1, -(-w // scale)))
  down = lambda x: jax.image.resize(x, (bsz, *lo_hw, x.shape[-1]), "linear", antialias=True)
  up = lambda x: jax.image.resize(x, (bsz, h, w, x.shape[-1]), "linear")
  a, bias = _coefficients(down(guide), down(src), r_lo, eps)
  return up(box_filter(a, r_lo)) * guide + up(box_filter(bias, r_lo))
