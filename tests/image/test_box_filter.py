"""box_filter against a direct float64 windowed mean."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.image.box_filter import box_filter, box_sum


def box_filter_reference(x: np.ndarray, radius) -> np.ndarray:
  """Direct mean over the clipped (2 r + 1)^2 window, per image, float64."""
  x = np.asarray(x, np.float64)
  b, h, w, _ = x.shape
  radii = np.broadcast_to(np.asarray(radius), (b,))
  out = np.empty_like(x)
  for n in range(b):
    r = int(radii[n])
    for i in range(h):
      for j in range(w):
        win = x[n, max(i - r, 0):i + r + 1, max(j - r, 0):j + r + 1]
        out[n, i, j] = win.mean(axis=(0, 1))
  return out


def rel_err(a, b):
  return np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b)


@pytest.mark.parametrize("shape,radius", [((2, 9, 13, 3), 2), ((1, 7, 5, 1), 0),
                                          ((1, 6, 11, 2), 4), ((1, 5, 4, 1), 20),
                                          ((1, 1, 9, 3), 3)])
def test_matches_direct_mean(shape, radius):
  x = jax.random.uniform(jax.random.key(0), shape)
  got = box_filter(x, radius)
  assert got.shape == shape and got.dtype == jnp.float32
  assert rel_err(got, box_filter_reference(x, radius)) < 1e-6


def test_per_image_radius():
  x = jax.random.uniform(jax.random.key(1), (3, 10, 12, 2))
  radii = jnp.array([0, 1, 5])
  assert rel_err(box_filter(x, radii), box_filter_reference(x, np.asarray(radii))) < 1e-6


def test_constant_stays_constant_at_borders():
  x = jnp.full((1, 8, 8, 1), 0.37)
  np.testing.assert_allclose(box_filter(x, 3), 0.37, rtol=1e-6)


def test_large_image_precision():
  # Prefix sums over 512 columns: the mean subtraction keeps float32 error ~1e-6.
  x = jax.random.uniform(jax.random.key(2), (1, 64, 512, 1))
  ref = box_filter_reference(np.asarray(x)[:, :12], 3)[:, :8]  # rows 0-7 see rows 0-10
  assert rel_err(box_filter(x, 3)[:, :8], ref) < 1e-6


def test_radius_is_runtime():
  x = jnp.ones((1, 6, 6, 1))
  box_filter(x, 1)
  size = box_filter._cache_size()
  box_filter(x, 2)
  box_filter(x, 7)
  assert box_filter._cache_size() == size


def test_bad_shape():
  with pytest.raises(ValueError, match=r"\[B, H, W, C\]"):
    box_filter(jnp.ones((4, 4)), 1)


def test_box_sum_exact_on_counts_and_cut_invariant():
  labels = jax.random.randint(jax.random.key(3), (1, 20, 23, 1), 0, 4)
  onehot = jax.nn.one_hot(labels[..., 0], 4, dtype=jnp.float32)
  got = np.asarray(box_sum(onehot, 2))
  rows = np.minimum(np.arange(20) + 2, 19) - np.maximum(np.arange(20) - 2, 0) + 1
  cols = np.minimum(np.arange(23) + 2, 22) - np.maximum(np.arange(23) - 2, 0) + 1
  ref = box_filter_reference(onehot, 2) * (rows[:, None] * cols[None, :])[None, :, :, None]
  np.testing.assert_array_equal(got, np.round(ref))  # exact integers
  # A crop gives bit-identical sums where its window is complete.
  crop = np.asarray(box_sum(onehot[:, 5:, 7:], 2))
  np.testing.assert_array_equal(crop[:, 2:, 2:], got[:, 7:, 9:])
