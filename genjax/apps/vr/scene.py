"""A tiny ray-cast scene with exact depth, to check stereo synthesis against ground truth.

A floor, a back wall, a sphere and a box, with smooth textures that depend on the surface
point only (view-independent, Lambertian shading from a fixed light), so two eyes see the
same colours and a correct warp of one view reproduces the other. Same frame as
genjax.image.projections: x right, y up, cameras look along -z. Pure JAX.
"""

import math

import jax
import jax.numpy as jnp

FLOOR_Y = -1.2
WALL_Z = -9.0
SPHERE_CENTRE = (0.45, -0.35, -3.4)
SPHERE_RADIUS = 0.7
BOX_MIN = (-1.7, -1.2, -5.4)
BOX_MAX = (-0.6, 0.3, -4.5)
_LIGHT = tuple(c / math.sqrt(0.4 ** 2 + 0.8 ** 2 + 0.45 ** 2) for c in (0.4, 0.8, 0.45))
_EPS = 1e-4


def _vec(v, like: jax.Array) -> jax.Array:
  """A constant 3-vector broadcast to like's shape [..., 3] (rank promotion is explicit)."""
  return jnp.broadcast_to(jnp.asarray(v, like.dtype), like.shape)


def _plane_floor(o, d):
  t = (FLOOR_Y - o[..., 1]) / jnp.where(d[..., 1] < 0, d[..., 1], -1e-9)
  return jnp.where((d[..., 1] < 0) & (o[..., 2] - t > WALL_Z), t, jnp.inf)


def _plane_wall(o, d):
  return o[..., 2] - WALL_Z                                    # d_z = -1 for every ray


def _sphere(o, d):
  oc = o - _vec(SPHERE_CENTRE, o)
  a = jnp.sum(d * d, -1)
  b = 2 * jnp.sum(d * oc, -1)
  c = jnp.sum(oc * oc, -1) - SPHERE_RADIUS ** 2
  disc = b * b - 4 * a * c
  t = (-b - jnp.sqrt(jnp.maximum(disc, 0))) / (2 * a)
  return jnp.where((disc > 0) & (t > _EPS), t, jnp.inf)


def _box(o, d):
  lo, hi = _vec(BOX_MIN, o), _vec(BOX_MAX, o)
  inv = 1 / jnp.where(jnp.abs(d) < 1e-9, 1e-9, d)
  t0, t1 = (lo - o) * inv, (hi - o) * inv
  near = jnp.max(jnp.minimum(t0, t1), -1)
  far = jnp.min(jnp.maximum(t0, t1), -1)
  return jnp.where((near <= far) & (near > _EPS), near, jnp.inf)


def _shade(p, normal, base, texture):
  lambert = 0.35 + 0.65 * jnp.clip(jnp.sum(normal * _vec(_LIGHT, p), -1, keepdims=True), 0, 1)
  return jnp.clip(_vec(base, p) * texture[..., None] * lambert, 0, 1)


def _colours(p):
  """Colour [..., 3] of every object at the points p [..., 3] (one [K, ..., 3] stack)."""
  x, y, z = p[..., 0], p[..., 1], p[..., 2]
  tau = 2 * jnp.pi
  floor = _shade(p, _vec((0.0, 1.0, 0.0), p), (0.55, 0.6, 0.4),
                 0.75 + 0.2 * jnp.sin(tau * x / 0.8) + 0.08 * jnp.sin(tau * z / 3.0))
  wall = _shade(p, _vec((0.0, 0.0, 1.0), p), (0.5, 0.6, 0.9),
                0.7 + 0.2 * jnp.sin(tau * x / 1.1) + 0.1 * jnp.sin(tau * y / 0.7))
  n_sphere = (p - _vec(SPHERE_CENTRE, p)) / SPHERE_RADIUS
  sphere = _shade(p, n_sphere, (1.0, 0.55, 0.25),
                  0.75 + 0.25 * jnp.sin(5 * n_sphere[..., 0] + 4 * n_sphere[..., 1]))
  lo, hi = _vec(BOX_MIN, p), _vec(BOX_MAX, p)
  q = (2 * p - lo - hi) / (hi - lo)                          # [-1, 1] inside the box
  axis = jnp.argmax(jnp.abs(q), -1)
  n_box = jax.nn.one_hot(axis, 3) * jnp.sign(q)
  box = _shade(p, n_box, (0.85, 0.3, 0.5),
               0.7 + 0.15 * jnp.sin(tau * (x + y + z) / 0.6) + 0.1 * jnp.cos(tau * y / 0.9))
  return jnp.stack([floor, wall, sphere, box])


def render(eye_x: float, *, height: int, width: int, focal_px: float, supersample: int = 3):
  """Renders the scene from a camera at (eye_x, 0, 0) looking along -z.

  Returns (rgb [H, W, 3] float32 in [0, 1], averaged over supersample^2 rays per pixel,
  depth [H, W] z-depth in metres at the pixel centres).
  """
  def cast(xs, ys):
    d = jnp.stack([(xs - width / 2) / focal_px, -(ys - height / 2) / focal_px,
                   -jnp.ones_like(xs)], -1)
    o = _vec((eye_x, 0.0, 0.0), d)
    ts = jnp.stack([_plane_floor(o, d), _plane_wall(o, d), _sphere(o, d), _box(o, d)])
    k = jnp.argmin(ts, 0)
    t = jnp.min(ts, 0)                                        # z-depth: d_z = -1
    colour = jnp.take_along_axis(_colours(o + t[..., None] * d), k[None, ..., None], axis=0)[0]
    return colour, t

  n = supersample
  offsets = (jnp.arange(n) + 0.5) / n
  ys = jnp.arange(height)[:, None, None, None] + offsets[None, None, :, None]
  xs = jnp.arange(width)[None, :, None, None] + offsets[None, None, None, :]
  rgb, _ = cast(*jnp.broadcast_arrays(xs.astype(jnp.float32), ys.astype(jnp.float32)))
  cx = jnp.arange(width, dtype=jnp.float32)[None, :] + 0.5
  cy = jnp.arange(height, dtype=jnp.float32)[:, None] + 0.5
  _, depth = cast(*jnp.broadcast_arrays(cx, cy))
  return rgb.mean((2, 3)), depth
