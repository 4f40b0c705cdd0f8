"""What every sampler's step rule works with: the sampling context, per-sample keys and
noise streams, the denoiser's x0 estimate, and the DDPM posterior's coefficients.

Shared by the single-step rules (genjax.diffusion.samplers), the multistep solvers
(genjax.diffusion.multistep) and the editing loops (genjax.diffusion.editing)."""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from genjax.diffusion.denoiser import DenoiseFn

# Stream tags for fold_in: the initial noise and the per-step noise of a sample's key.
INIT_NOISE, STEP_NOISE = 0, 1
# Per-step noise uses within one step (see editing.py for the others).
NOISE_TRANSITION = 0


class Context(NamedTuple):
  """What a step rule needs besides the state. keys: [B] per-sample keys."""
  denoise_fn: DenoiseFn
  schedule: Any
  keys: jax.Array
  num_steps: int


def per_sample_keys(key: jax.Array, batch: int) -> jax.Array:
  """[B] keys: `key` if it already is a batch of B keys, else fold_in(key, i) for i < B."""
  if not isinstance(key, jax.Array):
    key = jnp.asarray(key)
  typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
  single_ndim = 0 if typed else 1
  if key.ndim == single_ndim:
    return jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, jnp.arange(batch))
  if key.ndim == single_ndim + 1 and key.shape[0] == batch:
    return key
  raise ValueError(f"key must be one PRNG key or a batch of {batch} keys, got shape {key.shape}")


def sample_normal(keys: jax.Array, shape, *path) -> jax.Array:
  """[B, *shape] standard normal float32; row i from keys[i] folded with `path` (ints)."""
  def one(k):
    for p in path:
      k = jax.random.fold_in(k, p)
    return jax.random.normal(k, tuple(shape), jnp.float32)
  return jax.vmap(one)(keys)


def evaluate(ctx: Context, x: jax.Array, t) -> jax.Array:
  """x0_hat at one time t (a scalar) for the whole batch, as float32."""
  t_b = jnp.full(x.shape[:1], t, jnp.float32)
  return ctx.denoise_fn(x, t_b).astype(jnp.float32)


def step_noise(ctx: Context, x: jax.Array, index, use: int) -> jax.Array:
  """[B, ...] standard normal noise of step `index` (a tuple of ints/tracers), use `use`."""
  return sample_normal(ctx.keys, x.shape[1:], STEP_NOISE, *index, use)


def log_r(a_t, s_t, a_s, s_s):
  """log((alpha_t sigma_s / (alpha_s sigma_t))^2) = log_snr_t - log_snr_s; -inf at sigma_s = 0."""
  return 2.0 * (jnp.log(a_t) + jnp.log(s_s) - jnp.log(a_s) - jnp.log(s_t))


def ddpm_coefficients(a_t, s_t, a_s, s_s):
  """(coef_x_t, coef_x0, std) of the posterior q(x_s | x_t, x0) for s < t, any schedule."""
  one_minus_r = -jnp.expm1(log_r(a_t, s_t, a_s, s_s))
  return (a_t / a_s) * jnp.square(s_s / s_t), a_s * one_minus_r, s_s * jnp.sqrt(one_minus_r)
