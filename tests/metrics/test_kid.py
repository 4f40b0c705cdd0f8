"""KID: the unbiased MMD^2 against a float64 NumPy transcription; behaviour on known data."""

import jax
import numpy as np

from genjax.metrics.kid import kid, mmd2_unbiased


def _mmd2_reference(x, y):
  """Binkowski et al. 2018, eq. for the unbiased estimator, double sums written out."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  d = x.shape[1]
  k = lambda a, b: (a @ b.T / d + 1.0) ** 3
  m, n = len(x), len(y)
  kxx, kyy = k(x, x), k(y, y)
  return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
          - 2.0 * k(x, y).mean())


def test_mmd2_matches_float64_reference():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(50, 8)).astype(np.float32)
  y = (rng.normal(size=(70, 8)) * 1.3 + 0.4).astype(np.float32)
  got = float(mmd2_unbiased(x, y))
  expected = _mmd2_reference(x, y)
  assert abs(got - expected) / abs(expected) < 1e-5


def test_same_distribution_is_zero_within_noise_and_shift_is_positive():
  rng = np.random.default_rng(1)
  d = 16
  real = rng.normal(size=(1500, d)).astype(np.float32)
  same = rng.normal(size=(1200, d)).astype(np.float32)
  shifted = (rng.normal(size=(1200, d)) + 0.3).astype(np.float32)
  key = jax.random.key(0)
  mean0, std0 = kid(real, same, key, num_subsets=50, subset_size=500)
  mean1, std1 = kid(real, shifted, key, num_subsets=50, subset_size=500)
  assert std0 > 0 and abs(mean0) < 3 * std0
  # A 0.3-sigma shift in every coordinate: ~0.3 here, against ~0.002 +- 0.005 for no shift.
  assert mean1 > 10 * std1 and mean1 > 20 * abs(mean0)


def test_subset_size_is_capped_and_key_decides():
  rng = np.random.default_rng(2)
  a = rng.normal(size=(40, 4)).astype(np.float32)
  b = rng.normal(size=(30, 4)).astype(np.float32)
  k0, k1 = jax.random.key(0), jax.random.key(1)
  r0 = kid(a, b, k0, num_subsets=5)   # subset_size 1000 -> 30
  assert r0 == kid(a, b, k0, num_subsets=5)
  assert r0 != kid(a, b, k1, num_subsets=5)
  # Subsets of 30 = all of both sets (a[:30] and b): every subset gives the full-set value.
  full = kid(a[:30], b, k0, num_subsets=3)
  np.testing.assert_allclose(full[0], _mmd2_reference(a[:30], b), rtol=1e-4)
  assert full[1] < 2e-5 * abs(full[0])   # only float32 summation order differs
