"""Improved precision/recall against a float64 NumPy brute force and on known configurations."""

import numpy as np
import pytest

from genjax.metrics.precision_recall import knn_radii, precision_recall


def _reference(real, fake, k=3):
  real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
  d = lambda a, b: np.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1)
  r_real = np.sort(d(real, real), axis=1)[:, k]
  r_fake = np.sort(d(fake, fake), axis=1)[:, k]
  precision = np.mean(np.any(d(fake, real) <= r_real[None, :], axis=1))
  recall = np.mean(np.any(d(real, fake) <= r_fake[None, :], axis=1))
  return precision, recall, r_real


def test_radii_match_brute_force_with_padded_blocks():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(37, 5)).astype(np.float32)
  expected = _reference(x, x)[2]
  for block in (8, 1024):   # 37 rows: 5 blocks of 8 (3 padded rows) or one padded block
    got = np.asarray(knn_radii(x, k=3, block_size=block))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_identical_sets_are_one():
  x = np.random.default_rng(1).normal(size=(64, 8)).astype(np.float32)
  assert precision_recall(x, x) == (1.0, 1.0)


def test_disjoint_sets_are_zero():
  rng = np.random.default_rng(2)
  real = rng.normal(size=(64, 8)).astype(np.float32)
  fake = rng.normal(size=(48, 8)).astype(np.float32) + 50.0
  assert precision_recall(real, fake) == (0.0, 0.0)


def test_half_copied_half_far_has_precision_one_half():
  rng = np.random.default_rng(3)
  real = rng.normal(size=(80, 6)).astype(np.float32)
  fake = np.concatenate([real[:40], rng.normal(size=(40, 6)).astype(np.float32) + 50.0])
  p, r = precision_recall(real, fake)
  assert p == 0.5
  assert r >= 0.5   # the 40 copied reals are in the fake support (their own balls)


@pytest.mark.parametrize("shift", [0.0, 0.7, 1.5])
def test_matches_numpy_reference(shift):
  rng = np.random.default_rng(4)
  real = rng.normal(size=(120, 4)).astype(np.float32)
  fake = (rng.normal(size=(90, 4)) * 1.2 + shift).astype(np.float32)
  p_ref, r_ref, _ = _reference(real, fake)
  p, r = precision_recall(real, fake, block_size=32)
  # float32 vs float64 distances may flip a sample lying exactly on a ball's boundary.
  assert abs(p - p_ref) <= 1 / 90 and abs(r - r_ref) <= 1 / 120
  if shift == 1.5:
    assert p < 0.8 and r < 0.8


def test_too_few_samples_is_an_error():
  with pytest.raises(ValueError, match="more than k=3"):
    precision_recall(np.zeros((3, 2)), np.zeros((10, 2)))
