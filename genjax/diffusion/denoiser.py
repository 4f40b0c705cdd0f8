"""The denoiser: any objective's network as a map (x_t, t) -> x0_hat.

The raw network is a plain function `net(x_in [B, H, W, C], c_noise [B]) -> [B, H, W, C]`
(bind parameters, labels and conditioning with a closure); the schedule gives alpha,
sigma and c_noise, the objective the input scaling and the output conversion. Samplers
only ever see `denoise_fn(x_t, t) -> x0_hat`, so every sampler works with every objective.
"""

from typing import Callable

import jax
import jax.numpy as jnp

Net = Callable[[jax.Array, jax.Array], jax.Array]
DenoiseFn = Callable[[jax.Array, jax.Array], jax.Array]


def denoise(net: Net, x_t: jax.Array, t: jax.Array, spec) -> tuple[jax.Array, jax.Array]:
  """(x0_hat, eps_hat), both [B, ...] float32, for x_t: [B, ...] at times t: [B].

  eps_hat is undefined where sigma = 0 (it is finite but meaningless there).
  """
  x_t = jnp.asarray(x_t, jnp.float32)
  t = jnp.broadcast_to(jnp.asarray(t, jnp.float32), x_t.shape[:1])
  alpha, sigma = spec.schedule.alpha_sigma(t)
  out = net(spec.objective.net_input(x_t, alpha, sigma), spec.schedule.c_noise(t))
  if out.shape != x_t.shape:
    raise ValueError(f"network output shape {out.shape} != x_t shape {x_t.shape}")
  return spec.objective.predictions(out.astype(jnp.float32), x_t, alpha, sigma)


def make_denoiser(net: Net, spec, *, clip_x0: float | None = None) -> DenoiseFn:
  """`denoise_fn(x_t [B, ...], t [B]) -> x0_hat [B, ...]` for the samplers.

  clip_x0: clip x0_hat to [-clip_x0, clip_x0] (DDPM's "clip_denoised"; useful for eps
  prediction near t = 1, where x0_hat = (x_t - sigma eps_hat) / alpha amplifies errors).
  """
  def denoise_fn(x_t, t):
    x0_hat, _ = denoise(net, x_t, t, spec)
    if clip_x0 is not None:
      x0_hat = jnp.clip(x0_hat, -clip_x0, clip_x0)
    return x0_hat

  return denoise_fn
