"""genjax/train/depth.py: the gradient-matching term of the depth loss."""

import numpy as np

from genjax.train import depth


def test_gradient_matching_ignores_scale_and_matches_a_float64_reference():
  rng = np.random.default_rng(0)
  r = rng.normal(size=(2, 16, 12)).astype(np.float32)
  # A constant log-depth error (a wrong scale, per image) costs nothing.
  assert float(depth.gradient_matching(np.full((2, 16, 12), 0.7, np.float32))) == 0.0
  shift = np.array([0.3, -1.2], np.float32)[:, None, None]
  np.testing.assert_allclose(depth.gradient_matching(r + shift), depth.gradient_matching(r),
                             rtol=1e-5)
  want = []
  for s in depth.GRADIENT_SCALES:
    q = r.astype(np.float64)[:, ::s, ::s]
    want.append(np.abs(np.diff(q, axis=2)).mean() + np.abs(np.diff(q, axis=1)).mean())
  np.testing.assert_allclose(depth.gradient_matching(r), np.mean(want), rtol=1e-5)
