"""White-box cartoon representations: surface smooths, texture greys, structure flattens."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.image import cartoon_reps


def blocks(b=2, h=24, w=30):
  """Four flat colour blocks whose borders do not fall on the SLIC seed grid: [B, H, W, 3]."""
  img = np.zeros((b, h, w, 3), np.float32)
  img[:, :10, :13] = [0.9, 0.1, 0.1]
  img[:, :10, 13:] = [0.1, 0.8, 0.2]
  img[:, 10:, :7] = [0.1, 0.2, 0.9]
  img[:, 10:, 7:] = [0.95, 0.95, 0.9]
  return img


def test_surface_smooths_noise_keeps_edges():
  # A vertical step 0.2 | 0.8 with noise of std 0.03 (variance 0.0009 << eps = 0.01).
  clean = np.where(np.arange(40) < 20, 0.2, 0.8)[None, None, :, None] * np.ones((2, 32, 40, 3))
  noisy = np.clip(clean + 0.03 * np.random.default_rng(0).normal(size=clean.shape), 0, 1)
  out = np.asarray(cartoon_reps.surface(jnp.asarray(noisy, jnp.float32), radius=4, eps=0.01))
  inner = (slice(None), slice(8, 24), slice(4, 12))  # 8 px from the edge and the borders
  assert out[inner].std(axis=(1, 2)).max() < 0.25 * noisy[inner].std(axis=(1, 2)).min()
  # The 0.6 jump survives across the edge (a box mean of radius 4 leaves 0.07 of it).
  jump = out[:, :, 20].mean() - out[:, :, 19].mean()
  assert jump > 0.45


def test_texture_is_a_random_convex_grey():
  img = jnp.asarray(np.random.default_rng(1).uniform(size=(3, 8, 9, 3)), jnp.float32)
  key = jax.random.key(4)
  t = np.asarray(cartoon_reps.texture(img, key=key))
  assert t.shape == (3, 8, 9, 1)
  x = np.asarray(img, np.float64)
  # A per-image convex combination of the channels: recover the weights by least squares.
  for n in range(3):
    w, *_ = np.linalg.lstsq(x[n].reshape(-1, 3), t[n].reshape(-1), rcond=None)
    assert abs(w.sum() - 1) < 1e-5 and np.all(w > 0)
    np.testing.assert_allclose(w, [0.299, 0.587, 0.114], atol=0.25)
  np.testing.assert_array_equal(t, cartoon_reps.texture(img, key=key))
  other = np.asarray(cartoon_reps.texture(img, key=jax.random.key(5)))
  assert np.abs(other - t).max() > 1e-3
  # A grey image is left as it is whatever the weights.
  grey = jnp.broadcast_to(img[..., :1], img.shape)
  np.testing.assert_allclose(cartoon_reps.texture(grey, key=key), img[..., :1], atol=1e-6)


def test_slic_snaps_to_colour_borders():
  labels = np.asarray(cartoon_reps.slic(jnp.asarray(blocks()), n_segments=20))
  img = blocks()
  assert labels.shape == (2, 24, 30) and labels.min() >= 0 and labels.max() < 20
  for n in range(2):
    for lab in np.unique(labels[n]):
      colours = np.unique(img[n][labels[n] == lab], axis=0)
      assert len(colours) == 1, f"superpixel {lab} straddles a colour border"
  # Spatially compact: about 20 superpixels, none much larger than a grid cell.
  sizes = np.bincount(labels[0].ravel())
  assert 15 <= np.count_nonzero(sizes) <= 20 and sizes.max() < 3 * 24 * 30 / 20


def test_structure_fills_mean_colour():
  rng = np.random.default_rng(2)
  img = jnp.asarray(np.clip(blocks(1) + 0.1 * rng.normal(size=(1, 24, 30, 3)), 0, 1), jnp.float32)
  labels = np.asarray(cartoon_reps.slic(img, n_segments=12))
  out = np.asarray(cartoon_reps.structure(img, n_segments=12))
  x = np.asarray(img, np.float64)
  for lab in np.unique(labels):
    m = labels[0] == lab
    np.testing.assert_allclose(out[0][m], np.broadcast_to(x[0][m].mean(0), (m.sum(), 3)),
                               atol=1e-5)
  assert len(np.unique(out[0].reshape(-1, 3), axis=0)) <= 12
  # Noise-free flat blocks come back unchanged.
  np.testing.assert_allclose(cartoon_reps.structure(jnp.asarray(blocks()), n_segments=20),
                             blocks(), atol=1e-6)


def test_bad_shape():
  with pytest.raises(ValueError, match=r"\[B, H, W, 3\]"):
    cartoon_reps.structure(jnp.ones((1, 4, 4, 1)))
