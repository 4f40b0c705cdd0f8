"""Omnidirectional stereo (ODS) panoramas from one equirectangular panorama and its depth.

ODS (Peleg, Ben-Ezra and Pritch, "Omnistereo: panoramic stereo imaging", PAMI 2001; the
format of Google's "Rendering omni-directional stereo content"): each column of an eye's
panorama is seen from a different point, on a horizontal circle of radius r = ipd / 2 around
the centre, tangent to the viewing direction. The ray of longitude lon starts at
s r right(lon), right(lon) = (cos lon, 0, sin lon), s = +1 for the right eye, -1 for the left,
which is what a head turning in place would see with each eye. Same frames as
genjax.image.projections (x right, y up, front -z) and genjax.apps.vr.scene.render_panorama.

Geometry. A surface point at distance D from the centre, at (lon, lat), has horizontal
distance rho = D cos(lat) and height y = D sin(lat). The eye s sees it (if rho > r) at

  lon' = lon - s asin(r / rho),       lat' = atan2(y, sqrt(rho^2 - r^2)),

at distance sqrt(D^2 - r^2) along that ray: the right eye sees near points shifted left,
as in planar stereo. So each eye is a forward warp of the centre panorama by a per-pixel,
per-column offset; as in stereo.warp_to_right_eye we splat the offsets with a z-buffer
(nearest surface wins), close the short gaps a stretched surface leaves, and fetch the
colours from the source panorama by bilinear sampling (wrapping in longitude, across the
poles). Points within the viewing circle (rho <= r: straight up and down) are invisible
to ODS; near the poles ODS itself is distorted, as every ODS renderer is.
"""

import jax
import jax.numpy as jnp

from genjax.apps.vr import stereo
from genjax.image import sampling

EYES = ("left", "right")
DEFAULT_IPD = 0.064    # metres: an average adult interpupillary distance
MAX_GAP = 3            # pixels: the widest gap in a stretched surface that is closed
SAME_SURFACE = 0.05    # gap ends whose inverse distances differ less (relative) are one surface


def ods_eye(pano: jax.Array, distance: jax.Array, *, eye_offset):
  """One ODS eye panorama from the centre view.

  Args:
    pano: [H, W, C] float equirectangular panorama seen from the centre (W = 2H usual).
    distance: [H, W] distance in metres from the centre to the surface at each pixel
      (> 0; inf for the sky).
    eye_offset: metres, signed as in scene.render_panorama: +ipd / 2 is the right eye,
      -ipd / 2 the left eye (0 gives back the centre view). May be traced, so one compiled
      function serves both eyes.

  Returns:
    (eye_pano [H, W, C], holes [H, W] bool): holes are disocclusions (surfaces the centre
    view does not see) and the invisible caps at the poles; they copy the farther
    neighbour of their row (stereo.fill_from_background, wrapping), for an inpainting model
    to redo.
  """
  h, w, _ = pano.shape
  if distance.shape != (h, w):
    raise ValueError(f"distance {distance.shape} must match the panorama {pano.shape[:2]}")
  offset = jnp.asarray(eye_offset, jnp.float32)
  s, r = jnp.sign(offset), jnp.abs(offset)
  dist = distance.astype(jnp.float32)
  cols = jnp.arange(w, dtype=jnp.float32)[None, :] + 0.5
  rows = jnp.arange(h, dtype=jnp.float32)[:, None] + 0.5
  xs, ys = jnp.broadcast_arrays(cols, rows)                        # source centres [H, W]
  lon, lat = sampling.equirect_angles(xs, ys, h, w)

  # Where each source pixel lands in the eye's panorama.
  rho = dist * jnp.cos(lat)
  ok = (rho > r) & (dist > 0)
  safe_rho = jnp.where(ok, rho, 2 * r + 1)                          # finite gradients
  finite = jnp.isfinite(safe_rho)
  shift = jnp.where(finite, jnp.arcsin(r / jnp.where(finite, safe_rho, 1.0)), 0.0)
  height = jnp.where(finite, dist * jnp.sin(lat), 0.0)
  horiz = jnp.where(finite, jnp.sqrt(jnp.maximum(safe_rho ** 2 - r ** 2, 0.0)), 1.0)
  lat2 = jnp.where(finite, jnp.arctan2(height, horiz), lat)        # at infinity: unchanged
  x2, y2 = sampling.equirect_pixel_coords(lon - s * shift, lat2, h, w)
  dx, dy = x2 - xs, y2 - ys                                         # small: no wrap needed
  tx = jnp.mod(jnp.floor(x2).astype(jnp.int32), w)
  ty = jnp.floor(y2).astype(jnp.int32)
  inside = ok & (ty >= 0) & (ty < h)

  # z-buffer: the nearest surface (largest 1 / distance) wins; then the winner's index, so
  # its (dx, dy) come from one source pixel.
  nearness = jnp.where(inside, 1 / dist, -jnp.inf).ravel()
  segment = jnp.where(inside, ty * w + tx, h * w).ravel()          # h * w: discarded
  best = jax.ops.segment_max(nearness, segment, num_segments=h * w + 1)
  winner = inside.ravel() & (nearness == best[segment])
  index = jax.ops.segment_max(jnp.where(winner, jnp.arange(h * w), -1), segment,
                              num_segments=h * w + 1)[:h * w].reshape(h, w)
  hit = index >= 0
  pick = lambda a: jnp.where(hit, a.ravel()[jnp.maximum(index, 0)], 0.0)  # noqa: E731
  near_t, dx_t, dy_t = pick(1 / jnp.where(ok, dist, jnp.inf)), pick(dx), pick(dy)

  # A stretched surface leaves gaps between its splats (ODS stretches rows near the poles
  # and near surfaces sideways); close gaps of up to MAX_GAP pixels whose two ends lie on one
  # surface (nearly equal distance), along the rows (wrapping) and then the columns.
  fields = (near_t, dx_t, dy_t)
  known, fields = _close_gaps(hit, fields, wrap=True)
  known_c, fields_c = _close_gaps(known.T, tuple(f.T for f in fields), wrap=False)
  known, (near_t, dx_t, dy_t) = known_c.T, tuple(f.T for f in fields_c)

  # Colours: bilinear fetch from the centre panorama, offset back by the winner's shift.
  x = xs - jnp.where(known, dx_t, 0.0)
  y = jnp.clip(ys - jnp.where(known, dy_t, 0.0), 0.0, float(h))
  out = sampling.sample_equirect_px(pano, x, y)
  return stereo.fill_from_background(out, known, near_t, wrap=True), ~known


def _close_gaps(known: jax.Array, fields: tuple, *, wrap: bool):
  """Closes short gaps along the rows of known [H, W] bool: an unknown run of at most
  MAX_GAP pixels whose known ends have inverse distances (fields[0]) within SAME_SURFACE of
  each other gets every field [H, W] linearly interpolated between the ends.
  -> (known, fields).

  The ends are found with MAX_GAP + 1 shifts rather than cumulative max/min scans, which
  compile slowly on CPU and search further than needed.
  """
  h, w = known.shape
  cols = jnp.arange(w)[None, :]
  none = MAX_GAP + 2
  d_prev = jnp.full((h, w), none)          # distance to the nearest known pixel on the left
  d_next = jnp.full((h, w), none)          # ... and on the right
  for k in range(MAX_GAP + 1, 0, -1):      # nearest last, so it wins
    left_ok = jnp.roll(known, k, axis=1) & (wrap | (cols >= k))
    right_ok = jnp.roll(known, -k, axis=1) & (wrap | (cols < w - k))
    d_prev = jnp.where(left_ok, k, d_prev)
    d_next = jnp.where(right_ok, k, d_next)
  at = lambda f, c: jnp.take_along_axis(f, jnp.mod(c, w), 1)  # noqa: E731
  a = [at(f, cols - d_prev) for f in fields]
  b = [at(f, cols + d_next) for f in fields]
  close = (~known & (d_prev + d_next - 1 <= MAX_GAP)
           & (jnp.abs(a[0] - b[0]) <= SAME_SURFACE * jnp.maximum(a[0], b[0])))
  t = d_prev / (d_prev + d_next)
  fields = tuple(jnp.where(close, fa + t * (fb - fa), f) for f, fa, fb in zip(fields, a, b))
  return known | close, fields


def eye_offsets(ipd=DEFAULT_IPD) -> jax.Array:
  """Signed eye offsets [2] in metres, in EYES order (left, right)."""
  return jnp.asarray([-0.5, 0.5], jnp.float32) * jnp.asarray(ipd, jnp.float32)


def ods_pair(pano: jax.Array, distance: jax.Array, *, ipd=DEFAULT_IPD):
  """Both ODS eyes: (eyes [2, H, W, C], holes [2, H, W]), left eye first."""
  if pano.ndim != 3:
    raise ValueError(f"pano must be [H, W, C], got shape {pano.shape}")
  return jax.vmap(lambda o: ods_eye(pano, distance, eye_offset=o))(eye_offsets(ipd))


def ods_over_under_from_mono(pano: jax.Array, distance: jax.Array, *, ipd=DEFAULT_IPD):
  """The 1:1 top-bottom ODS frame [2H, 2H, C] (left eye on top) and its holes [2H, 2H]."""
  eyes, holes = ods_pair(pano, distance, ipd=ipd)
  return stereo.ods_over_under(eyes[0], eyes[1]), jnp.concatenate([holes[0], holes[1]], axis=0)


DEFAULT_EYE_HEIGHT = 1.6   # metres above the ground: a standing adult's eyes


def ground_plane_distance(height: int, *, eye_height: float = DEFAULT_EYE_HEIGHT,
                          far: float = jnp.inf) -> jax.Array:
  """A distance prior for a panorama whose geometry is unknown: [height, 2 height] metres.

  Below the horizon, the distance to a flat ground eye_height below the eye along each
  row's direction (eye_height / sin(-lat)); at and above it, `far` (infinity: no
  parallax). What a generated landscape most nearly is; objects standing on the ground
  get the ground's parallax at their foot, so they lean slightly in stereo.
  """
  lat = jnp.pi / 2 - (jnp.arange(height, dtype=jnp.float32) + 0.5) * (jnp.pi / height)
  d = jnp.where(lat < 0, eye_height / jnp.maximum(jnp.sin(-lat), 1e-6), far)
  return jnp.broadcast_to(jnp.minimum(d, far)[:, None], (height, 2 * height))
