"""White-box Cartoonization representations (Wang & Yu, "Learning to Cartoonize Using
White-box Cartoon Representations", CVPR 2020), for use as losses.

- surface: the image smoothed by a guided filter with itself as guide (flat shading,
  kept edges).
- texture: a random colour shift to grey (per-image channel weights from a key), so a
  loss on it sees contours and texture but not colour or brightness.
- structure: superpixels (SLIC, Achanta et al. TPAMI 2012, here in JAX with a fixed
  iteration count) each filled with its mean colour: flat regions with global layout.

All take images [B, H, W, 3] float32 sRGB in [0, 1]. Defaults follow the authors'
released code, rescaled from its [-1, 1] images to [0, 1] (eps 0.2 -> 0.05).
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from genjax.image import color
from genjax.image.guided_filter import guided_filter


def _check(images: jax.Array, name: str) -> None:
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f"{name} expects images [B, H, W, 3], got shape {images.shape}")


def surface(images: jax.Array, *, radius=5, eps=0.05) -> jax.Array:
  """Edge-preserving smooth surface: guided_filter(images, images, radius, eps), [B, H, W, 3]."""
  _check(images, "surface")
  return guided_filter(images, images, radius, eps)


# Rec. 601 luma weights: the grey the random shift is centred on.
_LUMA = np.array([0.299, 0.587, 0.114])


@functools.partial(jax.jit, static_argnames=("spread",))
def texture(images: jax.Array, *, key: jax.Array, spread: float = 0.1) -> jax.Array:
  """Random colour shift to grey: sum_c w_c I_c / sum_c w_c, w_c ~ U(luma_c +- spread).

  The weights are drawn per image from key; pass the same key for the generated and the
  reference images of a loss so both are shifted alike.

  Returns:
    [B, H, W, 1] float32 in [0, 1] (a convex combination of the channels).
  """
  _check(images, "texture")
  w = jnp.asarray(_LUMA, jnp.float32)[None, :] + jax.random.uniform(
      key, (images.shape[0], 3), minval=-spread, maxval=spread)
  w = w / jnp.sum(w, axis=1, keepdims=True)  # [B, 3]
  return jnp.einsum("bhwc,bc->bhw", images, w, precision=jax.lax.Precision.HIGHEST)[..., None]


def _slic_grid(h: int, w: int, n_segments: int) -> tuple[int, int]:
  """Rows and columns of seeds: gh * gw <= n_segments, cells about square."""
  gh = min(h, max(1, math.floor(math.sqrt(n_segments * h / w))))
  gw = min(w, max(1, n_segments // gh))
  return gh, gw


def _slic_candidates(h: int, w: int, gh: int, gw: int):
  """For each pixel, the 9 seeds of its own and neighbouring grid cells: [H*W, 9], valid mask."""
  ci = (np.arange(h) * gh) // h
  cj = (np.arange(w) * gw) // w
  di, dj = np.meshgrid(np.arange(-1, 2), np.arange(-1, 2), indexing="ij")
  ii = ci[:, None, None] + di.reshape(1, 1, 9)  # [H, 1, 9]
  jj = cj[None, :, None] + dj.reshape(1, 1, 9)  # [1, W, 9]
  valid = (ii >= 0) & (ii < gh) & (jj >= 0) & (jj < gw)
  idx = np.clip(ii, 0, gh - 1) * gw + np.clip(jj, 0, gw - 1)
  shape = (h, w, 9)
  return (np.broadcast_to(idx, shape).reshape(h * w, 9),
          np.broadcast_to(valid, shape).reshape(h * w, 9))


@functools.partial(jax.jit, static_argnames=("n_segments", "iters"))
def slic(images: jax.Array, *, n_segments: int = 64, compactness=10.0,
         iters: int = 5) -> jax.Array:
  """SLIC superpixel labels.

  Seeds start on a regular grid (at most n_segments of them). Each iteration assigns a
  pixel to the nearest of the 9 seeds of its own and neighbouring grid cells, by
  d^2 = |Lab_p - Lab_s|^2 + (compactness / S)^2 |xy_p - xy_s|^2 (CIELAB, S the grid
  interval in pixels), then moves each seed to the mean of its pixels. Searching the
  original grid neighbourhood instead of a window around the moved seed keeps the
  candidate set static; seeds move less than a cell in practice. The connectivity
  clean-up of the paper is skipped: a label may cover separate pieces.

  Args:
    images: [B, H, W, 3] sRGB in [0, 1].
    n_segments: upper bound on the number of superpixels (static).
    compactness: runtime scalar or [B]; larger = more regular, square superpixels.
    iters: assignment/update rounds (static).
  Returns:
    labels [B, H, W] int32 in [0, n_segments).
  """
  _check(images, "slic")
  b, h, w, _ = images.shape
  gh, gw = _slic_grid(h, w, n_segments)
  n = gh * gw
  cand, valid = _slic_candidates(h, w, gh, gw)
  cand, valid = jnp.asarray(cand), jnp.asarray(valid)
  yy, xx = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32),
                        indexing="ij")
  xy = jnp.stack([yy, xx], axis=-1).reshape(h * w, 2)
  interval = math.sqrt(h * w / n)
  spatial = jnp.square(jnp.broadcast_to(jnp.asarray(compactness, jnp.float32), (b,))
                       / interval)  # [B]
  lab = color.srgb_to_lab(images).reshape(b, h * w, 3)
  # Seeds: centres of the grid cells with the colour of the pixel there.
  sy = (np.arange(gh) + 0.5) * h / gh
  sx = (np.arange(gw) + 0.5) * w / gw
  seed_yx = np.stack(np.meshgrid(sy, sx, indexing="ij"), axis=-1).reshape(n, 2)
  seed_pix = np.floor(seed_yx[:, 0]).astype(int) * w + np.floor(seed_yx[:, 1]).astype(int)

  def one(lab, spatial):
    feats = jnp.concatenate([lab, xy], axis=-1)  # [HW, 5]
    seeds = jnp.concatenate([lab[seed_pix], jnp.asarray(seed_yx, jnp.float32)], axis=-1)

    def assign(seeds):
      c = seeds[cand]  # [HW, 9, 5]
      d_lab = jnp.sum(jnp.square(c[..., :3] - lab[:, None, :]), axis=-1)
      d_xy = jnp.sum(jnp.square(c[..., 3:] - xy[:, None, :]), axis=-1)
      d = jnp.where(valid, d_lab + spatial * d_xy, jnp.inf)
      return jnp.take_along_axis(cand, jnp.argmin(d, axis=-1)[:, None], axis=-1)[:, 0]

    def update(_, seeds):
      labels = assign(seeds)
      sums = jax.ops.segment_sum(feats, labels, num_segments=n)
      counts = jax.ops.segment_sum(jnp.ones((h * w, 1), jnp.float32), labels, num_segments=n)
      return jnp.where(counts > 0, sums / jnp.maximum(counts, 1.0), seeds)

    return assign(jax.lax.fori_loop(0, iters, update, seeds))

  return jax.vmap(one)(lab, spatial).reshape(b, h, w).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("n_segments",))
def fill_mean(images: jax.Array, labels: jax.Array, n_segments: int) -> jax.Array:
  """Each labelled region filled with its mean colour: [B, H, W, C], [B, H, W] -> [B, H, W, C]."""
  b, h, w, c = images.shape

  def one(img, lab):
    img, lab = img.reshape(h * w, c), lab.reshape(h * w)
    sums = jax.ops.segment_sum(img, lab, num_segments=n_segments)
    counts = jax.ops.segment_sum(jnp.ones((h * w, 1), img.dtype), lab, num_segments=n_segments)
    return (sums / jnp.maximum(counts, 1.0))[lab].reshape(h, w, c)

  return jax.vmap(one)(images, labels)


def structure(images: jax.Array, *, n_segments: int = 64, compactness=10.0,
              iters: int = 5) -> jax.Array:
  """SLIC superpixels filled with their mean colours: [B, H, W, 3], at most n_segments colours."""
  labels = slic(images, n_segments=n_segments, compactness=compactness, iters=iters)
  return fill_mean(images, labels, n_segments)
