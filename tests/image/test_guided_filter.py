"""Guided filter against a direct float64 implementation of He et al. (windowed means)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.image.guided_filter import fast_guided_filter, guided_filter


def window_mean(x: np.ndarray, r: int) -> np.ndarray:
  """Direct mean over the clipped (2 r + 1)^2 window, float64 [B, H, W, C]."""
  _, h, w, _ = x.shape
  out = np.empty_like(x)
  for i in range(h):
    for j in range(w):
      out[:, i, j] = x[:, max(i - r, 0):i + r + 1, max(j - r, 0):j + r + 1].mean(axis=(1, 2))
  return out


def guided_filter_reference(guide, src, r: int, eps: float) -> np.ndarray:
  """He et al. 2013, Algorithm 1, in float64."""
  i, p = np.asarray(guide, np.float64), np.asarray(src, np.float64)
  mean_i, mean_p = window_mean(i, r), window_mean(p, r)
  cov_ip = window_mean(i * p, r) - mean_i * mean_p
  var_i = window_mean(i * i, r) - mean_i * mean_i
  a = cov_ip / (var_i + eps)
  b = mean_p - a * mean_i
  return window_mean(a, r) * i + window_mean(b, r)


def rel_err(a, b):
  return np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b)


@pytest.fixture(scope="module")
def images():
  k1, k2 = jax.random.split(jax.random.key(0))
  x = jax.random.uniform(k1, (2, 12, 15, 3))
  # A step edge plus noise: the case the filter exists for.
  step = (jnp.arange(15) >= 7).astype(jnp.float32)[None, None, :, None]
  return x, jnp.clip(0.2 + 0.6 * step + 0.05 * jax.random.normal(k2, (2, 12, 15, 3)), 0, 1)


@pytest.mark.parametrize("r,eps", [(1, 1e-3), (3, 1e-2), (6, 0.1)])
def test_self_guided_matches_reference(images, r, eps):
  x, _ = images
  assert rel_err(guided_filter(x, x, r, eps), guided_filter_reference(x, x, r, eps)) < 1e-5


def test_grey_guide_matches_reference(images):
  x, step = images
  guide = step[..., :1]
  got = guided_filter(guide, x, 2, 1e-2)
  assert got.shape == x.shape
  assert rel_err(got, guided_filter_reference(guide, x, 2, 1e-2)) < 1e-5


def test_per_image_radius_and_eps(images):
  x, _ = images
  got = guided_filter(x, x, jnp.array([1, 4]), jnp.array([1e-3, 0.05]))
  for n, (r, eps) in enumerate([(1, 1e-3), (4, 0.05)]):
    assert rel_err(got[n:n + 1], guided_filter_reference(x[n:n + 1], x[n:n + 1], r, eps)) < 1e-5


def test_preserves_edges_smooths_noise(images):
  _, step = images
  out = np.asarray(guided_filter(step, step, 3, 0.01))
  # Across the edge the jump survives; within the flat sides the noise shrinks.
  jump = out[:, :, 8:].mean() - out[:, :, :6].mean()
  assert jump > 0.5
  assert out[:, :, :5].std() < 0.5 * np.asarray(step)[:, :, :5].std()


def test_fast_guided_filter(images):
  x, step = images
  np.testing.assert_array_equal(fast_guided_filter(x, x, 2, 1e-2, scale=1),
                                guided_filter(x, x, 2, 1e-2))
  # On a smooth image the subsampled fit is close to the full one.
  yy, xx = jnp.meshgrid(jnp.linspace(0, 1, 32), jnp.linspace(0, 1, 40), indexing="ij")
  smooth = jnp.stack([xx, yy, 0.5 + 0.3 * jnp.sin(3 * xx)], -1)[None]
  fast = fast_guided_filter(smooth, smooth, 4, 1e-2, scale=2)
  assert fast.shape == smooth.shape
  assert rel_err(fast, np.asarray(guided_filter(smooth, smooth, 4, 1e-2))) < 1e-2


def test_shape_errors():
  with pytest.raises(ValueError, match="channels"):
    guided_filter(jnp.ones((1, 4, 4, 2)), jnp.ones((1, 4, 4, 3)), 1, 0.1)
  with pytest.raises(ValueError, match="equal B, H, W"):
    guided_filter(jnp.ones((1, 4, 5, 1)), jnp.ones((1, 4, 4, 3)), 1, 0.1)
