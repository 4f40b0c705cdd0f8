"""Fréchet distance against closed forms and scipy; streaming moments against np.mean/np.cov."""

import numpy as np
import pytest
import scipy.linalg

from genjax.metrics import frechet


def _rel(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.linalg.norm(a - b) / np.linalg.norm(b)


def _spd(rng, d, n):
  x = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
  return np.cov(x, rowvar=False)


def test_diagonal_covariances_closed_form():
  rng = np.random.default_rng(0)
  d = 32
  mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
  s1, s2 = rng.uniform(0.1, 3.0, d), rng.uniform(0.1, 3.0, d)
  expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2.0 * np.sqrt(s1 * s2))
  got = frechet.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2))
  assert abs(got - expected) / expected < 1e-12


def test_full_covariances_match_scipy_sqrtm():
  rng = np.random.default_rng(1)
  d = 24
  mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
  s1, s2 = _spd(rng, d, 200), _spd(rng, d, 300)
  covmean = scipy.linalg.sqrtm(s1 @ s2).real
  expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2.0 * covmean)
  got = frechet.frechet_distance(mu1, s1, mu2, s2)
  assert abs(got - expected) / expected < 1e-10


def test_rank_deficient_covariances_symmetric_and_zero_on_itself():
  # Fewer samples than dimensions, as with 2048-d features of a few hundred images.
  rng = np.random.default_rng(2)
  d = 64
  a, b = rng.normal(size=(20, d)), rng.normal(size=(30, d)) + 0.1
  ma, sa = a.mean(0), np.cov(a, rowvar=False)
  mb, sb = b.mean(0), np.cov(b, rowvar=False)
  ab, ba = frechet.frechet_distance(ma, sa, mb, sb), frechet.frechet_distance(mb, sb, ma, sa)
  assert np.isfinite(ab) and ab > 0
  assert abs(ab - ba) / ab < 1e-12
  # Without the round-off cut this is ~1e-8 * tr(S): sqrt of 1e-16 per null dimension.
  assert abs(frechet.frechet_distance(ma, sa, ma, sa)) < 1e-12 * np.trace(sa)


def test_shape_mismatch_is_an_error():
  with pytest.raises(ValueError, match="sigma2"):
    frechet.frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(4))


def test_streaming_moments_equal_mean_and_cov():
  rng = np.random.default_rng(3)
  # A large common offset: the naive sum-of-outer-products formula would lose digits.
  x = (rng.normal(size=(1000, 16)) @ rng.normal(size=(16, 16)) + 1e3).astype(np.float32)
  m = frechet.moments_init(16)
  for lo, hi in ((0, 1), (1, 130), (130, 130), (130, 601), (601, 1000)):   # uneven, one empty
    m = frechet.moments_update(m, x[lo:hi])
  mu, sigma = frechet.moments_finalize(m)
  x64 = x.astype(np.float64)
  assert m.count == 1000
  assert _rel(mu, np.mean(x64, axis=0)) < 1e-14
  assert _rel(sigma, np.cov(x64, rowvar=False)) < 1e-12


def test_moments_need_two_samples_and_matching_dims():
  m = frechet.moments_update(frechet.moments_init(3), np.ones((1, 3)))
  with pytest.raises(ValueError, match="at least 2"):
    frechet.moments_finalize(m)
  with pytest.raises(ValueError, match=r"\[N, 3\]"):
    frechet.moments_update(m, np.ones((2, 4)))
