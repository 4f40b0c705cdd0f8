"""genjax/data/rooms.py: deterministic scenes whose depth is the exact geometry."""

import math

import numpy as np

from genjax.data import rooms


def test_rooms_are_deterministic_and_varied():
  a, da, fa = rooms.room(3, height=24, width=32)
  b, db, fb = rooms.room(3, height=24, width=32)
  np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(da, db)
  c, dc, _ = rooms.room(4, height=24, width=32)
  assert a.shape == (24, 32, 3) and a.dtype == np.uint8 and da.shape == (24, 32)
  assert np.all(np.isfinite(da)) and np.all(da > 0) and da.dtype == np.float32
  assert not np.array_equal(da, dc) and 35 <= fa <= 90


def test_depth_is_the_z_of_the_first_hit(monkeypatch):
  """With no objects and no rotation, the back wall at z = -size_z / 2 is hit by the centre
  rays, and the z-depth there is the eye's distance to that wall, the same for every pixel
  that sees it (a plane perpendicular to the optical axis has constant z-depth)."""
  monkeypatch.setattr(rooms, "_rotation", lambda *a: np.eye(3))
  _, depth, _ = rooms.room(11, height=33, width=33)
  rng = np.random.default_rng([0, 7, 11])
  size = np.array([rng.uniform(3, 14), rng.uniform(2.4, 5), rng.uniform(4, 16)])
  lo = -size / 2 * np.array([1, 0, 1])
  hi = size / 2 * np.array([1, 2, 1])
  eye_z = (rng.uniform(lo[0] + 0.3, hi[0] - 0.3), rng.uniform(0.8, min(2.0, hi[1] - 0.3)),
           rng.uniform(lo[2] + 0.3, hi[2] - 0.3))[2]
  centre = depth[16, 16]
  # The centre ray hits the back wall unless an object stands in the way: then it is nearer.
  assert centre <= eye_z - lo[2] + 1e-4
  flat = np.isclose(depth, eye_z - lo[2], rtol=1e-5)
  assert flat.sum() > 0 and math.isclose(float(depth[flat].std()), 0.0, abs_tol=1e-4)


def test_supersampling_keeps_the_depth():
  """supersample=3: the same depth (its middle ray is the pixel centre's) and the same picture
  up to antialiasing. (eye_shift, the right eye of a stereo pair, is checked against the warp
  of the left eye in tests/apps/vr/test_depth_estimation.py.)"""
  a, da, fa = rooms.room(5, height=24, width=32)
  b, db, fb = rooms.room(5, height=24, width=32, supersample=3)
  np.testing.assert_array_equal(da, db)
  diff = np.abs(a.astype(float) - b)
  assert fa == fb and np.mean(diff) < 3 and diff.max() > 0        # measured: 0.28
