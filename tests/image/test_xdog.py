"""Gaussian blur against a direct float64 convolution; XDoG lines on edges, none on flats."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.image.xdog import gaussian_blur, gaussian_support, xdog


def blur_reference(x, sigma: float, support: int) -> np.ndarray:
  """Separable sampled Gaussian, truncated at `support` taps, renormalized inside the image."""
  x = np.asarray(x, np.float64)
  t = np.arange(-support, support + 1)
  w = np.exp(-0.5 * (t / sigma) ** 2)
  for axis in (1, 2):
    n = x.shape[axis]
    out = np.zeros_like(x)
    for i in range(n):
      j = i + t
      ok = (j >= 0) & (j < n)
      taken = np.take(x, j[ok], axis=axis)
      shape = [1, 1, 1, 1]
      shape[axis] = ok.sum()
      out_i = (taken * w[ok].reshape(shape)).sum(axis=axis) / w[ok].sum()
      idx = [slice(None)] * 4
      idx[axis] = i
      out[tuple(idx)] = out_i
    x = out
  return x


def step_image(width=32, height=16, lo=0.2, hi=0.8):
  """Dark left half, light right half: [1, H, W, 1]."""
  row = np.where(np.arange(width) < width // 2, lo, hi)
  return jnp.asarray(np.broadcast_to(row, (1, height, width))[..., None], jnp.float32)


@pytest.mark.parametrize("sigma", [0.7, 1.5, 3.0])
def test_blur_matches_reference(sigma):
  x = jax.random.uniform(jax.random.key(0), (2, 11, 14, 2))
  got = gaussian_blur(x, sigma, max_sigma=4.0)
  ref = blur_reference(x, sigma, gaussian_support(4.0))
  assert np.linalg.norm(np.asarray(got, np.float64) - ref) / np.linalg.norm(ref) < 1e-6


def test_blur_per_image_sigma():
  x = jax.random.uniform(jax.random.key(1), (2, 9, 9, 1))
  both = gaussian_blur(x, jnp.array([0.8, 2.0]))
  np.testing.assert_allclose(both[1:], gaussian_blur(x[1:], 2.0), atol=1e-6)
  np.testing.assert_allclose(both[:1], gaussian_blur(x[:1], 0.8), atol=1e-6)


def ink(img, sigma=1.0, **kw):
  return 1.0 - np.asarray(xdog(img, sigma, **kw))[0, ..., 0]


def test_line_along_step_edge():
  a = ink(step_image(), tone=0.0, epsilon=1 - 20 * 0.02, phi=10.0)
  cols = a.mean(axis=0)
  # Ink on the dark side next to the edge (columns 13-15), none far from it.
  assert cols[13:16].max() > 0.9
  assert cols[:10].max() < 1e-3 and cols[16:].max() < 1e-3
  assert np.allclose(a, a[:1])  # the same along the edge, borders included


@pytest.mark.parametrize("level", [0.0, 0.3, 1.0])
def test_no_line_on_flat_image(level):
  flat = jnp.full((1, 12, 12, 1), level)
  assert ink(flat, tone=0.0, epsilon=0.6).max() == 0.0
  if level > 0.5:  # the paper's form (tone=1) keeps bright flats white too
    assert ink(flat, tone=1.0, epsilon=0.5).max() == 0.0


def test_paper_mode_fills_dark_areas():
  assert ink(jnp.full((1, 8, 8, 1), 0.1), tone=1.0, epsilon=0.5).min() > 0.9


def test_line_weight_thickens_monotonically():
  img = step_image(width=48)
  weights = [0.5, 0.8, 1.2, 1.8, 2.6, 3.5]
  batch = jnp.concatenate([img] * len(weights))
  out = 1.0 - np.asarray(xdog(batch, jnp.array(weights), tone=0.0, epsilon=1 - 20 * 0.02))
  coverage = out.sum(axis=(1, 2, 3))
  assert np.all(np.diff(coverage) > 0), coverage
  assert coverage[-1] > 3 * coverage[0]


def test_bad_shape():
  with pytest.raises(ValueError, match="grey image"):
    xdog(jnp.ones((1, 4, 4, 3)), 1.0)
