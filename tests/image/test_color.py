"""Colour conversions against published values and a float64 sRGB reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.image import color


def srgb_to_linear_reference(x):
  x = np.asarray(x, np.float64)
  return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


# CIELAB (D65, 2 degree observer) of the sRGB primaries, as published by Lindbloom's
# calculator and the colormath / colour-science packages.
LAB_KNOWN = [((1, 0, 0), (53.2408, 80.0925, 67.2032)),
             ((0, 1, 0), (87.7347, -86.1827, 83.1793)),
             ((0, 0, 1), (32.2970, 79.1875, -107.8602)),
             ((1, 1, 1), (100.0, 0.0, 0.0)),
             ((0, 0, 0), (0.0, 0.0, 0.0))]

# Ottosson's table of XYZ -> OKLab values (3 decimals), https://bottosson.github.io/posts/oklab/
OKLAB_FROM_XYZ = [((0.950, 1.000, 1.089), (1.000, 0.000, 0.000)),
                  ((1.000, 0.000, 0.000), (0.450, 1.236, -0.019)),
                  ((0.000, 1.000, 0.000), (0.922, -0.671, 0.263)),
                  ((0.000, 0.000, 1.000), (0.153, -1.415, -0.449))]


def test_transfer_function():
  x = np.linspace(0, 1, 1001)
  np.testing.assert_allclose(color.srgb_to_linear(jnp.asarray(x, jnp.float32)),
                             srgb_to_linear_reference(x), atol=1e-6)
  np.testing.assert_allclose(color.linear_to_srgb(color.srgb_to_linear(x.astype(np.float32))),
                             x, atol=2e-6)


@pytest.mark.parametrize("rgb,lab", LAB_KNOWN)
def test_lab_known_values(rgb, lab):
  np.testing.assert_allclose(color.srgb_to_lab(jnp.array(rgb, jnp.float32)), lab, atol=2e-3)


@pytest.mark.parametrize("xyz,lab", OKLAB_FROM_XYZ)
def test_oklab_published_table(xyz, lab):
  got = color.linear_to_oklab(color.xyz_to_linear(jnp.array(xyz, jnp.float32)))
  np.testing.assert_allclose(got, lab, atol=1.5e-3)


def test_round_trips():
  x = jax.random.uniform(jax.random.key(0), (2, 5, 7, 3))
  np.testing.assert_allclose(color.lab_to_srgb(color.srgb_to_lab(x)), x, atol=1e-4)
  np.testing.assert_allclose(color.oklab_to_srgb(color.srgb_to_oklab(x)), x, atol=1e-4)


def test_luminance_and_lightness():
  grey = jnp.full((3,), 0.5)
  np.testing.assert_allclose(color.luminance(grey), srgb_to_linear_reference([0.5]), rtol=1e-5)
  # L* of sRGB 0.5 is 53.389; white 1, black 0; shape [..., 1].
  rgb = jnp.array([[0.5, 0.5, 0.5], [1, 1, 1], [0, 0, 0]], jnp.float32)
  np.testing.assert_allclose(color.lightness(rgb)[:, 0], [0.53389, 1.0, 0.0], atol=2e-5)


def test_gradients_finite_at_black():
  for f in (color.srgb_to_lab, color.srgb_to_oklab, color.lightness):
    g = jax.grad(lambda x: jnp.sum(f(x)))(jnp.zeros((2, 3)))
    assert np.all(np.isfinite(g)), f.__name__
