"""Colour quantization: k-means in OKLab, a fixed number of Lloyd iterations, per image.

OKLab distances approximate perceived colour differences, so clusters split where
the eye sees different colours rather than where sRGB values differ most.

The palette is fitted on a random subset of at most `fit_pixels` pixels (chosen from
the key), then every pixel takes its nearest palette colour; the iteration count is
static, so the cost is fixed and the program is jittable. fit_palette and
assign_palette are separate so that tiles of one large image can share one palette.
"""

import functools

import jax
import jax.numpy as jnp

from genjax.image import color


def _sq_dist(x: jax.Array, c: jax.Array) -> jax.Array:
  """[N, 3], [K, 3] -> [N, K] squared distances (direct differences: exact at 0)."""
  return jnp.sum(jnp.square(x[:, None, :] - c[None, :, :]), axis=-1)


def _kmeans_pp_init(x: jax.Array, k: int, key: jax.Array) -> jax.Array:
  """k-means++ seeding (Arthur & Vassilvitskii 2007): [N, 3] -> [K, 3]."""
  first_key, rest_key = jax.random.split(key)
  centres = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(
      x[jax.random.randint(first_key, (), 0, x.shape[0])])
  d2 = _sq_dist(x, centres[:1])[:, 0]

  def body(j, carry):
    centres, d2 = carry
    # Proportional to D^2; points already chosen have D^2 = 0 and are never drawn
    # again unless every point is a centre (then all logits are -inf: index 0).
    idx = jax.random.categorical(jax.random.fold_in(rest_key, j), jnp.log(d2))
    centres = centres.at[j].set(x[idx])
    return centres, jnp.minimum(d2, _sq_dist(x, x[idx][None])[:, 0])

  centres, _ = jax.lax.fori_loop(1, k, body, (centres, d2))
  return centres


def _kmeans_one(x: jax.Array, k: int, iters: int, key: jax.Array) -> jax.Array:
  """Lloyd's algorithm on [N, 3] points -> [K, 3] centres; an empty cluster keeps its centre."""

  def step(_, centres):
    labels = jnp.argmin(_sq_dist(x, centres), axis=-1)
    sums = jax.ops.segment_sum(x, labels, num_segments=k)
    counts = jax.ops.segment_sum(jnp.ones_like(x[:, :1]), labels, num_segments=k)
    return jnp.where(counts > 0, sums / jnp.maximum(counts, 1.0), centres)

  return jax.lax.fori_loop(0, iters, step, _kmeans_pp_init(x, k, key))


def _check_images(images: jax.Array, name: str) -> None:
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f"{name} expects images [B, H, W, 3], got shape {images.shape}")


@functools.partial(jax.jit, static_argnames=("k", "iters", "fit_pixels"))
def fit_palette(images: jax.Array, k: int, *, key: jax.Array, iters: int = 10,
                fit_pixels: int = 8192) -> jax.Array:
  """k-means palette of each image.

  Args:
    images: [B, H, W, 3] float32 sRGB in [0, 1].
    k: number of colours (static).
    key: PRNG key; the same key gives the same palette.
    iters: Lloyd iterations (static).
    fit_pixels: fit on this many pixels drawn with replacement (static); all pixels
      are used when the image has no more than this.
  Returns:
    palette [B, k, 3] float32 sRGB in [0, 1].
  """
  _check_images(images, "fit_palette")
  if k < 1:
    raise ValueError(f"fit_palette: k must be >= 1, got {k}")
  b, h, w, _ = images.shape
  lab = color.srgb_to_oklab(images).reshape(b, h * w, 3)
  keys = jax.random.split(key, b)

  def one(x, key):
    sample_key, init_key = jax.random.split(key)
    if h * w > fit_pixels:
      x = x[jax.random.randint(sample_key, (fit_pixels,), 0, h * w)]
    return _kmeans_one(x, k, iters, init_key)

  centres = jax.vmap(one)(lab, keys)
  return jnp.clip(color.oklab_to_srgb(centres), 0.0, 1.0)


@jax.jit
def assign_palette(images: jax.Array, palette: jax.Array) -> jax.Array:
  """Index of the nearest palette colour (OKLab distance): [B, H, W, 3], [B, K, 3] -> [B, H, W]."""
  _check_images(images, "assign_palette")
  if palette.ndim != 3 or palette.shape[0] != images.shape[0] or palette.shape[-1] != 3:
    raise ValueError(f"assign_palette: palette must be [{images.shape[0]}, K, 3], got "
                     f"{palette.shape}")
  b, h, w, _ = images.shape
  lab = color.srgb_to_oklab(images).reshape(b, h * w, 3)
  labels = jax.vmap(lambda x, c: jnp.argmin(_sq_dist(x, c), axis=-1))(
      lab, color.srgb_to_oklab(palette))
  return labels.reshape(b, h, w).astype(jnp.int32)


def apply_palette(labels: jax.Array, palette: jax.Array) -> jax.Array:
  """[B, H, W] indices, [B, K, C] palette -> [B, H, W, C]."""
  return jax.vmap(lambda lab, pal: pal[lab])(labels, palette)


def kmeans_quantize(images: jax.Array, k: int, *, key: jax.Array, iters: int = 10,
                    fit_pixels: int = 8192) -> tuple[jax.Array, jax.Array]:
  """Quantizes each image to k colours.

  Args: as fit_palette.
  Returns:
    (quantized [B, H, W, 3] with at most k distinct colours per image,
     palette [B, k, 3]), float32 sRGB in [0, 1].
  """
  palette = fit_palette(images, k, key=key, iters=iters, fit_pixels=fit_pixels)
  return apply_palette(assign_palette(images, palette), palette), palette
