"""Screentones: halftone dot screens and hatching, computed per output pixel.

Every pattern is a function of continuous canvas coordinates (pixel centres plus an
`origin` offset), evaluated at the output resolution: nothing is rendered small and
resampled, so dots stay crisp at any size, and tiles of one canvas rendered with their
own origins join without a seam. Edges are antialiased over about one pixel.

Conventions: tone [B, H, W, 1] in [0, 1] with 1 = white paper, 0 = black; the result
is an ink alpha [B, H, W, 1] in [0, 1] (1 = ink). period is in pixels, angle in degrees
(counter-clockwise from the x axis), origin [B, 2] or (2,) as (row, column) pixels. All
of these are runtime values (scalars or per image): one compiled program serves all.
"""

import jax
import jax.numpy as jnp
import numpy as np

from genjax.image.box_filter import as_bhwc, per_image

_HALF_DIAGONAL = float(np.sqrt(0.5))


def _origin(origin, batch: int) -> jax.Array:
  o = jnp.asarray(origin, jnp.float32)
  if o.shape not in ((2,), (batch, 2)):
    raise ValueError(f"origin must be (2,) or [{batch}, 2] (row, col), got shape {o.shape}")
  return jnp.broadcast_to(o, (batch, 2))


def _screen_coords(shape, period, angle, origin):
  """Rotated screen coordinates in cells: (u, v), each [B, H, W, 1]."""
  b, h, w = shape[0], shape[1], shape[2]
  o = _origin(origin, b)
  y = jnp.arange(h, dtype=jnp.float32)[None, :, None, None] + 0.5 + o[:, 0, None, None, None]
  x = jnp.arange(w, dtype=jnp.float32)[None, None, :, None] + 0.5 + o[:, 1, None, None, None]
  theta = as_bhwc(jnp.deg2rad(per_image(angle, b)))
  period = as_bhwc(per_image(period, b))
  c, s = jnp.cos(theta), jnp.sin(theta)
  return (x * c + y * s) / period, (y * c - x * s) / period


def dot_area(d: jax.Array) -> jax.Array:
  """Area of {|p| < d} inside the unit cell [-1/2, 1/2]^2: the ink fraction of a dot of radius d."""
  d = jnp.clip(d, 0.0, _HALF_DIAGONAL)
  ds = jnp.maximum(d, 0.5)
  # Four circular segments cut off by the cell edges once the dot passes radius 1/2.
  segments = ds * ds * jnp.arccos(0.5 / ds) - 0.5 * jnp.sqrt(ds * ds - 0.25)
  return jnp.pi * d * d - 4.0 * jnp.where(d > 0.5, segments, 0.0)


def _dot_radius(coverage: jax.Array) -> jax.Array:
  """Inverse of dot_area: the dot radius (cells) whose ink fraction is coverage."""
  c = jnp.clip(coverage, 0.0, 1.0)
  r = jnp.sqrt(c / jnp.pi)
  # Past radius 1/2 the area is concave in r, so Newton from the disc radius (below the
  # root) climbs monotonically; 6 steps reach float32 accuracy except within ~1e-3 of 1.
  for _ in range(6):
    rs = jnp.clip(r, 0.5, _HALF_DIAGONAL)
    slope = 2.0 * jnp.pi * rs - 8.0 * rs * jnp.arccos(0.5 / rs)  # d area / d r
    r_new = rs - (dot_area(rs) - c) / jnp.maximum(slope, 1e-4)
    r = jnp.where(c > jnp.pi / 4, jnp.clip(r_new, 0.5, _HALF_DIAGONAL), r)
  # The slope vanishes at the cell corner, so Newton stalls just short of it: full
  # coverage is set exactly (r only grows with c, so monotonicity is kept).
  return jnp.where(c >= 1.0, _HALF_DIAGONAL, r)


@jax.jit
def halftone(tone: jax.Array, *, period=6.0, angle=45.0, origin=(0.0, 0.0)) -> jax.Array:
  """Round-dot screen: each cell's ink area is 1 - tone (clustered-dot halftone).

  The antialiasing ramp shifts the area by about pi / (12 period^2) (+1 % at period 5)
  for round dots, a little more the other way once only white specks remain.

  Dots grow with darkness until they touch (50 %), then leave white dots at the cell
  corners. Per pixel the ink is non-decreasing as tone falls.

  Args:
    tone: [B, H, W, 1] float in [0, 1], 1 = white.
    period: scalar or [B], cell size in pixels.
    angle: scalar or [B], screen angle in degrees.
    origin: (2,) or [B, 2], canvas position (row, col) of this image's top-left pixel.
  Returns:
    ink alpha [B, H, W, 1] float32 in [0, 1].
  """
  if tone.ndim != 4 or tone.shape[-1] != 1:
    raise ValueError(f"halftone expects tone [B, H, W, 1], got shape {tone.shape}")
  u, v = _screen_coords(tone.shape, period, angle, origin)
  d = jnp.hypot(u - jnp.round(u), v - jnp.round(v))  # distance to the cell centre, cells
  cov = jnp.clip(1.0 - tone, 0.0, 1.0)
  r = _dot_radius(cov)
  px = as_bhwc(per_image(period, tone.shape[0]))  # pixels per cell
  ink = jnp.clip(0.5 + (r - d) * px, 0.0, 1.0)
  # Fade the first sub-pixel dots in and the last white specks out, so tone 1 is pure
  # paper and tone 0 pure ink (both factors are monotone, so coverage stays monotone).
  ink = ink * jnp.clip(2.0 * r * px, 0.0, 1.0)
  return 1.0 - (1.0 - ink) * jnp.clip(2.0 * (_HALF_DIAGONAL - r) * px, 0.0, 1.0)


@jax.jit
def tone_bands(tone: jax.Array, levels) -> tuple[jax.Array, jax.Array]:
  """Posterizes tone into `levels` equal bands.

  Args:
    tone: [B, H, W, 1] in [0, 1].
    levels: int scalar or [B] (>= 2), may be a traced array.
  Returns:
    (band index [B, H, W, 1] float32 in {0 .. levels-1}, 0 = darkest,
     band tone [B, H, W, 1] = index / (levels - 1), so 0 = black and 1 = white).
  """
  n = as_bhwc(jnp.maximum(jnp.round(per_image(levels, tone.shape[0])), 2.0))
  index = jnp.clip(jnp.floor(tone * n), 0.0, n - 1.0)
  return index, index / (n - 1.0)


@jax.jit
def hatching(tone: jax.Array, *, levels=None, period=6.0, angle=45.0, max_width=0.35,
             origin=(0.0, 0.0)) -> jax.Array:
  """Hatching whose density follows the tone bands: darker bands add crossing directions.

  The tone is posterized into `levels` bands (tone_bands; None = use the tone as given).
  Darkness c = 1 - tone drives four line families at angle, angle + 90, angle + 45 and
  angle - 45 degrees; the j-th family widens from 0 to max_width (fraction of the period)
  as c goes from j/4 to (j + 1)/4, so light bands show sparse single lines and dark ones
  cross-hatching. Per pixel the ink never decreases as tone falls; full darkness covers
  about 1 - (1 - max_width)^2 (two perpendicular families) plus the diagonals.

  Args:
    tone, period, angle, origin: as halftone.
    levels: None, or the number of tone bands (scalar or [B], rounded, >= 2).
    max_width: line width as a fraction of the period when fully on.
  Returns:
    ink alpha [B, H, W, 1] float32 in [0, 1].
  """
  if tone.ndim != 4 or tone.shape[-1] != 1:
    raise ValueError(f"hatching expects tone [B, H, W, 1], got shape {tone.shape}")
  b = tone.shape[0]
  if levels is not None:
    tone = tone_bands(tone, levels)[1]
  dark = 1.0 - jnp.clip(tone, 0.0, 1.0)
  px = as_bhwc(per_image(period, b))
  angle = per_image(angle, b)
  ink = jnp.zeros_like(tone)
  for j, offset in enumerate((0.0, 90.0, 45.0, -45.0)):
    u, _ = _screen_coords(tone.shape, period, angle + offset, origin)
    half = 0.5 * as_bhwc(per_image(max_width, b)) * jnp.clip(4.0 * dark - j, 0.0, 1.0)
    dist = jnp.abs(u - jnp.round(u))  # cells to the nearest line centre
    line = jnp.clip(0.5 + (half - dist) * px, 0.0, 1.0) * jnp.clip(2.0 * half * px, 0.0, 1.0)
    ink = jnp.maximum(ink, line)
  return ink
