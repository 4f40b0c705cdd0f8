"""Bilinear sampling: exact on linear ramps, longitude wrap, continuation across the poles."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.image import sampling

# Jitted once: eager op-by-op dispatch of the gathers is what would make these tests slow.
sample_px = jax.jit(sampling.sample_equirect_px)
sample_lonlat = jax.jit(sampling.sample_equirect)
sample_bilinear = jax.jit(sampling.sample_bilinear)


@pytest.fixture(scope="module")
def pano():
  return jnp.asarray(np.random.default_rng(0).uniform(size=(16, 32, 3)), jnp.float32)


def test_pixel_centres_hit_pixels(pano):
  i, j = np.meshgrid(np.arange(16), np.arange(32), indexing="ij")
  out = sample_px(pano, jnp.asarray(j + 0.5), jnp.asarray(i + 0.5))
  np.testing.assert_allclose(out, pano, atol=1e-6)
  lon, lat = sampling.equirect_angles(j + 0.5, i + 0.5, 16, 32)
  np.testing.assert_allclose(sample_lonlat(pano, lon, lat), pano, atol=1e-5)


def test_longitude_wrap_is_continuous(pano):
  """lon = -180 + eps and 180 - eps agree, and the seam value is the mean of the end columns."""
  lat = jnp.linspace(-1.4, 1.4, 9)
  eps = 1e-4
  a = sample_lonlat(pano, jnp.full_like(lat, -math.pi + eps), lat)
  b = sample_lonlat(pano, jnp.full_like(lat, math.pi - eps), lat)
  np.testing.assert_allclose(a, b, atol=1e-3)
  rows = jnp.asarray([3, 8, 12])
  seam = sample_px(pano, jnp.zeros(3), rows + 0.5)
  np.testing.assert_allclose(seam, 0.5 * (pano[rows, 0] + pano[rows, -1]), atol=1e-6)
  # Whole turns do not matter.
  x = jnp.linspace(0.1, 31.9, 7)
  np.testing.assert_allclose(sample_px(pano, x + 64, x * 0 + 5.2),
                             sample_px(pano, x, x * 0 + 5.2), atol=1e-5)


@pytest.mark.parametrize("width", [32, 31])
def test_rows_continue_across_the_poles(width):
  p = jnp.asarray(np.random.default_rng(1).uniform(size=(16, width, 2)), jnp.float32)
  x = jnp.linspace(0.0, width, 13)
  for e in (0.1, 0.25, 0.5, 0.9):
    north = sample_px(p, x, jnp.full_like(x, -e))
    np.testing.assert_allclose(north, sample_px(p, x + width / 2,
                                                                  jnp.full_like(x, e)), atol=1e-6)
    south = sample_px(p, x, jnp.full_like(x, 16 + e))
    np.testing.assert_allclose(south, sample_px(p, x + width / 2,
                                                                  jnp.full_like(x, 16 - e)),
                               atol=1e-6)
  lon = jnp.linspace(-3.0, 3.0, 7)
  np.testing.assert_allclose(
      sample_lonlat(p, lon, jnp.full_like(lon, math.pi / 2 + 0.05)),
      sample_lonlat(p, lon + math.pi, jnp.full_like(lon, math.pi / 2 - 0.05)),
      atol=1e-5)


def test_sample_bilinear_exact_on_ramps_and_masks_footprint():
  h, w = 6, 9
  i, j = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
  ramp = jnp.asarray(np.stack([j + 0.5, i + 0.5, 2.0 * (j + 0.5) - (i + 0.5)], -1), jnp.float32)
  x = jnp.asarray([0.5, 3.3, 8.5, 4.75, -0.1, 9.2, 0.0, 9.0])
  y = jnp.asarray([0.5, 2.7, 5.5, 0.6, 3.0, 3.0, 0.2, 6.0])
  values, valid = sample_bilinear(ramp, x, y)
  np.testing.assert_array_equal(valid, [1, 1, 1, 1, 0, 0, 1, 1])
  inner = np.arange(4)
  np.testing.assert_allclose(values[inner], np.stack([x, y, 2 * x - y], -1)[inner], atol=1e-5)
  np.testing.assert_array_equal(values[4:6], 0)
  # Within half a pixel of the border the edge pixel is extended.
  np.testing.assert_allclose(values[6], ramp[0, 0], atol=1e-6)
  np.testing.assert_allclose(values[7], ramp[-1, -1], atol=1e-6)


def test_gradients_reach_image_and_coordinates(pano):
  """d sample / d x is the finite difference of neighbouring columns (linear in a cell)."""
  def f(x):
    return sample_px(pano, x, jnp.asarray(4.5))[0]
  g = jax.jit(jax.grad(f))(jnp.asarray(0.2))  # between column -1 (= 31) and column 0
  np.testing.assert_allclose(g, pano[4, 0, 0] - pano[4, -1, 0], rtol=1e-5)
  gi = jax.jit(jax.grad(lambda p: sample_px(p, jnp.asarray(0.2), jnp.asarray(4.5))[0]))(
      pano)
  np.testing.assert_allclose(gi[4, 0, 0] + gi[4, -1, 0], 1.0, rtol=1e-6)
  np.testing.assert_allclose(gi[4, -1, 0], 0.3, rtol=1e-5)
