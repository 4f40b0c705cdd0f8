"""Perspective, equirectangular and cube-map projections: pure JAX, batched, differentiable.

Conventions
-----------
World frame: right-handed, +X right (east), +Y up, +Z back; the viewer looks along -Z
(as an OpenGL camera). A direction at longitude lon and latitude lat is

  d(lon, lat) = (cos(lat) sin(lon), sin(lat), -cos(lat) cos(lon)),

so lon = 0 is the front (-Z), lon = +90 the right (+X), lon = +-180 the back (+Z),
lat = +90 straight up.

Equirectangular image [H, W = 2H, C]: column 0 starts at lon -180 and x grows with lon;
row 0 starts at lat +90 (top); pixel (i, j) has its centre at (x, y) = (j + 0.5, i + 0.5),
lon = x / W * 360 - 180, lat = 90 - y / H * 180 (see genjax.image.sampling).

Camera (pinhole, angles in degrees): yaw turns about the up axis, positive = turn right
(yaw 90 looks at lon 90); pitch positive = look up; roll turns about the viewing axis,
positive = clockwise as seen by the viewer (right side down, like an aircraft's positive
roll), so the scene appears rotated counter-clockwise in the image. Camera-to-world
rotation: R = R_Y(-yaw) @ R_X(pitch) @ R_Z(-roll), i.e. roll first, then pitch, then yaw.
In camera space the image x axis is +X, the image y axis is -Y (rows grow downwards), and
the optical axis is -Z. hfov_deg is the horizontal field of view: the focal length in
pixels is f = (W / 2) / tan(hfov / 2); square pixels, principal point at the image centre.

Cube map [6, S, S, C]: faces in OpenGL order +X, -X, +Y, -Y, +Z, -Z of the OpenGL cube-map
frame, which is (RenderMan-style, left-handed) our world frame with Z flipped, so that
+Z is the front. In words: right (lon 90), left (lon -90), up, down, front (lon 0),
back (lon 180). Each face is the image of a 90-degree camera looking along the face axis
with the OpenGL orientation (s = column, t = row, row 0 at the top): the four side faces
are upright; the up face has the back at its top and the front at its bottom edge; the
down face has the front at its top. Equivalently face k = equirect_to_perspective with
(yaw, pitch) = (90, 0), (-90, 0), (0, 90), (0, -90), (0, 0), (180, 0), roll 0, hfov 90.

Shapes: single images [H, W, C] or batches [B, H, W, C]; with a batch, the angles may be
scalars or [B] arrays. Output sizes (out_height, out_hw, face_size) are static Python ints;
the angles may be traced, so one compiled function serves every camera pose.
"""


import jax
import jax.numpy as jnp
import numpy as np

from genjax.image import sampling

# (forward, right, up) of each cube face in the world frame, OpenGL face order.
_CUBE_FACES = (
    ((1, 0, 0), (0, 0, 1), (0, 1, 0)),     # +X: right
    ((-1, 0, 0), (0, 0, -1), (0, 1, 0)),   # -X: left
    ((0, 1, 0), (1, 0, 0), (0, 0, 1)),     # +Y: up (back at the top edge)
    ((0, -1, 0), (1, 0, 0), (0, 0, -1)),   # -Y: down (front at the top edge)
    ((0, 0, -1), (1, 0, 0), (0, 1, 0)),    # +Z (cube frame): front
    ((0, 0, 1), (-1, 0, 0), (0, 1, 0)),    # -Z (cube frame): back
)
CUBE_FACE_NAMES = ("right", "left", "up", "down", "front", "back")
# (yaw, pitch) of the 90-degree camera that sees each face.
CUBE_FACE_ANGLES = ((90.0, 0.0), (-90.0, 0.0), (0.0, 90.0), (0.0, -90.0), (0.0, 0.0), (180.0, 0.0))


class ProjectionError(ValueError):
  """Bad shapes or sizes given to a projection."""


def lonlat_to_direction(lon: jax.Array, lat: jax.Array) -> jax.Array:
  """Radians [...] -> unit world directions [..., 3]."""
  c = jnp.cos(lat)
  return jnp.stack([c * jnp.sin(lon), jnp.sin(lat), -c * jnp.cos(lon)], axis=-1)


def direction_to_lonlat(d: jax.Array):
  """World directions [..., 3] (any length > 0) -> (lon, lat) in radians, lon in [-pi, pi]."""
  x, y, z = d[..., 0], d[..., 1], d[..., 2]
  # atan2 with the horizontal length keeps the latitude accurate near the poles.
  return jnp.arctan2(x, -z), jnp.arctan2(y, jnp.hypot(x, z))


def rotation_matrix(yaw, pitch, roll) -> jax.Array:
  """Camera-to-world rotation [3, 3] from angles in degrees (see the module docstring)."""
  y, p, r = (jnp.deg2rad(jnp.asarray(a, jnp.float32)) for a in (yaw, pitch, roll))
  one, zero = jnp.ones_like(y), jnp.zeros_like(y)
  cy, sy = jnp.cos(y), jnp.sin(y)
  cp, sp = jnp.cos(p), jnp.sin(p)
  cr, sr = jnp.cos(r), jnp.sin(r)
  # R_Y(-yaw), R_X(pitch), R_Z(-roll).
  ry = jnp.stack([jnp.stack([cy, zero, -sy]), jnp.stack([zero, one, zero]),
                  jnp.stack([sy, zero, cy])])
  rx = jnp.stack([jnp.stack([one, zero, zero]), jnp.stack([zero, cp, -sp]),
                  jnp.stack([zero, sp, cp])])
  rz = jnp.stack([jnp.stack([cr, sr, zero]), jnp.stack([-sr, cr, zero]),
                  jnp.stack([zero, zero, one])])
  return ry @ rx @ rz


def focal_length_px(width: int, hfov_deg) -> jax.Array:
  """Pinhole focal length in pixels for an image `width` pixels wide."""
  return (width / 2) / jnp.tan(jnp.deg2rad(jnp.asarray(hfov_deg, jnp.float32)) / 2)


def camera_rays(out_hw: tuple[int, int], hfov_deg) -> jax.Array:
  """Camera-space rays [H, W, 3] through the pixel centres, with z = -1 (not normalized)."""
  h, w = out_hw
  f = focal_length_px(w, hfov_deg)
  x = (jnp.arange(w, dtype=jnp.float32) + 0.5 - w / 2) / f
  y = -(jnp.arange(h, dtype=jnp.float32) + 0.5 - h / 2) / f
  xx, yy = jnp.meshgrid(x, y)
  return jnp.stack([xx, yy, -jnp.ones_like(xx)], axis=-1)


def equirect_directions(height: int, window: tuple[int, int, int, int] | None = None
                        ) -> jax.Array:
  """Unit world directions [H, 2H, 3] of the pixel centres of an equirectangular image, or
  [h, w, 3] of the window (top, left, h, w) of it (columns past the right edge wrap)."""
  w = 2 * height
  top, left, rows, cols = (0, 0, height, w) if window is None else (int(n) for n in window)
  x = jnp.arange(left, left + cols, dtype=jnp.float32) + 0.5
  y = jnp.arange(top, top + rows, dtype=jnp.float32) + 0.5
  lon, lat = sampling.equirect_angles(x[None, :], y[:, None], height, w)
  return lonlat_to_direction(*jnp.broadcast_arrays(lon, lat))


def _face_grid(t: jax.Array) -> jax.Array:
  """Directions [6, N, N, 3] at face coordinates t [N] in [-1, 1] units (u right, v down)."""
  u, v = jnp.meshgrid(t, t)                                   # [N, N]
  fwd, right, up = (jnp.asarray(a, jnp.float32) for a in zip(*_CUBE_FACES))  # [6, 3]
  return (fwd[:, None, None, :] + u[None, :, :, None] * right[:, None, None, :]
          - v[None, :, :, None] * up[:, None, None, :])


def cube_face_directions(face_size: int) -> jax.Array:
  """World directions [6, S, S, 3] of the pixel centres of each cube face (not normalized)."""
  return _face_grid((jnp.arange(face_size, dtype=jnp.float32) + 0.5) / face_size * 2 - 1)


def _check_image(x: jax.Array, name: str):
  if x.ndim not in (3, 4):
    raise ProjectionError(f"{name} must be [H, W, C] or [B, H, W, C], got shape {x.shape}")


def _check_fov(hfov_deg):
  """Raises for a concrete field of view outside (0, 180) degrees; traced values (inside
  jit) cannot be checked and pass through."""
  if isinstance(hfov_deg, jax.core.Tracer):
    return
  v = np.asarray(hfov_deg, np.float64)
  if not np.all((v > 0) & (v < 180)):
    raise ProjectionError(f"hfov_deg must be in (0, 180) degrees, got {hfov_deg}")


def _batched(fn, x: jax.Array, angles: dict):
  """Applies fn(x, **angles) to one image, or vmaps it over a leading batch axis."""
  if x.ndim == 3:
    return fn(x, **angles)
  b = x.shape[0]
  batched = {k: jnp.broadcast_to(jnp.asarray(v, jnp.float32), (b,)) for k, v in angles.items()}
  return jax.vmap(lambda xi, a: fn(xi, **a))(x, batched)


def perspective_to_equirect(img: jax.Array, *, yaw, pitch, roll, hfov_deg, out_height: int,
                            window: tuple[int, int, int, int] | None = None):
  """Places a pinhole photo on the sphere.

  Args:
    img: [H, W, C] or [B, H, W, C] float.
    yaw, pitch, roll, hfov_deg: degrees (scalars, or [B] with a batch).
    out_height: panorama height Hp; its width is 2 Hp.
    window: (top, left, h, w) static ints: compute only these panorama pixels (a partial
      panorama; columns past 2 Hp wrap), which saves memory for large panoramas.

  Returns:
    (pano [.., Hp, 2Hp, C], mask [.., Hp, 2Hp, 1] in {0, 1}), or [.., h, w, ...] with a
    window: mask is 1 where the direction falls on the photo (in front of the camera,
    inside its footprint); the panorama is 0 elsewhere.
  """
  _check_image(img, "img")
  _check_fov(hfov_deg)

  def one(im, yaw, pitch, roll, hfov_deg):
    h, w, _ = im.shape
    rot = rotation_matrix(yaw, pitch, roll)
    cam = equirect_directions(out_height, window) @ rot       # R^T d for each pixel
    front = cam[..., 2] < 0
    depth = jnp.where(front, -cam[..., 2], 1.0)
    f = focal_length_px(w, hfov_deg)
    x = w / 2 + f * cam[..., 0] / depth
    y = h / 2 - f * cam[..., 1] / depth
    values, valid = sampling.sample_bilinear(im, x, y)
    mask = (valid & front)[..., None]
    return jnp.where(mask, values, 0), mask.astype(im.dtype)

  return _batched(one, img, dict(yaw=yaw, pitch=pitch, roll=roll, hfov_deg=hfov_deg))


def equirect_to_perspective(pano: jax.Array, *, yaw, pitch, roll, hfov_deg,
                            out_hw: tuple[int, int]) -> jax.Array:
  """Renders a pinhole view of a panorama.

  Args:
    pano: [Hp, Wp, C] or [B, Hp, Wp, C] equirectangular (any width; 2:1 is usual).
    yaw, pitch, roll, hfov_deg: degrees (scalars, or [B] with a batch).
    out_hw: (H, W) of the view.

  Returns:
    [.., H, W, C].
  """
  _check_image(pano, "pano")
  _check_fov(hfov_deg)
  out_hw = tuple(int(n) for n in out_hw)

  def one(p, yaw, pitch, roll, hfov_deg):
    world = camera_rays(out_hw, hfov_deg) @ rotation_matrix(yaw, pitch, roll).T
    return sampling.sample_equirect(p, *direction_to_lonlat(world))

  return _batched(one, pano, dict(yaw=yaw, pitch=pitch, roll=roll, hfov_deg=hfov_deg))


def equirect_to_cubemap(pano: jax.Array, face_size: int) -> jax.Array:
  """[Hp, Wp, C] or [B, Hp, Wp, C] equirectangular -> [.., 6, S, S, C] cube map (face order
  and orientation in the module docstring)."""
  _check_image(pano, "pano")
  lonlat = direction_to_lonlat(cube_face_directions(int(face_size)))
  return _batched(lambda p: sampling.sample_equirect(p, *lonlat), pano, {})


def _cube_lookup(d: jax.Array):
  """World directions [..., 3] -> (face index, x, y) continuous pixel coordinates in [0, 1]
  face units (multiply by the face size), using the OpenGL cube-map table."""
  x, y, z = d[..., 0], d[..., 1], -d[..., 2]                 # cube-map frame: +Z = front
  ax, ay, az = jnp.abs(x), jnp.abs(y), jnp.abs(z)
  axis = jnp.where((ax >= ay) & (ax >= az), 0, jnp.where(ay >= az, 1, 2))
  face = 2 * axis + jnp.where(jnp.choose(axis, [x, y, z], mode="clip") < 0, 1, 0)
  # (sc, tc, ma) per face, OpenGL spec table "Selection of cube map images".
  sc = jnp.choose(face, [-z, z, x, x, x, -x], mode="clip")
  tc = jnp.choose(face, [-y, -y, z, -z, -y, -y], mode="clip")
  ma = jnp.choose(face, [ax, ax, ay, ay, az, az], mode="clip")
  return face, (sc / ma + 1) / 2, (tc / ma + 1) / 2


def _sample_faces(faces: jax.Array, face: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
  """Bilinear sample of faces [6, S, S, C] at pixel coordinates, clamped within each face."""
  s = faces.shape[1]
  xc = jnp.clip(x - 0.5, 0, s - 1)
  yc = jnp.clip(y - 0.5, 0, s - 1)
  x0 = jnp.floor(xc)
  y0 = jnp.floor(yc)
  fx = (xc - x0)[..., None]
  fy = (yc - y0)[..., None]
  c0, r0 = x0.astype(jnp.int32), y0.astype(jnp.int32)
  c1, r1 = jnp.minimum(c0 + 1, s - 1), jnp.minimum(r0 + 1, s - 1)
  top = faces[face, r0, c0] * (1 - fx) + faces[face, r0, c1] * fx
  bottom = faces[face, r1, c0] * (1 - fx) + faces[face, r1, c1] * fx
  return top * (1 - fy) + bottom * fy


def pad_cube_faces(faces: jax.Array) -> jax.Array:
  """[6, S, S, C] -> [6, S + 2, S + 2, C]: each face with a one-pixel border taken from its
  neighbours, so bilinear sampling is continuous across face edges."""
  s = faces.shape[1]
  d = _face_grid((jnp.arange(-1, s + 1, dtype=jnp.float32) + 0.5) / s * 2 - 1)
  face, x, y = _cube_lookup(d)
  return _sample_faces(faces, face, x * s, y * s)


def cubemap_to_equirect(faces: jax.Array, out_height: int) -> jax.Array:
  """[6, S, S, C] or [B, 6, S, S, C] cube map -> [.., Hp, 2Hp, C] equirectangular."""
  if faces.ndim not in (4, 5) or faces.shape[-4] != 6 or faces.shape[-3] != faces.shape[-2]:
    raise ProjectionError(f"faces must be [6, S, S, C] or [B, 6, S, S, C], got {faces.shape}")
  face, x, y = _cube_lookup(equirect_directions(int(out_height)))

  def one(fc):
    s = fc.shape[1]
    return _sample_faces(pad_cube_faces(fc), face, x * s + 1, y * s + 1)

  return one(faces) if faces.ndim == 4 else jax.vmap(one)(faces)
