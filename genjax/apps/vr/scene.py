"""A tiny ray-cast scene with exact depth, to check stereo synthesis against ground truth.

A closed room (floor, ceiling, four walls) holding two spheres and a box, with smooth
textures that depend on the surface point only (view-independent, Lambertian shading from a
fixed light), so two eyes see the same colours and a correct warp of one view reproduces
the other. The room is closed, so every ray from inside hits something: pinhole views and
full panoramas (mono or omnidirectional stereo) both render. Same frame as
genjax.image.projections: x right, y up, the front is -z. Pure JAX.
"""

import math

import jax
import jax.numpy as jnp

from genjax.image import projections, sampling

FLOOR_Y = -1.2
WALL_Z = -9.0                       # the front wall
ROOM_MIN = (-4.0, FLOOR_Y, WALL_Z)
ROOM_MAX = (4.0, 3.0, 6.0)
SPHERE_CENTRE = (0.45, -0.35, -3.4)
SPHERE_RADIUS = 0.7
# (centre, radius, colour): the front sphere, and one behind the origin for panoramas.
SPHERES = ((SPHERE_CENTRE, SPHERE_RADIUS, (1.0, 0.55, 0.25)),
           ((-1.1, 0.3, 2.6), 0.6, (0.35, 0.8, 0.45)))
BOX_MIN = (-1.7, -1.2, -5.4)
BOX_MAX = (-0.6, 0.3, -4.5)
_LIGHT = tuple(c / math.sqrt(0.4 ** 2 + 0.8 ** 2 + 0.45 ** 2) for c in (0.4, 0.8, 0.45))
_EPS = 1e-4


def _vec(v, like: jax.Array) -> jax.Array:
  """A constant 3-vector broadcast to like's shape [..., 3] (rank promotion is explicit)."""
  return jnp.broadcast_to(jnp.asarray(v, like.dtype), like.shape)


def _safe_inv(d: jax.Array) -> jax.Array:
  return 1 / jnp.where(jnp.abs(d) < 1e-9, 1e-9, d)


def _room(o, d):
  """Ray parameter where a ray starting inside the room leaves it (always finite)."""
  t = (jnp.where(d > 0, _vec(ROOM_MAX, o), _vec(ROOM_MIN, o)) - o) * _safe_inv(d)
  return jnp.min(jnp.where(jnp.abs(d) < 1e-9, jnp.inf, t), -1)


def _sphere(o, d, centre, radius):
  oc = o - _vec(centre, o)
  a = jnp.sum(d * d, -1)
  b = 2 * jnp.sum(d * oc, -1)
  c = jnp.sum(oc * oc, -1) - radius ** 2
  disc = b * b - 4 * a * c
  t = (-b - jnp.sqrt(jnp.maximum(disc, 0))) / (2 * a)
  return jnp.where((disc > 0) & (t > _EPS), t, jnp.inf)


def _box(o, d):
  inv = _safe_inv(d)
  t0, t1 = (_vec(BOX_MIN, o) - o) * inv, (_vec(BOX_MAX, o) - o) * inv
  near = jnp.max(jnp.minimum(t0, t1), -1)
  far = jnp.min(jnp.maximum(t0, t1), -1)
  return jnp.where((near <= far) & (near > _EPS), near, jnp.inf)


def _box_normal(p, lo, hi):
  """Outward normal [..., 3] of the face of box [lo, hi] nearest to each point p [..., 3]."""
  q = (2 * p - _vec(lo, p) - _vec(hi, p)) / (_vec(hi, p) - _vec(lo, p))   # [-1, 1] inside
  axis = jnp.argmax(jnp.abs(q), -1)
  return jax.nn.one_hot(axis, 3, dtype=p.dtype) * jnp.sign(q)


def _shade(p, normal, base, texture):
  lambert = 0.35 + 0.65 * jnp.clip(jnp.sum(normal * _vec(_LIGHT, p), -1, keepdims=True), 0, 1)
  return jnp.clip(_vec(base, p) * texture[..., None] * lambert, 0, 1)


def _colours(p):
  """Colour of every object at the points p [..., 3]: one [K, ..., 3] stack, K as in _hits."""
  x, y, z = p[..., 0], p[..., 1], p[..., 2]
  tau = 2 * jnp.pi
  inward = -_box_normal(p, ROOM_MIN, ROOM_MAX)
  # Floor green, ceiling pale, walls blue; the pattern varies along every face.
  base = jnp.where(inward[..., 1:2] > 0.5, _vec((0.55, 0.6, 0.4), p),
                   jnp.where(inward[..., 1:2] < -0.5, _vec((0.8, 0.8, 0.75), p),
                             _vec((0.5, 0.6, 0.9), p)))
  room = _shade(p, inward, 1.0, 0.7 + 0.2 * jnp.sin(tau * (x + 0.5 * z) / 2.3)
                + 0.1 * jnp.sin(tau * (y - 0.3 * z) / 1.7)) * base
  out = [room]
  for centre, radius, colour in SPHERES:
    n = (p - _vec(centre, p)) / radius
    out.append(_shade(p, n, colour, 0.75 + 0.25 * jnp.sin(5 * n[..., 0] + 4 * n[..., 1])))
  box = _shade(p, _box_normal(p, BOX_MIN, BOX_MAX), (0.85, 0.3, 0.5),
               0.7 + 0.15 * jnp.sin(tau * (x + y + z) / 0.6) + 0.1 * jnp.cos(tau * y / 0.9))
  out.append(box)
  return jnp.stack(out)


def _hits(o, d):
  """Ray parameters [K, ...] of every object along rays o + t d."""
  return jnp.stack([_room(o, d)] + [_sphere(o, d, c, r) for c, r, _ in SPHERES] + [_box(o, d)])


def cast(o: jax.Array, d: jax.Array):
  """Rays o + t d, [..., 3] each -> (colour [..., 3] in [0, 1], t [...] of the nearest hit).

  With unit d, t is the distance in metres; with d_z = -1, the z-depth.
  """
  ts = _hits(o, d)
  k = jnp.argmin(ts, 0)
  t = jnp.min(ts, 0)
  colour = jnp.take_along_axis(_colours(o + t[..., None] * d), k[None, ..., None], axis=0)[0]
  return colour, t


def _subpixel_grid(height: int, width: int, n: int):
  """Pixel coordinates (x, y) [H, W, n, n] of n x n subpixel samples, and (x, y) [H, W] of
  the pixel centres."""
  offsets = (jnp.arange(n, dtype=jnp.float32) + 0.5) / n
  ys = jnp.arange(height, dtype=jnp.float32)[:, None, None, None] + offsets[None, None, :, None]
  xs = jnp.arange(width, dtype=jnp.float32)[None, :, None, None] + offsets[None, None, None, :]
  cx = jnp.arange(width, dtype=jnp.float32)[None, :] + 0.5
  cy = jnp.arange(height, dtype=jnp.float32)[:, None] + 0.5
  return jnp.broadcast_arrays(xs, ys), jnp.broadcast_arrays(cx, cy)


def render(eye_x: float, *, height: int, width: int, focal_px: float, supersample: int = 3):
  """Renders the scene from a pinhole camera at (eye_x, 0, 0) looking along -z.

  Returns (rgb [H, W, 3] float32 in [0, 1], averaged over supersample^2 rays per pixel,
  depth [H, W] z-depth in metres at the pixel centres).
  """
  def rays(xs, ys):
    d = jnp.stack([(xs - width / 2) / focal_px, -(ys - height / 2) / focal_px,
                   -jnp.ones_like(xs)], -1)                  # d_z = -1: t is the z-depth
    return _vec((eye_x, 0.0, 0.0), d), d

  sub, centres = _subpixel_grid(height, width, supersample)
  rgb, _ = cast(*rays(*sub))
  _, depth = cast(*rays(*centres))
  return rgb.mean((2, 3)), depth


def render_panorama(*, height: int, eye_offset: float = 0.0, supersample: int = 3):
  """Renders an equirectangular panorama [H, 2H] from the origin, mono or one ODS eye.

  Omnidirectional stereo (ODS): the ray of longitude lon starts on the viewing circle at
  eye_offset * right(lon), right(lon) = (cos lon, 0, sin lon) the horizontal direction to
  the right of that view, and looks along the pixel's direction. eye_offset = +ipd / 2 is
  the right eye, -ipd / 2 the left eye, 0 the mono panorama seen from the centre.

  Returns (rgb [H, 2H, 3] float32 in [0, 1], averaged over supersample^2 rays per pixel,
  distance [H, 2H] in metres from the ray's origin to the surface, at the pixel centres).
  """
  width = 2 * height

  def rays(xs, ys):
    lon, lat = sampling.equirect_angles(xs, ys, height, width)
    d = projections.lonlat_to_direction(lon, lat)
    right = jnp.stack([jnp.cos(lon), jnp.zeros_like(lon), jnp.sin(lon)], -1)
    return eye_offset * right, d

  sub, centres = _subpixel_grid(height, width, supersample)
  rgb, _ = cast(*rays(*sub))
  _, distance = cast(*rays(*centres))
  return rgb.mean((2, 3)), distance
