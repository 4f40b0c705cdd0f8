"""Multi-scale SWD: pyramid against scipy (the paper's code uses scipy.ndimage), exact
properties of the distance, and its response to noise and blur."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage

from genjax.metrics import swd as swd_fn
from genjax.metrics.swd import (SWDConfig, collect_descriptors, extract_patches,
                                laplacian_pyramid, num_levels, pyr_down, pyr_up,
                                sliced_wasserstein, sort_columns, swd_from_descriptors)

CONFIG = SWDConfig(min_resolution=8)   # 32x64 images -> levels 32x64, 16x32, 8x16
KEY = jax.random.key(0)


def _rel(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.linalg.norm(a - b) / np.linalg.norm(b)


def _gauss_5x5():
  g = np.array([1.0, 4.0, 6.0, 4.0, 1.0])
  return np.outer(g, g) / 256.0


@pytest.fixture(scope="module")
def images():
  """24 smooth random scenes with edges, [24, 32, 64, 3] in about [-1, 1]."""
  rng = np.random.default_rng(0)
  n, h, w = 24, 32, 64
  yy, xx = np.mgrid[0:h, 0:w] / h
  out = np.zeros((n, h, w, 3))
  for img in out:
    for _ in range(6):
      f, ph, col = rng.uniform(1, 6, 2), rng.uniform(0, 2 * np.pi), rng.normal(size=3)
      img += np.sin(2 * np.pi * (f[0] * yy + f[1] * xx) + ph)[..., None] * col
    for _ in range(3):   # flat rectangles: edges at every scale
      y0, x0 = rng.integers(0, h - 8), rng.integers(0, w - 8)
      img[y0:y0 + 8, x0:x0 + 12] += rng.normal(size=3)
  return np.tanh(out / 3).astype(np.float32)


def test_pyramid_matches_scipy_mirror_convolution(images):
  x = images[:2].astype(np.float64)
  k = _gauss_5x5()[:, :, None]
  down_ref = np.stack([scipy.ndimage.convolve(i, k, mode="mirror") for i in x])[:, ::2, ::2]
  assert _rel(pyr_down(jnp.asarray(images[:2])), down_ref) < 1e-6
  z = np.zeros((2, 32, 64, 3))
  z[:, ::2, ::2] = down_ref
  up_ref = np.stack([scipy.ndimage.convolve(i, 4 * k, mode="mirror") for i in z])
  assert _rel(pyr_up(jnp.asarray(down_ref, jnp.float32)), up_ref) < 1e-6


def test_laplacian_pyramid_reconstructs_the_image(images):
  pyramid = laplacian_pyramid(jnp.asarray(images[:3]), 3)
  assert [p.shape[1:3] for p in pyramid] == [(32, 64), (16, 32), (8, 16)]
  rebuilt = pyramid[2]
  for band in pyramid[1::-1]:
    rebuilt = band + pyr_up(rebuilt)
  assert _rel(rebuilt, images[:3]) < 1e-6


def test_patches_are_windows_of_the_level():
  h, w = 16, 24
  coords = (np.arange(h)[:, None] * 1000 + np.arange(w)[None, :]).astype(np.float32)
  level = jnp.asarray(np.stack([coords, coords + 1e5])[..., None])      # [2, H, W, 1]
  p = np.asarray(extract_patches(level, KEY, patches_per_image=50, patch_size=7))[..., 0]
  assert p.shape == (100, 7, 7)
  offsets = np.arange(7)[:, None] * 1000 + np.arange(7)[None, :]
  np.testing.assert_array_equal(p - p[:, :1, :1], np.broadcast_to(offsets, p.shape))
  top_left = p[:, 0, 0] % 1e5
  assert np.all(top_left // 1000 <= h - 7) and np.all(top_left % 1000 <= w - 7)
  assert np.all(p[:50] < 1e5) and np.all(p[50:] >= 1e5)   # each image's own patches


def test_sort_columns_equals_numpy_sort():
  x = np.random.default_rng(5).normal(size=(300, 4)).astype(np.float32) * 1e3
  x[:6, 0] = [0.0, -0.0, np.inf, -np.inf, 1e-42, -1e-42]    # signed zeros, infinities, denormals
  np.testing.assert_array_equal(np.asarray(sort_columns(jnp.asarray(x))), np.sort(x, axis=0))


def test_sliced_wasserstein_exact_cases():
  rng = np.random.default_rng(1)
  a = jnp.asarray(rng.normal(size=(500, 1)), jnp.float32)
  # One dimension: every direction is +-1, and W1 between a and a + 0.3 is 0.3.
  np.testing.assert_allclose(float(sliced_wasserstein(a, a + 0.3, KEY)), 0.3, rtol=1e-5)
  b = jnp.asarray(rng.normal(size=(500, 20)), jnp.float32)
  c = jnp.asarray(rng.normal(size=(500, 20)) * 1.5, jnp.float32)
  assert float(sliced_wasserstein(b, b, KEY)) == 0.0
  d = float(sliced_wasserstein(b, c, KEY))
  assert d > 0.1
  np.testing.assert_allclose(float(sliced_wasserstein(b, c[::-1], KEY)), d, rtol=1e-6)


def test_set_against_itself(images):
  real, _ = collect_descriptors(images, KEY, CONFIG)
  assert [r.shape for r in real] == [(24 * 128, 7, 7, 3)] * 3
  assert swd_from_descriptors(real, real, KEY, CONFIG) == [0.0, 0.0, 0.0]
  # Other patches of the same images: only sampling noise, which falls as 1 / sqrt(patches):
  # half as large with 4x the patches (~64 -> ~31 here), and below what 0.3-sigma noise adds.
  self_32 = swd_fn(images, images, KEY, SWDConfig(min_resolution=8, patches_per_image=32)).average
  self_128 = swd_fn(images, images, KEY, CONFIG).average
  assert 0.35 < self_128 / self_32 < 0.65
  noisy = images + 0.3 * np.random.default_rng(2).normal(size=images.shape).astype(np.float32)
  assert self_128 < 0.7 * swd_fn(images, noisy, KEY, CONFIG).average


@pytest.fixture(scope="module")
def real_descriptors(images):
  return collect_descriptors(images, jax.random.fold_in(KEY, 0), CONFIG)[0]


def _swd_to(real_descriptors, fake):
  # Same key for every fake set: same patch positions, same directions; only content changes.
  fake_desc, _ = collect_descriptors(fake.astype(np.float32), jax.random.fold_in(KEY, 1), CONFIG)
  return swd_from_descriptors(real_descriptors, fake_desc, jax.random.fold_in(KEY, 2), CONFIG)


def test_grows_with_noise(images, real_descriptors):
  eps = np.random.default_rng(3).normal(size=images.shape)
  levels = np.array([_swd_to(real_descriptors, images + s * eps)
                     for s in (0.0, 0.05, 0.1, 0.2, 0.4)])       # [noise, level]
  assert np.all(np.diff(levels.mean(axis=1)) > 0)
  assert np.all(np.diff(levels[:, 0]) > 0)   # the finest level reacts most
  assert levels[-1, 0] > 2 * levels[0, 0]


def test_grows_with_blur(images, real_descriptors):
  averages = [np.mean(_swd_to(real_descriptors, images))]
  for sigma in (0.7, 1.0, 1.5, 2.5):
    averages.append(np.mean(_swd_to(real_descriptors,
                                    scipy.ndimage.gaussian_filter(images, (0, sigma, sigma, 0)))))
  assert np.all(np.diff(averages) > 0)
  assert averages[-1] > 2 * averages[0]


def test_streams_batches_and_caps_descriptors(images):
  batches = (images[i:i + 10] for i in range(0, 24, 10))    # 10, 10, 4
  desc, hw = collect_descriptors(batches, KEY, CONFIG)
  assert hw == (32, 64) and [d.shape[0] for d in desc] == [24 * 128] * 3
  capped, _ = collect_descriptors(images, KEY, SWDConfig(min_resolution=8, max_descriptors=1000))
  assert [d.shape[0] for d in capped] == [1000] * 3
  result = swd_fn(images[:12], iter([images[12:18], images[18:]]), KEY, CONFIG)
  assert result.resolutions == ((32, 64), (16, 32), (8, 16)) and len(result.per_level) == 3
  np.testing.assert_allclose(result.average, np.mean(result.per_level))


def test_levels_and_size_errors():
  assert num_levels(1024, 1024, SWDConfig()) == 7      # 1024 ... 16, as in the paper
  assert num_levels(64, 128, SWDConfig()) == 3
  assert num_levels(12, 12, SWDConfig()) == 1
  with pytest.raises(ValueError, match="smaller than the 7x7 patches"):
    num_levels(6, 32, SWDConfig())
  with pytest.raises(ValueError, match="real images are"):
    swd_fn(np.zeros((2, 16, 16, 3)), np.zeros((2, 32, 32, 3)), KEY)
