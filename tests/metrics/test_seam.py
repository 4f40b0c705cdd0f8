"""Seam ratios: 1 on width-periodic images, exact values on ramps and parabolas."""

import numpy as np
import pytest

from genjax.metrics import seam_scores

H, W = 32, 48


def _rows_cols():
  return np.mgrid[0:H, 0:W].astype(np.float64)


def test_periodic_wave_scores_one():
  # A wave with integer frequency 3 along the width whose phase runs through a full period
  # down the rows: moving one column (2 pi 3 / 48 = 2 pi 2 / 32) permutes the rows, so every
  # column pair, the wrap included, has the same mean |difference|: exactly 1.
  h, w = _rows_cols()
  img = np.stack([np.sin(2 * np.pi * (3 * w / W + h / H) + c) for c in range(3)], -1)
  s = seam_scores(img.astype(np.float32))
  np.testing.assert_allclose(np.asarray(s.column_ratio), 1.0, atol=1e-5)
  np.testing.assert_allclose(np.asarray(s.gradient_ratio), 1.0, atol=1e-5)
  # The same image cut at another longitude (rolled) is still seamless.
  s2 = seam_scores(np.roll(img, 17, axis=1).astype(np.float32))
  np.testing.assert_allclose(np.asarray(s2.column_ratio), 1.0, atol=1e-5)


def test_ramp_and_parabola_closed_forms():
  _, w = _rows_cols()
  # Ramp x = w: the wrap jumps by W - 1, interior steps are 1.
  ramp = np.repeat(w[..., None], 3, -1)
  # x = w^2: the wrap jumps by (W-1)^2, interior steps average W - 1; second differences
  # are 2 inside and ((W-1)^2 + 1 + W^2 - 2) / 2 = W (W - 1) on average at the wrap.
  square = ramp ** 2
  s = seam_scores(np.stack([ramp, square]).astype(np.float32))
  np.testing.assert_allclose(np.asarray(s.column_ratio), [W - 1, W - 1], rtol=1e-5)
  np.testing.assert_allclose(np.asarray(s.gradient_ratio)[1], W * (W - 1) / 2, rtol=1e-5)
  assert float(s.gradient_ratio[0]) > 1e6   # the ramp's interior second differences are 0


def test_kink_shows_in_gradient_ratio_only():
  # (w - c)^2 with c = (W - 1) / 2: equal values at both ends (no jump: column ratio 0),
  # slopes -(W-1) and +(W-1) meet at the wrap: second difference W - 2 there, 2 inside.
  _, w = _rows_cols()
  img = np.repeat(((w - (W - 1) / 2) ** 2)[..., None], 1, -1)
  s = seam_scores(img.astype(np.float32))
  assert float(s.column_ratio[0]) < 1e-6
  np.testing.assert_allclose(float(s.gradient_ratio[0]), (W - 2) / 2, rtol=1e-5)


def test_constant_image_and_shape_errors():
  s = seam_scores(np.zeros((2, 4, 8, 3), np.float32))
  np.testing.assert_allclose(np.asarray(s.column_ratio), 1.0)
  with pytest.raises(ValueError, match="W >= 4"):
    seam_scores(np.zeros((4, 3, 3), np.float32))
