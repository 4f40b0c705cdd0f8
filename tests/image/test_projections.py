"""Projections against a float64 NumPy camera model, round trips, cube-map face layout."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.image import projections as proj

# Relative-error tolerances (float32 arithmetic, bilinear interpolation of smooth images).
TOL = {
    "direction": 5e-4,    # sampling the unit-direction panorama (H = 128) at exact rays (~1e-4)
    "ramp": 1e-4,         # bilinear interpolation of linear ramps is exact up to float32
    "round_trip": 3e-3,   # perspective -> equirect -> perspective, smooth image (~7e-4)
    "cube_trip": 3e-3,    # equirect -> cubemap -> equirect, smooth image (~6e-4)
}

POSES = [  # (yaw, pitch, roll) in degrees
    (0.0, 0.0, 0.0),
    (179.0, 10.0, 0.0),      # the view straddles the lon = +-180 seam
    (-172.0, -25.0, 15.0),
    (30.0, 80.0, 0.0),       # looks over the north pole
    (-60.0, -80.0, 30.0),
]


def rel_err(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.linalg.norm(a - b) / np.linalg.norm(b)


def reference_basis(yaw, pitch, roll):
  """(forward, right, up) unit vectors of the camera in the world frame, float64.

  Built from the documented conventions without rotation matrices: forward is the
  direction (lon = yaw, lat = pitch); right is horizontal; up = back x right; positive
  roll turns the camera clockwise (its right side goes down).
  """
  y, p, r = np.deg2rad([yaw, pitch, roll])
  fwd = np.array([np.cos(p) * np.sin(y), np.sin(p), -np.cos(p) * np.cos(y)])
  right = np.array([np.cos(y), 0.0, np.sin(y)])
  up = np.cross(-fwd, right)
  return fwd, np.cos(r) * right - np.sin(r) * up, np.sin(r) * right + np.cos(r) * up


def reference_rays(yaw, pitch, roll, hfov_deg, hw):
  h, w = hw
  fwd, right, up = reference_basis(yaw, pitch, roll)
  f = (w / 2) / np.tan(np.deg2rad(hfov_deg) / 2)
  x = (np.arange(w) + 0.5 - w / 2) / f
  y = -(np.arange(h) + 0.5 - h / 2) / f
  d = fwd + x[None, :, None] * right + y[:, None, None] * up
  return d / np.linalg.norm(d, axis=-1, keepdims=True)


def direction_pano(height):
  """[H, 2H, 3] panorama whose pixels hold their unit direction, float64 NumPy."""
  w = 2 * height
  lon = (np.arange(w) + 0.5) / w * 2 * np.pi - np.pi
  lat = np.pi / 2 - (np.arange(height) + 0.5) / height * np.pi
  lat, lon = np.meshgrid(lat, lon, indexing="ij")
  return np.stack([np.cos(lat) * np.sin(lon), np.sin(lat), -np.cos(lat) * np.cos(lon)], -1)


def smooth_sphere_image(d):
  """A smooth function of the direction [..., 3] -> [..., 3] in [0, 1]."""
  x, y, z = d[..., 0], d[..., 1], d[..., 2]
  return np.stack([0.5 + 0.3 * np.sin(2 * x + 1) * np.cos(1.5 * y),
                   0.5 + 0.25 * x * z + 0.2 * y,
                   0.5 + 0.3 * np.cos(2.5 * z - 0.5 * x)], -1)


def smooth_photo(h, w):
  i, j = np.meshgrid(np.arange(h) / h, np.arange(w) / w, indexing="ij")
  return np.stack([0.5 + 0.4 * np.sin(2 * np.pi * (1.2 * j + 0.3 * i)),
                   0.5 + 0.4 * np.cos(2 * np.pi * (0.7 * i - 0.4 * j)),
                   0.3 + 0.5 * i * j], -1).astype(np.float32)


@functools.cache
def jitted():
  """Compiled once per module: the angles are traced, the sizes static."""
  return dict(
      to_view=jax.jit(proj.equirect_to_perspective, static_argnames="out_hw"),
      to_pano=jax.jit(proj.perspective_to_equirect, static_argnames="out_height"),
      to_cube=jax.jit(proj.equirect_to_cubemap, static_argnums=1),
      from_cube=jax.jit(proj.cubemap_to_equirect, static_argnums=1),
  )


@pytest.mark.parametrize("pose", POSES)
def test_view_rays_match_reference_camera(pose):
  """Sampling the direction panorama gives back each pixel's ray: yaw, pitch, roll signs."""
  pano = jnp.asarray(direction_pano(128), jnp.float32)
  out = jitted()["to_view"](pano, yaw=pose[0], pitch=pose[1], roll=pose[2], hfov_deg=70.0,
                            out_hw=(24, 32))
  assert rel_err(out, reference_rays(*pose, 70.0, (24, 32))) < TOL["direction"]


def test_named_directions():
  """yaw 90 looks right (+X), pitch 30 looks 30 degrees up, roll 20 lowers the right side."""
  pano = jnp.asarray(direction_pano(128), jnp.float32)
  view = jitted()["to_view"]
  centre = lambda v: np.asarray(v)[2:4, 2:4].mean((0, 1))  # noqa: E731
  right = view(pano, yaw=90.0, pitch=0.0, roll=0.0, hfov_deg=10.0, out_hw=(6, 6))
  np.testing.assert_allclose(centre(right), [1, 0, 0], atol=2e-3)
  up = view(pano, yaw=0.0, pitch=30.0, roll=0.0, hfov_deg=10.0, out_hw=(6, 6))
  np.testing.assert_allclose(centre(up), [0, 0.5, -np.sqrt(0.75)], atol=2e-3)
  rolled = np.asarray(view(pano, yaw=0.0, pitch=0.0, roll=20.0, hfov_deg=60.0, out_hw=(6, 6)))
  assert rolled[3, -1, 1] < 0 < rolled[3, 0, 1]  # y (up) of the right edge below the left's


@pytest.mark.parametrize("pose", POSES)
def test_photo_lands_where_the_reference_camera_projects(pose):
  """perspective_to_equirect of ramps (x, y) equals the reference projection of each direction."""
  h, w, hfov = 24, 32, 70.0
  i, j = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
  ramps = jnp.asarray(np.stack([j, i], -1), jnp.float32)
  pano, mask = jitted()["to_pano"](ramps, yaw=pose[0], pitch=pose[1], roll=pose[2],
                                   hfov_deg=hfov, out_height=96)
  fwd, right, up = reference_basis(*pose)
  d = direction_pano(96)
  f = (w / 2) / np.tan(np.deg2rad(hfov) / 2)
  depth = d @ fwd
  with np.errstate(divide="ignore", invalid="ignore"):
    x = w / 2 + f * (d @ right) / depth
    y = h / 2 - f * (d @ up) / depth
  footprint = (depth > 0) & (x >= 0) & (x <= w) & (y >= 0) & (y <= h)
  inner = (depth > 0) & (x > 0.5) & (x < w - 0.5) & (y > 0.5) & (y < h - 0.5)
  assert inner.sum() > 100
  # Pixels within a float32 rounding of the footprint's edge may go either way.
  edge = (depth > 0) & (np.abs(np.minimum(np.minimum(x, w - x), np.minimum(y, h - y))) < 1e-3)
  np.testing.assert_array_equal(np.asarray(mask[..., 0], bool)[~edge], footprint[~edge])
  assert rel_err(np.asarray(pano)[inner], np.stack([x, y], -1)[inner]) < TOL["ramp"]
  np.testing.assert_array_equal(np.asarray(pano)[~footprint & ~edge], 0)


def test_mask_covers_the_solid_angle_of_the_photo():
  """Sum of masked pixel solid angles = 4 arcsin(sin(a) sin(b)) for half-angles a, b."""
  h, w, hfov, hp = 48, 64, 80.0, 256
  _, mask = jitted()["to_pano"](jnp.ones((h, w, 1)), yaw=33.0, pitch=20.0, roll=10.0,
                                hfov_deg=hfov, out_height=hp)
  lat = np.pi / 2 - (np.arange(hp) + 0.5) / hp * np.pi
  pixel_sr = np.cos(lat)[:, None] * (np.pi / hp) ** 2
  a = np.deg2rad(hfov) / 2
  b = np.arctan(np.tan(a) * h / w)
  expected = 4 * np.arcsin(np.sin(a) * np.sin(b))
  assert abs((np.asarray(mask[..., 0]) * pixel_sr).sum() / expected - 1) < 1e-2


@pytest.mark.parametrize("pose", POSES)
def test_perspective_equirect_round_trip(pose):
  h, w, hfov = 48, 64, 60.0
  photo = jnp.asarray(smooth_photo(h, w))
  angles = dict(yaw=pose[0], pitch=pose[1], roll=pose[2], hfov_deg=hfov)
  pano, mask = jitted()["to_pano"](photo, out_height=256, **angles)
  back = jitted()["to_view"](pano, out_hw=(h, w), **angles)
  # Inside the field of view; the outermost pixels blend with the zeros outside the mask.
  assert rel_err(back[2:-2, 2:-2], photo[2:-2, 2:-2]) < TOL["round_trip"]
  assert float(mask.max()) == 1.0


def test_cubemap_round_trip():
  pano = jnp.asarray(smooth_sphere_image(direction_pano(64)), jnp.float32)
  faces = jitted()["to_cube"](pano, 32)
  assert faces.shape == (6, 32, 32, 3)
  back = jitted()["from_cube"](faces, 64)
  assert rel_err(back, pano) < TOL["cube_trip"]
  # Exact function values at the face pixel centres, then back to the sphere.
  exact = smooth_sphere_image(np.asarray(proj.cube_face_directions(32), np.float64)
                              / np.linalg.norm(proj.cube_face_directions(32), axis=-1,
                                               keepdims=True))
  back_exact = jitted()["from_cube"](jnp.asarray(exact, jnp.float32), 64)
  assert rel_err(back_exact, pano) < TOL["cube_trip"] / 5


def test_cubemap_faces_are_90_degree_views():
  pano = jnp.asarray(smooth_sphere_image(direction_pano(64)), jnp.float32)
  faces = jitted()["to_cube"](pano, 16)
  for k, (yaw, pitch) in enumerate(proj.CUBE_FACE_ANGLES):
    view = jitted()["to_view"](pano, yaw=yaw, pitch=pitch, roll=0.0, hfov_deg=90.0,
                               out_hw=(16, 16))
    np.testing.assert_allclose(faces[k], view, atol=2e-5, err_msg=proj.CUBE_FACE_NAMES[k])


# Documented layout: (centre direction, column grows towards, row grows towards), world frame.
FACE_LAYOUT = {
    "right": ((1, 0, 0), (0, 0, 1), (0, -1, 0)),
    "left": ((-1, 0, 0), (0, 0, -1), (0, -1, 0)),
    "up": ((0, 1, 0), (1, 0, 0), (0, 0, -1)),      # back at the top, front at the bottom
    "down": ((0, -1, 0), (1, 0, 0), (0, 0, 1)),    # front at the top
    "front": ((0, 0, -1), (1, 0, 0), (0, -1, 0)),
    "back": ((0, 0, 1), (-1, 0, 0), (0, -1, 0)),
}


def test_face_order_and_orientation():
  d = direction_pano(64)
  # Colour by dominant axis and sign: face k of the OpenGL order +X -X +Y -Y +Z -Z, where
  # the cube-map frame's +Z is the world's front (-Z).
  cube_frame = d * np.array([1, 1, -1])
  axis = np.abs(cube_frame).argmax(-1)
  label = 2 * axis + (np.take_along_axis(cube_frame, axis[..., None], -1)[..., 0] < 0)
  faces = np.asarray(jitted()["to_cube"](jnp.asarray(np.eye(6)[label], jnp.float32), 16))
  for k in range(6):
    assert faces[k, 4:12, 4:12, k].min() > 0.99, proj.CUBE_FACE_NAMES[k]
  dir_faces = np.asarray(jitted()["to_cube"](jnp.asarray(d, jnp.float32), 16))
  for k, name in enumerate(proj.CUBE_FACE_NAMES):
    centre, col, row = (np.array(v, float) for v in FACE_LAYOUT[name])
    f = dir_faces[k]
    np.testing.assert_allclose(f[7:9, 7:9].mean((0, 1)), centre, atol=1e-2, err_msg=name)
    dcol = f[8, -1] - f[8, 0]
    drow = f[-1, 8] - f[0, 8]
    assert dcol @ col > 0.9 * np.linalg.norm(dcol), name
    assert drow @ row > 0.9 * np.linalg.norm(drow), name


def test_batch_matches_single_images():
  pano = jnp.asarray(smooth_sphere_image(direction_pano(32)), jnp.float32)
  batch = jnp.stack([pano, pano[:, ::-1]])
  yaws = jnp.asarray([10.0, -150.0])
  out = jitted()["to_view"](batch, yaw=yaws, pitch=5.0, roll=0.0, hfov_deg=60.0, out_hw=(8, 12))
  for b in range(2):
    one = jitted()["to_view"](batch[b], yaw=yaws[b], pitch=5.0, roll=0.0, hfov_deg=60.0,
                              out_hw=(8, 12))
    np.testing.assert_allclose(out[b], one, atol=1e-6)
  faces = jitted()["to_cube"](batch, 8)
  assert faces.shape == (2, 6, 8, 8, 3)
  np.testing.assert_allclose(jitted()["from_cube"](faces, 32)[1],
                             jitted()["from_cube"](faces[1], 32), atol=1e-6)
  photos, masks = jitted()["to_pano"](batch[:, :8, :12], yaw=yaws, pitch=0.0, roll=0.0,
                                      hfov_deg=60.0, out_height=16)
  assert photos.shape == (2, 16, 32, 3) and masks.shape == (2, 16, 32, 1)


def test_differentiable_in_angles_and_pixels():
  pano = jnp.asarray(smooth_sphere_image(direction_pano(64)), jnp.float32)

  @jax.jit
  def loss(yaw):
    return proj.equirect_to_perspective(pano, yaw=yaw, pitch=10.0, roll=5.0, hfov_deg=60.0,
                                        out_hw=(12, 16)).mean()
  g = jax.jit(jax.grad(loss))(30.0)
  fd = (loss(30.5) - loss(29.5)) / 1.0
  assert abs(g / fd - 1) < 5e-2, (g, fd)
  # Every masked panorama pixel is a convex combination of photo pixels, so the gradient
  # of the panorama's sum with respect to the photo sums to the mask's area.
  photo = jnp.asarray(smooth_photo(12, 16))
  to_pano = functools.partial(proj.perspective_to_equirect, yaw=20.0, pitch=-10.0, roll=0.0,
                              hfov_deg=60.0, out_height=32)
  grad = jax.jit(jax.grad(lambda im: to_pano(im)[0].sum()))(photo)
  _, mask = jax.jit(to_pano)(photo)
  np.testing.assert_allclose(grad.sum(), 3 * mask.sum(), rtol=1e-5)


def test_new_angles_do_not_recompile():
  traces = []

  @functools.partial(jax.jit, static_argnames="out_hw")
  def view(pano, yaw, pitch, out_hw):
    traces.append(1)
    return proj.equirect_to_perspective(pano, yaw=yaw, pitch=pitch, roll=0.0, hfov_deg=60.0,
                                        out_hw=out_hw)
  pano = jnp.zeros((8, 16, 3))
  view(pano, 0.0, 0.0, out_hw=(4, 4))
  view(pano, 45.0, -30.0, out_hw=(4, 4))
  assert len(traces) == 1


def test_bad_shapes_raise():
  with pytest.raises(proj.ProjectionError, match=r"\[H, W, C\]"):
    proj.equirect_to_perspective(jnp.zeros((8, 16)), yaw=0, pitch=0, roll=0, hfov_deg=60,
                                 out_hw=(4, 4))
  with pytest.raises(proj.ProjectionError, match="faces"):
    proj.cubemap_to_equirect(jnp.zeros((5, 4, 4, 3)), 8)


def test_window_is_a_slice_of_the_full_panorama():
  photo = jnp.asarray(smooth_photo(12, 16))
  angles = dict(yaw=170.0, pitch=10.0, roll=5.0, hfov_deg=60.0)
  full, full_mask = jitted()["to_pano"](photo, out_height=32, **angles)
  part, part_mask = jax.jit(proj.perspective_to_equirect, static_argnames=("out_height", "window"))(
      photo, out_height=32, window=(5, 50, 20, 24), **angles)    # columns 50..73 wrap at 64
  cols = np.arange(50, 74) % 64
  np.testing.assert_allclose(part, np.asarray(full)[5:25][:, cols], atol=1e-6)
  np.testing.assert_array_equal(part_mask, np.asarray(full_mask)[5:25][:, cols])
  assert float(part_mask.sum()) > 20


@pytest.mark.parametrize("hfov", [0.0, -10.0, 180.0, 250.0, [60.0, 180.0]])
def test_extreme_fov_raises(hfov):
  with pytest.raises(proj.ProjectionError, match="hfov_deg must be in"):
    proj.equirect_to_perspective(jnp.zeros((8, 16, 3)), yaw=0, pitch=0, roll=0, hfov_deg=hfov,
                                 out_hw=(4, 4))
  with pytest.raises(proj.ProjectionError, match="hfov_deg must be in"):
    proj.perspective_to_equirect(jnp.zeros((4, 4, 3)), yaw=0, pitch=0, roll=0, hfov_deg=hfov,
                                 out_height=8)
