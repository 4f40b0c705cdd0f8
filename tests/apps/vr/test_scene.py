"""The ray-cast test scene: exact depths and distances against closed forms."""

import functools

import jax
import numpy as np

from genjax.apps.vr import scene

H, W, FOCAL = 48, 64, 55.0
PANO_H = 32


@functools.cache
def views():
  render = jax.jit(scene.render, static_argnames=("height", "width", "supersample"))
  pano = jax.jit(scene.render_panorama, static_argnames=("height", "supersample"))
  rgb, depth = render(0.0, height=H, width=W, focal_px=FOCAL)
  mono, distance = pano(height=PANO_H)
  return tuple(np.asarray(a) for a in (rgb, depth, mono, distance))


def test_perspective_depth_is_exact():
  """z-depth of the front wall is 9 m, of the floor 1.2 f / (y - H/2) at row centre y, and
  the nearest point is the sphere's front."""
  rgb, depth, _, _ = views()
  assert rgb.shape == (H, W, 3) and 0 <= rgb.min() and rgb.max() <= 1 and rgb.std() > 0.05
  np.testing.assert_allclose(depth[10, 45], -scene.WALL_Z, rtol=1e-6)   # above the sphere
  y = H - 1 + 0.5
  np.testing.assert_allclose(depth[H - 1, W // 2], -scene.FLOOR_Y * FOCAL / (y - H / 2),
                             rtol=1e-5)
  np.testing.assert_allclose(depth.min(), -scene.SPHERE_CENTRE[2] - scene.SPHERE_RADIUS,
                             atol=5e-3)


def test_panorama_distances_are_exact():
  """Straight down the floor is 1.2 / sin(-lat) away; the side walls at lon +-90 are 4 m
  away at the horizon (x = +-4); everything is inside the closed room."""
  _, _, mono, distance = views()
  assert mono.shape == (PANO_H, 2 * PANO_H, 3) and np.isfinite(distance).all()
  lat = 90 - (np.arange(PANO_H) + 0.5) / PANO_H * 180
  bottom = PANO_H - 1
  np.testing.assert_allclose(distance[bottom, :], -scene.FLOOR_Y / np.sin(np.deg2rad(-lat[bottom])),
                             rtol=1e-5)
  # Columns 48 and 15 of 64 are centred on lon 90 +- 2.8 and -90 -+ 2.8; rows 15, 16 on
  # lat -+2.8 degrees: the distance to the plane x = 4 is 4 / (cos lat sin lon).
  for col, row in ((48, 15), (15, 16)):
    lon = np.deg2rad((col + 0.5) / (2 * PANO_H) * 360 - 180)
    la = np.deg2rad(lat[row])
    np.testing.assert_allclose(distance[row, col], 4.0 / abs(np.cos(la) * np.sin(lon)),
                               rtol=1e-5)
  corners = np.stack(np.meshgrid(*zip(scene.ROOM_MIN, scene.ROOM_MAX)), -1).reshape(-1, 3)
  assert distance.max() <= np.linalg.norm(corners, axis=-1).max()


def test_ods_eyes_differ_and_centre_is_mono():
  _, _, mono, distance = views()
  pano = jax.jit(scene.render_panorama, static_argnames=("height", "supersample"))
  centre, centre_distance = pano(height=PANO_H, eye_offset=0.0)
  np.testing.assert_array_equal(centre, mono)
  right, right_distance = pano(height=PANO_H, eye_offset=0.1)
  assert np.abs(np.asarray(right) - mono).mean() > 1e-3
  # The ODS ray of longitude lon starts at r (cos lon, 0, sin lon): at the right wall
  # (x = 4) it travels (4 - r cos lon) / d_x.
  row, col = 15, 48
  lon = np.deg2rad((col + 0.5) / (2 * PANO_H) * 360 - 180)
  lat = np.deg2rad(90 - (row + 0.5) / PANO_H * 180)
  np.testing.assert_allclose(right_distance[row, col],
                             (4.0 - 0.1 * np.cos(lon)) / (np.cos(lat) * np.sin(lon)), rtol=1e-5)
  np.testing.assert_allclose(centre_distance, distance)
