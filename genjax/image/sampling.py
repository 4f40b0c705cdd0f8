"""Bilinear sampling of equirectangular panoramas (wrapping, across the poles) and plain images.

Pixel conventions (shared with projections.py): pixel (i, j) of an image [H, W, C] has its
centre at continuous coordinates (x, y) = (j + 0.5, i + 0.5); x grows to the right, y down.
For an equirectangular panorama x in [0, W) covers longitude [-pi, pi) and y in [0, H)
covers latitude [+pi/2, -pi/2]:

  lon = x / W * 2 pi - pi,        lat = pi / 2 - y / H * pi.

The functions take one image and coordinate arrays of any shape [...]; `jax.vmap` them for
a batch of images. They are differentiable in the image values and in the coordinates
(the interpolation weights), and jittable.
"""

import math

import jax
import jax.numpy as jnp


def equirect_pixel_coords(lon: jax.Array, lat: jax.Array, height: int, width: int):
  """Radians -> continuous pixel coordinates (x, y) of an equirectangular [height, width] image."""
  x = (lon + math.pi) * (width / (2 * math.pi))
  y = (math.pi / 2 - lat) * (height / math.pi)
  return x, y


def equirect_angles(x: jax.Array, y: jax.Array, height: int, width: int):
  """Continuous pixel coordinates -> (lon, lat) in radians; the inverse of equirect_pixel_coords."""
  return x * (2 * math.pi / width) - math.pi, math.pi / 2 - y * (math.pi / height)


def _lerp_row(img: jax.Array, rows: jax.Array, x: jax.Array) -> jax.Array:
  """Linear interpolation along each row with columns wrapping around: -> [..., C]."""
  w = img.shape[1]
  xf = x - 0.5
  x0 = jnp.floor(xf)
  fx = (xf - x0)[..., None]
  c0 = jnp.mod(x0.astype(jnp.int32), w)
  c1 = jnp.mod(c0 + 1, w)
  return img[rows, c0] * (1 - fx) + img[rows, c1] * fx


def sample_equirect_px(pano: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
  """Bilinear sample of pano [H, W, C] at pixel coordinates x, y [...] -> [..., C].

  Columns wrap (x and x + W are the same point). Rows continue across the poles: a row
  above row 0 is row 0 (then 1, 2, ...) seen from the other side of the pole, i.e. at
  longitude + 180 degrees, and likewise below row H - 1; y must lie in (-H, 2H).
  Each of the two rows that enter the interpolation is interpolated along its own
  longitude, so odd widths (a half-pixel shift across the pole) are exact as well.
  """
  h, w, _ = pano.shape
  yf = y - 0.5
  y0 = jnp.floor(yf)
  fy = (yf - y0)[..., None]
  r0 = y0.astype(jnp.int32)

  def row(r):
    above, below = r < 0, r >= h
    mirrored = jnp.where(above, -1 - r, jnp.where(below, 2 * h - 1 - r, r))
    return _lerp_row(pano, jnp.clip(mirrored, 0, h - 1), jnp.where(above | below, x + w / 2, x))

  return row(r0) * (1 - fy) + row(r0 + 1) * fy


def sample_equirect(pano: jax.Array, lon: jax.Array, lat: jax.Array) -> jax.Array:
  """Bilinear sample of pano [H, W, C] at lon, lat [...] (radians) -> [..., C].

  Any longitude is valid (it wraps); latitudes beyond +-pi/2 continue across the pole
  (lat = pi/2 + e at lon is the point lat = pi/2 - e at lon + pi).
  """
  h, w, _ = pano.shape
  x, y = equirect_pixel_coords(lon, lat, h, w)
  return sample_equirect_px(pano, x, y)


def sample_bilinear(img: jax.Array, x: jax.Array, y: jax.Array):
  """Bilinear sample of img [H, W, C] at pixel coordinates x, y [...].

  Returns (values [..., C], valid [...] bool). valid marks points on the image's footprint
  0 <= x <= W, 0 <= y <= H; within half a pixel of the border the edge pixels are
  extended (clamp to edge); outside the footprint the values are 0.
  """
  h, w, _ = img.shape
  valid = (x >= 0) & (x <= w) & (y >= 0) & (y <= h)
  xc = jnp.clip(x - 0.5, 0, w - 1)
  yc = jnp.clip(y - 0.5, 0, h - 1)
  x0 = jnp.floor(xc)
  y0 = jnp.floor(yc)
  fx = (xc - x0)[..., None]
  fy = (yc - y0)[..., None]
  c0 = x0.astype(jnp.int32)
  r0 = y0.astype(jnp.int32)
  c1 = jnp.minimum(c0 + 1, w - 1)
  r1 = jnp.minimum(r0 + 1, h - 1)
  top = img[r0, c0] * (1 - fx) + img[r0, c1] * fx
  bottom = img[r1, c0] * (1 - fx) + img[r1, c1] * fx
  values = top * (1 - fy) + bottom * fy
  return jnp.where(valid[..., None], values, 0), valid
