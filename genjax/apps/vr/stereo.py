"""Stereo from one photo and its depth (depth-image-based rendering), and stereo layouts.

Geometry: two parallel pinhole cameras, the right eye `baseline` metres to the right of the
left eye (along the camera's +x). A point at z-depth Z (metres along the optical axis)
seen at column x in the left image appears at x - d in the right image, with disparity

  d = focal_px * baseline / Z                     (pixels; > 0, nearer = larger)

minus focal_px * baseline / convergence when a convergence distance is given: shifting
the right image so that the plane at that distance has zero parallax (the "shifted sensor"
arrangement: parallel axes, no keystone), nearer points pop out of the screen.

warp_to_right_eye forward-warps the disparities with a z-buffer, then fetches each right-eye
pixel's colour from the left image by bilinear sampling at x + d. Warping the disparity
(and not the colours) keeps the colours sub-pixel exact; the z-buffer is a segment_max over
the target pixel index, in JAX, so no sort is needed and ties resolve deterministically.
"""

import jax
import jax.numpy as jnp

from genjax.image import sampling

CRACK_PX = 0.5   # a one-pixel gap between splats whose disparities differ less is a crack


def disparity_px(depth: jax.Array, *, baseline, focal_px, convergence=None) -> jax.Array:
  """Disparity in pixels (left x minus right x) of z-depths in metres."""
  d = focal_px * baseline / depth
  if convergence is not None:
    d = d - focal_px * baseline / convergence
  return d


def warp_to_right_eye(left: jax.Array, depth: jax.Array, *, baseline, focal_px,
                      convergence=None):
  """Synthesizes the right eye's view from the left view and its depth.

  Args:
    left: [H, W, C] float image of the left eye.
    depth: [H, W] z-depth in metres (> 0; inf for the sky is fine).
    baseline: eye separation in metres (the right eye is to the right).
    focal_px: focal length in pixels.
    convergence: distance in metres of the zero-parallax plane (None: infinity).

  Returns:
    (right [H, W, C], holes [H, W] bool). holes marks disocclusions: right-eye pixels that
    no left pixel reaches (surfaces hidden from the left eye, the strip beyond the left
    image's edge). They copy the farther neighbouring pixel of their row (see
    fill_from_background), a stopgap for an inpainting model to redo.
  """
  h, w, _ = left.shape
  if depth.shape != (h, w):
    raise ValueError(f"depth {depth.shape} must match the image {left.shape[:2]}")
  disp = disparity_px(depth.astype(jnp.float32), baseline=baseline, focal_px=focal_px,
                      convergence=convergence)
  cols = jnp.arange(w)
  rows = jnp.arange(h)

  # Splat: source pixel j lands at x = j + 0.5 - d, i.e. in target pixel floor(x).
  target = jnp.floor(cols[None, :] + 0.5 - disp).astype(jnp.int32)
  inside = (target >= 0) & (target < w) & jnp.isfinite(disp)
  segment = jnp.where(inside, rows[:, None] * w + target, h * w)   # h * w: discarded
  # z-buffer: the nearest surface (largest disparity) wins each target pixel.
  best = jax.ops.segment_max(jnp.where(inside, disp, -jnp.inf).ravel(), segment.ravel(),
                             num_segments=h * w + 1)[:h * w].reshape(h, w)
  hit = jnp.isfinite(best)

  # A stretched surface leaves one-pixel cracks between splats of nearly equal disparity;
  # those are not disocclusions, so close them with the neighbours' mean.
  before = jnp.pad(best, ((0, 0), (1, 0)), constant_values=-jnp.inf)[:, :-1]
  after = jnp.pad(best, ((0, 0), (0, 1)), constant_values=-jnp.inf)[:, 1:]
  crack = (~hit & jnp.isfinite(before) & jnp.isfinite(after)
           & (jnp.abs(before - after) < CRACK_PX))
  known = hit | crack
  disp_right = jnp.where(hit, best, jnp.where(crack, 0.5 * (before + after), 0.0))

  # Colours: bilinear fetch from the left image at x + d (clamped to its footprint).
  x = jnp.clip(cols[None, :] + 0.5 + disp_right, 0, w)
  y = jnp.broadcast_to(rows[:, None] + 0.5, (h, w)).astype(x.dtype)
  right, _ = sampling.sample_bilinear(left, x, y)

  return fill_from_background(right, known, disp_right), ~known


def fill_from_background(img: jax.Array, known: jax.Array, nearness: jax.Array, *,
                         wrap: bool = False) -> jax.Array:
  """Fills the unknown pixels of img [H, W, C] from the farther side of their row.

  A hole copies the farther (smaller nearness) of the nearest known pixels on either side
  of it in its row: disocclusions reveal background, whose texture the source view never
  saw, so extending the foreground into them would fatten objects. A stopgap until an
  inpainting model redoes the holes.

  Args:
    img: [H, W, C]; known: [H, W] bool; nearness: [H, W], larger = nearer (disparity,
      inverse distance), read at known pixels only.
    wrap: rows are circular (equirectangular panoramas): the search continues across the
      left and right edges.
  """
  h, w = known.shape
  reps = 3 if wrap else 1            # with wrap, search the middle copy of a row tiled 3x
  known_t = jnp.tile(known, (1, reps))
  near_t = jnp.tile(nearness, (1, reps))
  cols = jnp.arange(reps * w)[None, :]
  last = jax.lax.cummax(jnp.where(known_t, cols, -1), axis=1)
  nxt = jax.lax.cummin(jnp.where(known_t, cols, reps * w), axis=1, reverse=True)
  lo, hi = (reps // 2) * w, (reps // 2 + 1) * w
  last, nxt = last[:, lo:hi], nxt[:, lo:hi]
  near_at = lambda c: jnp.take_along_axis(near_t, jnp.clip(c, 0, reps * w - 1), 1)  # noqa: E731
  n_last = jnp.where(last >= 0, near_at(last), jnp.inf)
  n_next = jnp.where(nxt < reps * w, near_at(nxt), jnp.inf)
  source = jnp.mod(jnp.where(n_last <= n_next, last, nxt), w)     # [H, W]
  fill = jnp.take_along_axis(img, source[..., None], axis=1)
  return jnp.where(known[..., None], img, fill)


# ---------------------------------------------------------------------------------------------
# Layouts.

def _luma(img: jax.Array) -> jax.Array:
  """Rec. 601 luma [..., 1] of RGB [..., 3]."""
  return (0.299 * img[..., 0:1] + 0.587 * img[..., 1:2] + 0.114 * img[..., 2:3])


ANAGLYPH_MODES = {
    # Red channel from the left eye, green and blue (cyan) from the right eye.
    "color": lambda l, r: jnp.concatenate([l[..., 0:1], r[..., 1:3]], axis=-1),
    # Luma of each eye: no colour, least rivalry.
    "gray": lambda l, r: jnp.concatenate([_luma(l), _luma(r), _luma(r)], axis=-1),
    # Luma of the left eye in red (avoids flicker on red objects), colour on the right.
    "half_color": lambda l, r: jnp.concatenate([_luma(l), r[..., 1:3]], axis=-1),
}


def check_pair(left, right):
  """Raises ValueError unless the two eyes have the same shape."""
  if left.shape != right.shape:
    raise ValueError(f"left {left.shape} and right {right.shape} images differ in shape")


def anaglyph_red_cyan(left: jax.Array, right: jax.Array, *, mode: str = "color") -> jax.Array:
  """Red-cyan anaglyph [..., H, W, 3] of two RGB views (red filter over the left eye)."""
  check_pair(left, right)
  if mode not in ANAGLYPH_MODES:
    raise ValueError(f"unknown anaglyph mode {mode!r}; valid: {sorted(ANAGLYPH_MODES)}")
  return ANAGLYPH_MODES[mode](left, right)


def side_by_side(left: jax.Array, right: jax.Array) -> jax.Array:
  """[..., H, W, C] x 2 -> [..., H, 2W, C], left eye on the left (parallel viewing)."""
  check_pair(left, right)
  return jnp.concatenate([left, right], axis=-2)


def over_under(left: jax.Array, right: jax.Array) -> jax.Array:
  """[..., H, W, C] x 2 -> [..., 2H, W, C], left eye on top."""
  check_pair(left, right)
  return jnp.concatenate([left, right], axis=-3)


def ods_over_under(pano_left: jax.Array, pano_right: jax.Array) -> jax.Array:
  """Omni-directional stereo frame: two [H, 2H, C] equirectangular eyes -> [2H, 2H, C]
  (1:1), left eye on top, the layout 360 stereo players expect ("top-bottom")."""
  check_pair(pano_left, pano_right)
  h, w = pano_left.shape[-3:-1]
  if w != 2 * h:
    raise ValueError(f"ODS eyes must be 2:1 equirectangular, got {h}x{w} (HxW)")
  return over_under(pano_left, pano_right)
