"""Extractor registry, streaming statistics, the public helpers and the METRICS registry."""

import numpy as np
import pytest

from genjax import metrics
from genjax.metrics import features


def _rel(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.linalg.norm(a - b) / np.linalg.norm(b)


def _images(seed, n, shift=0.0, size=16):
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:size, 0:size] / size
  f = rng.uniform(1, 4, (n, 1, 1, 3))
  ph = rng.uniform(0, 2 * np.pi, (n, 1, 1, 3))
  x = np.sin(2 * np.pi * f * (xx + yy)[None, ..., None] + ph) * 0.7 + shift
  return np.clip(x + rng.normal(0, 0.05, x.shape), -1, 1).astype(np.float32)


@pytest.fixture(scope="module")
def random_conv():
  return features.get_extractor("random_conv", batch_size=8)


def test_streaming_stats_equal_one_shot_mean_and_cov(random_conv):
  x = _images(0, 45)
  batches = [x[i:i + 7] for i in range(0, 45, 7)]          # 7 ... 7, 3
  stats = features.compute_stats(iter(batches), random_conv, max_features=20)
  feats = random_conv(x).astype(np.float64)
  assert feats.shape == (45, 128)
  assert _rel(stats.mu, feats.mean(0)) < 1e-6
  assert _rel(stats.sigma, np.cov(feats, rowvar=False)) < 1e-5
  np.testing.assert_allclose(stats.features, feats[:20], rtol=1e-5, atol=1e-6)
  # Every chunk was padded to the batch size: one compiled program for all calls.
  assert random_conv.apply._cache_size() == 1


def test_fid_kid_pr_on_stats(random_conv):
  real = features.compute_stats(_images(1, 96), random_conv)
  same = features.compute_stats(_images(2, 96), random_conv)
  shifted = features.compute_stats(_images(3, 96, shift=0.3), random_conv)
  assert abs(metrics.fid(real, real)) < 1e-9
  assert metrics.fid(real, shifted) > 3 * metrics.fid(real, same) > 0
  # Subsets of half the features, so they differ and their spread is a real std.
  kid_same, kid_same_std = metrics.kid(real, same, num_subsets=50, subset_size=48)
  kid_shift, kid_shift_std = metrics.kid(real, shifted, num_subsets=50, subset_size=48)
  assert abs(kid_same) < 3 * kid_same_std and kid_shift > 5 * kid_shift_std
  assert metrics.precision_recall(real, real) == (1.0, 1.0)


def test_stats_file_round_trip(tmp_path, random_conv):
  stats = features.compute_stats(_images(4, 10), random_conv)
  features.save_stats(tmp_path / "real.npz", stats)
  loaded = features.load_stats(tmp_path / "real.npz")
  for a, b in zip(stats, loaded):
    np.testing.assert_array_equal(a, b)
  np.savez(tmp_path / "other.npz", mu=stats.mu)
  with pytest.raises(ValueError, match="features, sigma"):
    features.load_stats(tmp_path / "other.npz")


def test_pixels_extractor_and_grayscale():
  ext = features.get_extractor("pixels", size=4, batch_size=4)
  x = np.full((5, 16, 16, 1), 0.5, np.float32)
  f = ext(x)
  assert f.shape == (5, 4 * 4 * 3)
  np.testing.assert_allclose(f, 0.5, atol=1e-6)
  u8 = features.get_extractor("pixels", size=4, value_range=(0.0, 255.0))(
      np.full((2, 8, 8, 3), 255, np.uint8))
  np.testing.assert_allclose(u8, 1.0, atol=1e-6)


def test_inception_extractor_at_299(inception_weights_file):
  # The only 299x299 forward of the metric tests (compiles once, batch of 2).
  ext = features.get_extractor("inception", weights=inception_weights_file, batch_size=2)
  x = _images(5, 3, size=32)                # resized to 299 inside
  f = ext(x)
  assert f.shape == (3, 2048) and np.all(np.isfinite(f)) and _rel(f[0], f[1]) > 1e-3
  np.testing.assert_allclose(ext(x[1:2]), f[1:2], rtol=1e-5, atol=1e-6)   # padding inert
  assert ext.apply.func._cache_size() == 1


def test_registries_list_names():
  with pytest.raises(metrics.UnknownNameError, match="inception, pixels, random_conv"):
    features.get_extractor("vgg16")
  with pytest.raises(ValueError, match="needs weights="):
    features.get_extractor("inception")
  assert metrics.get_metric("ssim") is metrics.ssim
  assert set(metrics.METRICS) == {"fid", "kid", "precision_recall", "swd", "psnr", "ssim",
                                  "seam"}
  with pytest.raises(metrics.UnknownNameError,
                     match="fid, kid, precision_recall, psnr, seam, ssim, swd"):
    metrics.get_metric("is")


def test_bad_images_are_errors(random_conv):
  with pytest.raises(ValueError, match=r"\[N, H, W, 3\]"):
    random_conv(np.zeros((2, 8, 8, 4), np.float32))
  with pytest.raises(ValueError, match="no images"):
    features.compute_stats(iter([]), random_conv)
