"""k-means quantization: palette size, exact reproduction, determinism, nearest colour."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.image import color, quantize


def n_colours(img) -> int:
  return len(np.unique(np.asarray(img).reshape(-1, 3), axis=0))


@pytest.fixture(scope="module")
def photo():
  """Two smooth colourful 24x20 images (many distinct colours)."""
  yy, xx = np.meshgrid(np.linspace(0, 1, 24), np.linspace(0, 1, 20), indexing="ij")
  a = np.stack([xx, yy, 0.5 + 0.5 * np.sin(6 * xx * yy)], -1)
  return jnp.asarray(np.stack([a, a[::-1, ::-1, ::-1]]), jnp.float32)


def test_at_most_k_colours(photo):
  q, palette = quantize.kmeans_quantize(photo, 5, key=jax.random.key(0))
  assert q.shape == photo.shape and palette.shape == (2, 5, 3)
  for n in range(2):
    assert n_colours(q[n]) <= 5
    assert n_colours(photo[n]) > 100
  assert float(q.min()) >= 0.0 and float(q.max()) <= 1.0


def test_k_colour_image_reproduced():
  colours = np.array([[0.9, 0.1, 0.1], [0.1, 0.8, 0.2], [0.1, 0.2, 0.9], [1, 1, 1],
                      [0.05, 0.05, 0.05], [0.6, 0.5, 0.1]], np.float32)
  idx = np.random.default_rng(0).integers(0, 6, (2, 12, 10))
  idx[:, 0, :6] = np.arange(6)  # every colour present
  img = jnp.asarray(colours[idx])
  q, _ = quantize.kmeans_quantize(img, 6, key=jax.random.key(3))
  np.testing.assert_allclose(q, img, atol=1e-5)


def test_deterministic_in_key(photo):
  a = quantize.fit_palette(photo, 4, key=jax.random.key(7))
  b = quantize.fit_palette(photo, 4, key=jax.random.key(7))
  np.testing.assert_array_equal(a, b)


def test_assignment_is_nearest_in_oklab(photo):
  palette = quantize.fit_palette(photo, 4, key=jax.random.key(1))
  labels = np.asarray(quantize.assign_palette(photo, palette))
  # float64 reference distances in OKLab.
  lab = np.asarray(color.srgb_to_oklab(photo), np.float64)
  pal = np.asarray(color.srgb_to_oklab(palette), np.float64)
  d = np.sum((lab[:, :, :, None, :] - pal[:, None, None, :, :]) ** 2, axis=-1)
  chosen = np.take_along_axis(d, labels[..., None], axis=-1)[..., 0]
  assert np.all(chosen <= d.min(axis=-1) + 1e-6)


def test_subsampled_fit(photo):
  big = jnp.tile(photo, (1, 4, 4, 1))  # 96 x 80 pixels > fit_pixels
  q, palette = quantize.kmeans_quantize(big, 3, key=jax.random.key(0), fit_pixels=512)
  assert n_colours(q[0]) <= 3
  # Palette colours are the means of real clusters: close to some pixel of the image.
  lab = np.asarray(color.srgb_to_oklab(big[0])).reshape(-1, 3)
  pal = np.asarray(color.srgb_to_oklab(palette[0]))
  assert np.sqrt(((lab[None] - pal[:, None]) ** 2).sum(-1)).min(axis=1).max() < 0.1


def test_bad_palette_shape(photo):
  with pytest.raises(ValueError, match="palette must be"):
    quantize.assign_palette(photo, jnp.zeros((1, 4, 3)))
