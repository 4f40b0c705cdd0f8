"""Classifier-free guidance wrapper, on exact Gaussian denoisers."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.diffusion import DiffusionSpec, guided, samplers

H, W, C = 2, 5, 1
N = 2048
MU_C = np.linspace(-0.6, 0.6, H * W * C).reshape(1, H, W, C)
MU_U = np.zeros((1, H, W, C))
STD = np.full((1, H, W, C), 0.4)
SPEC = DiffusionSpec.create("edm", "edm")


def gaussian_denoiser(mu, std=STD, schedule=SPEC.schedule):
  mu, std = jnp.asarray(mu, jnp.float32), jnp.asarray(std, jnp.float32)

  def denoise_fn(x, t):
    a, s = schedule.alpha_sigma(t)
    a, s = a[:, None, None, None], s[:, None, None, None]
    return mu + a * std**2 / (a * a * std**2 + s * s) * (x - a * mu)

  return denoise_fn


COND, UNCOND = gaussian_denoiser(MU_C), gaussian_denoiser(MU_U)


@functools.partial(jax.jit, static_argnames="guide")
def sample(key, scale, guide=True):
  fn = guided(COND, UNCOND, scale) if guide else COND
  return samplers.dpmpp_2m(fn, key, (N, H, W, C), SPEC, steps=32)


def test_scale_one_is_conditional_sampling_exactly():
  assert guided(COND, UNCOND, 1) is COND  # the unconditional model is not even evaluated
  # A traced scale of 1 goes through the arithmetic: D_c + 0 (D_c - D_u) == D_c.
  np.testing.assert_array_equal(sample(jax.random.key(0), jnp.float32(1.0)),
                                sample(jax.random.key(0), jnp.float32(1.0), guide=False))


def test_guided_denoiser_formula():
  x = jax.random.normal(jax.random.key(1), (4, H, W, C))
  t = jnp.asarray([0.1, 1.0, 5.0, 40.0])
  w = 3.0
  d_c, d_u = np.asarray(COND(x, t), np.float64), np.asarray(UNCOND(x, t), np.float64)
  np.testing.assert_allclose(guided(COND, UNCOND, w)(x, t), d_u + w * (d_c - d_u), rtol=1e-5,
                             atol=1e-6)


def test_guided_sampling_hits_the_extrapolated_gaussian():
  """With equal variances the guided denoiser is the exact denoiser of
  N(mu_u + w (mu_c - mu_u), std^2), so the ODE sample has that mean."""
  w = 2.5
  x = np.asarray(sample(jax.random.key(2), jnp.float32(w)), np.float64)
  target = MU_U + w * (MU_C - MU_U)
  z_mean = (x.mean(0, keepdims=True) - target) / (STD / np.sqrt(N))
  assert np.max(np.abs(z_mean)) < 5.0


def test_guidance_interval():
  x = jax.random.normal(jax.random.key(3), (4, H, W, C))
  t = jnp.asarray([0.1, 0.5, 5.0, 40.0])  # outside, inside, inside, outside (0.28, 5.42]
  out = guided(COND, UNCOND, 4.0, interval=(0.28, 5.42))(x, t)
  full = guided(COND, UNCOND, 4.0)(x, t)
  d_c = COND(x, t)
  np.testing.assert_array_equal(out[jnp.asarray([0, 3])], d_c[jnp.asarray([0, 3])])
  np.testing.assert_array_equal(out[1:3], full[1:3])
  with pytest.raises(ValueError, match="interval"):
    guided(COND, UNCOND, 2.0, interval=(5.0, 1.0))
