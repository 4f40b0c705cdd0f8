"""Procedural ray-cast rooms with exact depth: the training data of the depth UNet.

  image, depth = room(index, height=64, width=64)   # uint8 [H, W, 3], float32 [H, W] metres

Each (seed, index) draws a scene and renders it by casting one ray per pixel (or n x n,
`supersample`; NumPy, vectorised over pixels), optionally from an eye moved to the camera's
right (`eye_shift`: the right eye of a stereo pair, to score stereo synthesis): a box room
of random size (3-14 m wide, 2.4-5 m high, 4-16 m deep) seen by a pinhole camera at a random
place inside it, turned by a random yaw, pitch and roll, with a random horizontal field of
view (35-90 degrees); one to five spheres and boxes standing on the floor or floating; every
surface with its own colour and texture (checks, stripes, waves or plain, at random scales);
one directional light (lighting one side of a surface, or both) and ambient light of random
colour and strength, and distance fog in half of the rooms only: with fog in every room,
brightness alone told distance, and a net that learned that misjudged clear scenes (it put
the fog-free ray-cast test scene, genjax.apps.vr.scene, at half its distance). Depth is the
z-depth of the hit point (distance along the optical axis, as genjax.apps.vr.stereo
expects), in metres, exact up to float32. Same frames as genjax.image.projections: camera
looking along -Z, image y down.
"""

import math

import numpy as np

_EPS = 1e-6


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
  """Camera-to-world rotation R_Y(-yaw) @ R_X(pitch) @ R_Z(-roll) (projections' order)."""
  cy, sy = math.cos(-yaw), math.sin(-yaw)
  cp, sp = math.cos(pitch), math.sin(pitch)
  cr, sr = math.cos(-roll), math.sin(-roll)
  ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
  rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
  rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
  return ry @ rx @ rz


def _hit_box_inside(o, d, lo, hi):
  """Exit distance and normal index (0..5: -x +x -y +y -z +z walls) of rays from inside."""
  inv = 1.0 / np.where(np.abs(d) < _EPS, _EPS, d)
  t_axes = np.where(d > 0, (hi - o) * inv, (lo - o) * inv)            # [N, 3]
  t_axes = np.where(np.abs(d) < _EPS, np.inf, t_axes)                  # parallel to a wall pair
  axis = np.argmin(t_axes, axis=1)
  t = np.take_along_axis(t_axes, axis[:, None], 1)[:, 0]
  side = np.take_along_axis(d, axis[:, None], 1)[:, 0] > 0
  return t, 2 * axis + side


def _hit_box(o, d, lo, hi):
  """Entry distance (inf on a miss) and outward normal [N, 3] of rays hitting a solid box."""
  inv = 1.0 / np.where(np.abs(d) < _EPS, _EPS, d)
  t0, t1 = (lo - o) * inv, (hi - o) * inv
  near, far = np.minimum(t0, t1), np.maximum(t0, t1)
  t_in, t_out = near.max(1), far.min(1)
  hit = (t_in <= t_out) & (t_in > 1e-3)
  axis = np.argmax(near, axis=1)
  normal = np.zeros_like(d)
  normal[np.arange(len(d)), axis] = -np.sign(np.take_along_axis(d, axis[:, None], 1)[:, 0])
  return np.where(hit, t_in, np.inf), normal


def _hit_sphere(o, d, centre, radius):
  oc = o - centre
  b = np.sum(oc * d, 1)
  c = np.sum(oc * oc, 1) - radius ** 2
  disc = b * b - c
  t = -b - np.sqrt(np.maximum(disc, 0.0))
  t = np.where((disc > 0) & (t > 1e-3), t, np.inf)
  return t, None


def _texture(p, rng_params):
  """A pattern in [0, 1] of the hit points [N, 3] (kind, scale, phase, axes)."""
  kind, scale, phase, a, b = rng_params
  u, v = p[:, a] * scale + phase, p[:, b] * scale
  if kind == 0:
    return np.ones(len(p))
  if kind == 1:
    return (np.floor(u) + np.floor(v)) % 2
  if kind == 2:
    return (np.floor(u) % 2).astype(np.float64)
  return 0.5 + 0.5 * np.sin(2 * math.pi * u) * np.cos(2 * math.pi * v)


def _surface(rng):
  """(base colour [3], second colour [3], texture params) of one surface."""
  base = rng.uniform(0.1, 0.95, 3)
  other = np.clip(base * rng.uniform(0.3, 1.0) + rng.normal(0, 0.15, 3), 0, 1)
  axes = rng.permutation(3)[:2]
  return base, other, (int(rng.integers(4)), rng.uniform(0.5, 4.0), rng.uniform(0, 1),
                       int(axes[0]), int(axes[1]))


def room(index: int, *, height: int, width: int, seed: int = 0, eye_shift: float = 0.0,
         supersample: int = 1):
  """One procedural room: (image uint8 [height, width, 3], z-depth float32 [height, width]
  in metres, hfov in degrees). Deterministic in (seed, index).

  eye_shift: metres along the camera's own +x axis (its right) to move the eye by, the scene
  unchanged: eye_shift = baseline renders the right eye of a parallel stereo pair whose left
  eye is eye_shift = 0 (the room's eye keeps at least 0.3 m from the walls, so keep it below
  that). supersample: n casts n x n rays per pixel and averages their colours (odd n: the
  middle ray is the pixel centre's, where the depth is taken), so edges and fine textures
  are not aliased and two views of the same surface agree up to the warp.
  """
  rng = np.random.default_rng([seed, 7, index])
  size = np.array([rng.uniform(3, 14), rng.uniform(2.4, 5), rng.uniform(4, 16)])
  lo, hi = -size / 2 * np.array([1, 0, 1]), size / 2 * np.array([1, 2, 1])
  eye = np.array([rng.uniform(lo[0] + 0.3, hi[0] - 0.3), rng.uniform(0.8, min(2.0, hi[1] - 0.3)),
                  rng.uniform(lo[2] + 0.3, hi[2] - 0.3)])
  hfov = rng.uniform(35, 90)
  rot = _rotation(rng.uniform(-math.pi, math.pi), math.radians(rng.uniform(-20, 15)),
                  math.radians(rng.normal(0, 4)))
  surfaces = [_surface(rng) for _ in range(6)]
  # Objects: spheres and boxes, on the floor or floating, not around the eye.
  objects = []                            # (surface index, centre, radius, box half or None)
  for k in range(int(rng.integers(1, 6))):
    surfaces.append(_surface(rng))
    r = rng.uniform(0.2, 1.2)
    centre = np.array([rng.uniform(lo[0] + r, hi[0] - r), 0.0, rng.uniform(lo[2] + r, hi[2] - r)])
    centre[1] = r if rng.uniform() < 0.7 else rng.uniform(r, hi[1] - r)
    if np.linalg.norm(centre - eye) < r + 0.5:
      continue
    half = None if rng.uniform() < 0.5 else r * rng.uniform(0.5, 1.2, 3)
    objects.append((6 + k, centre, r, half))
  light = rng.normal(size=3) + np.array([0.0, 2.0, 0.0])
  light /= np.linalg.norm(light)
  ambient = rng.uniform(0.25, 0.6)
  tint = rng.uniform(0.75, 1.0, 3)
  two_sided = rng.uniform() < 0.5
  fog_length, fog_grey = rng.uniform(15, 60), rng.uniform(0.4, 0.8)
  has_fog = rng.uniform() < 0.5

  n = int(supersample)
  f = (width / 2) / math.tan(math.radians(hfov) / 2)
  offsets = (np.arange(n) + 0.5) / n
  ys = (np.arange(height)[:, None] + offsets[None, :]).reshape(-1)
  xs = (np.arange(width)[:, None] + offsets[None, :]).reshape(-1)
  ys, xs = np.meshgrid(ys, xs, indexing="ij")                       # [H n, W n]
  cam = np.stack([(xs - width / 2) / f, -(ys - height / 2) / f, -np.ones_like(xs)], -1)
  cam = cam.reshape(-1, 3)
  d = cam @ rot.T
  d /= np.linalg.norm(d, axis=1, keepdims=True)
  o = np.broadcast_to(eye + eye_shift * rot[:, 0], d.shape)

  # The room's six walls, then the objects in front of them.
  t, wall = _hit_box_inside(o, d, lo, hi)
  normals6 = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]],
                      np.float64)
  normal = normals6[wall]
  surface_id = wall.copy()
  for s, centre, r, half in objects:
    if half is None:
      tk, _ = _hit_sphere(o, d, centre, r)
      p_k = o + d * np.where(np.isfinite(tk), tk, 0.0)[:, None]     # misses: unused
      nk = (p_k - centre) / r
    else:
      tk, nk = _hit_box(o, d, centre - half, centre + half)
    closer = tk < t
    t = np.where(closer, tk, t)
    normal = np.where(closer[:, None], nk, normal)
    surface_id = np.where(closer, s, surface_id)

  p = o + d * t[:, None]
  colour = np.zeros_like(p)
  for s, (base, other, params) in enumerate(surfaces):
    sel = surface_id == s
    if sel.any():
      pattern = _texture(p[sel], params)[:, None]
      colour[sel] = base * pattern + other * (1 - pattern)
  cos_light = np.sum(normal * light, 1)
  lambert = np.clip(np.abs(cos_light) if two_sided else cos_light, 0, 1)[:, None]
  shade = (ambient + (1 - ambient) * lambert) * tint
  fog = np.exp(-t / fog_length)[:, None] if has_fog else np.ones_like(t)[:, None]
  img = (colour * shade * fog + (1 - fog) * fog_grey).reshape(height, n, width, n, 3)
  z = (t * -(cam[:, 2] / np.linalg.norm(cam, axis=1))).reshape(height, n, width, n)
  image = np.round(np.clip(img.mean((1, 3)), 0, 1) * 255).astype(np.uint8)
  return image, z[:, n // 2, :, n // 2].astype(np.float32), hfov
