"""genjax/image/polar.py and the pole rows of photo_placement.upsample_equirect."""

import math

import numpy as np
import pytest

from genjax.apps.vr import photo_placement
from genjax.image import polar


def _harmonics(rows):
  """|rfft| along longitude of [..., W, C] rows, float64 (per harmonic, summed over C)."""
  return np.abs(np.fft.rfft(np.asarray(rows, np.float64), axis=-2)).sum(-1)


def test_polar_filter_matches_a_float64_reference():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, 16, 32, 3)).astype(np.float32)
  got = np.asarray(polar.polar_filter(x))
  theta = (np.arange(16) + 0.5) * math.pi / 16
  weight = (np.arange(17)[None, :] <= 16 * np.sin(theta)[:, None]).astype(np.float64)
  spectrum = np.fft.rfft(x.astype(np.float64), axis=2) * weight[:, :, None]
  # The pole rows' m >= 1 are the next row's times (sin theta_0 / sin theta_1)^m.
  f = (np.sin(theta[0]) / np.sin(theta[1])) ** np.arange(17) * weight[0]
  for pole, inner in ((0, 1), (15, 14)):
    spectrum[:, pole, 1:] = spectrum[:, inner, 1:] * f[1:, None]
  want = np.fft.irfft(spectrum, n=32, axis=2)
  np.testing.assert_allclose(got, want, atol=1e-5)
  # Row 0 (colatitude 5.6 degrees, room for H sin = 1.57 harmonics) keeps m <= 1 only;
  # the rows beside the equator (16 sin = 15.9) every harmonic but the Nyquist one.
  assert _harmonics(got[:, 0])[:, 2:].max() < 1e-4
  assert _harmonics(x[:, 0])[:, 2:].max() > 1.0
  np.testing.assert_allclose(_harmonics(got[:, 8])[:, :16], _harmonics(x[:, 8])[:, :16],
                             rtol=1e-4, atol=1e-4)


def test_pole_rows_carry_the_gradient_their_neighbours_imply():
  """A smooth field's harmonic m = 1 grows like sin(colatitude) away from a pole: on the
  filtered pole rows, c_1 / sin(theta) equals the next row's (same phase too), whatever the
  input put there, so no blob sits one row away from the pole."""
  x = np.random.default_rng(3).normal(size=(16, 32, 3)).astype(np.float32)
  x[0] += 5 * np.cos(2 * np.pi * (np.arange(32) + 0.5) / 32)[:, None]   # a big dipole
  c = np.fft.rfft(np.asarray(polar.polar_filter(x), np.float64), axis=1)[:, 1]   # [16, 3]
  s = np.sin((np.arange(16) + 0.5) * math.pi / 16)[:, None]
  np.testing.assert_allclose(c[0] / s[0], c[1] / s[1], atol=1e-4)
  np.testing.assert_allclose(c[15] / s[15], c[14] / s[14], atol=1e-4)
  # Rows away from the poles keep their own m = 1.
  np.testing.assert_allclose(c[2:14], np.fft.rfft(x.astype(np.float64), axis=1)[2:14, 1],
                             atol=1e-4)


def test_polar_filter_is_a_projection():
  x = np.random.default_rng(1).normal(size=(16, 32, 3)).astype(np.float32)
  once = np.asarray(polar.polar_filter(x))
  np.testing.assert_allclose(np.asarray(polar.polar_filter(once)), once, atol=1e-5)


@pytest.mark.parametrize("out_height", [64, 200])
def test_upsampled_pole_rows_are_one_colour(out_height):
  """Every pixel of row 0 is (nearly) the zenith: its longitude harmonics m >= 1 shrink by
  (sin theta_out / sin theta_0)^m, so the pole row is constant whatever the source row."""
  x = np.random.default_rng(2).uniform(size=(16, 32, 3)).astype(np.float32)
  up = photo_placement.upsample_equirect(x, out_height)
  ratio = math.sin(math.pi / (2 * out_height)) / math.sin(math.pi / 32)
  for row, src in ((up[0], x[0]), (up[-1], x[-1])):
    # The mean is the source row's; m = 1 is scaled by `ratio`, m >= 2 by ratio^m.
    np.testing.assert_allclose(row.mean(0), src.mean(0), atol=1e-4)
    assert row.std(0).mean() <= ratio * src.std(0).mean() + 1e-4
  assert up[0].std(0).mean() * 255 < 255 * 0.3 * ratio + 0.1
  # On a source the sampler makes (polar-filtered: row 0 holds m <= 1), the cap joins the
  # linear interpolation beyond it without a step.
  up = photo_placement.upsample_equirect(np.asarray(polar.polar_filter(x)), out_height)
  s = out_height // 16
  cap = math.ceil(out_height / 32 - 0.5)
  step_at_edge = np.abs(up[cap] - up[cap - 1]).mean()
  step_inside = np.abs(np.diff(up[cap:s + cap], axis=0)).mean()
  assert step_at_edge < 3 * step_inside + 1e-3
