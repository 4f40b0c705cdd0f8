"""PSNR and SSIM against float64 NumPy references (Wang et al. 2004 written out)."""

import numpy as np
import pytest
import scipy.signal

from genjax.metrics import paired


def _psnr_reference(x, y, data_range):
  mse = np.mean((np.asarray(x, np.float64) - np.asarray(y, np.float64)) ** 2, axis=(1, 2, 3))
  return 10.0 * np.log10(data_range ** 2 / mse)


def _ssim_reference(x, y, data_range, win=11, sigma=1.5, k1=0.01, k2=0.03):
  """Per image: 2-D Gaussian window (not separated), 'valid' correlation per channel."""
  t = np.arange(win) - (win - 1) / 2
  g = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * sigma ** 2))
  w = g / g.sum()
  c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
  out = []
  for xi, yi in zip(np.asarray(x, np.float64), np.asarray(y, np.float64)):
    maps = []
    for c in range(xi.shape[-1]):
      a, b = xi[..., c], yi[..., c]
      f = lambda z: scipy.signal.correlate(z, w, mode="valid")
      mu_a, mu_b = f(a), f(b)
      var_a, var_b = f(a * a) - mu_a ** 2, f(b * b) - mu_b ** 2
      cov = f(a * b) - mu_a * mu_b
      maps.append((2 * mu_a * mu_b + c1) * (2 * cov + c2)
                  / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2)))
    out.append(np.mean(maps))
  return np.array(out)


@pytest.fixture(scope="module")
def pair():
  rng = np.random.default_rng(0)
  h, w = 24, 32
  yy, xx = np.mgrid[0:h, 0:w]
  base = np.stack([np.sin(xx / 3.0 + c) * np.cos(yy / 5.0 - c) for c in range(3)], -1)
  x = np.stack([base * s for s in (0.5, 0.8, 1.0)])                          # [3, H, W, 3]
  y = x + rng.normal(0.0, 0.1, x.shape) + np.array([0.0, 0.05, -0.1])[:, None, None, None]
  return np.clip(x, -1, 1).astype(np.float32), np.clip(y, -1, 1).astype(np.float32)


def test_psnr_matches_reference(pair):
  x, y = pair
  got = np.asarray(paired.psnr(x, y, data_range=2.0))
  np.testing.assert_allclose(got, _psnr_reference(x, y, 2.0), rtol=1e-5)
  assert np.all(np.isinf(np.asarray(paired.psnr(x, x, data_range=2.0))))


def test_ssim_matches_reference(pair):
  x, y = pair
  got = np.asarray(paired.ssim(x, y, data_range=2.0))
  expected = _ssim_reference(x, y, 2.0)
  assert np.all(expected < 0.99) and np.all(expected > 0.1)   # a non-trivial comparison
  np.testing.assert_allclose(got, expected, atol=2e-6)


def test_ssim_uint8_range_and_single_image(pair):
  x, y = pair
  x8, y8 = ((x + 1) * 127.5).round(), ((y + 1) * 127.5).round()
  got = np.asarray(paired.ssim(x8[0], y8[0], data_range=255.0))   # [H, W, C] -> [1]
  assert got.shape == (1,)
  np.testing.assert_allclose(got, _ssim_reference(x8[:1], y8[:1], 255.0), atol=2e-6)
  np.testing.assert_allclose(np.asarray(paired.ssim(x, x, data_range=2.0)), 1.0, atol=1e-6)


def test_bad_shapes_are_errors(pair):
  x, y = pair
  with pytest.raises(ValueError, match="equal shapes"):
    paired.psnr(x, y[:2], data_range=2.0)
  with pytest.raises(ValueError, match="smaller than the 11x11 window"):
    paired.ssim(x[:, :8], y[:, :8], data_range=2.0)
