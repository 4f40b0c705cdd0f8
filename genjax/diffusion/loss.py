"""The diffusion training loss: per-example, in the objective's space, with weighting."""

import jax
import jax.numpy as jnp

from genjax.diffusion.denoiser import Net
from genjax.diffusion.objectives import expand


def _pixel_weights(pixel_weight, shape) -> jax.Array:
  """pixel_weight [H] (per row) or [B|1, H, W, 1|C] -> broadcastable to `shape` [B, H, W, C]."""
  w = jnp.asarray(pixel_weight, jnp.float32)
  if w.ndim == 1 and len(shape) == 4 and w.shape[0] == shape[1]:
    return w[None, :, None, None]
  ok = (w.ndim == len(shape) == 4 and w.shape[1:3] == tuple(shape[1:3])
        and w.shape[0] in (1, shape[0]) and w.shape[3] in (1, shape[3]))
  if not ok:
    raise ValueError(f"pixel_weight shape {w.shape} does not fit images of shape {tuple(shape)}: "
                     "use [H] (one weight per row) or [B or 1, H, W, 1 or C]")
  return w


def sample_t_and_noise(key: jax.Array, shape, schedule, weighting=None
                       ) -> tuple[jax.Array, jax.Array]:
  """The training loss's random draws: t [B] and eps ~ N(0, I) [shape].

  t from weighting.sample_train_t(key, B, schedule) (e.g. "logit_normal"), or from
  schedule.sample_train_t when weighting is None.
  """
  k_t, k_eps = jax.random.split(key)
  t = (schedule.sample_train_t(k_t, shape[0]) if weighting is None
       else weighting.sample_train_t(k_t, shape[0], schedule))
  return t, jax.random.normal(k_eps, shape, jnp.float32)


def per_example_loss(net: Net, x0: jax.Array, t: jax.Array, eps: jax.Array, spec, *,
                     pixel_weight: jax.Array | None = None) -> jax.Array:
  """Weighted objective MSE at given times and noise: [B] float32.

  Args:
    net: net(x_in [B, H, W, C], c_noise [B]) -> [B, H, W, C].
    x0: [B, H, W, C] clean images (float32, e.g. in [-1, 1]).
    t: [B] times of spec.schedule; eps: [B, H, W, C] standard normal noise.
    pixel_weight: None, [H] or [B or 1, H, W, 1 or C] non-negative weights (e.g.
      cos(latitude) per row of an equirectangular panorama). Each example's squared
      error is averaged with these weights, sum(w e^2) / sum(w), so constant weights
      give the plain mean.
  """
  x0 = jnp.asarray(x0, jnp.float32)
  schedule, objective = spec.schedule, spec.objective
  alpha, sigma = schedule.alpha_sigma(t)
  x_t = expand(alpha, x0) * x0 + expand(sigma, x0) * eps
  out = net(objective.net_input(x_t, alpha, sigma), schedule.c_noise(t))
  if out.shape != x0.shape:
    raise ValueError(f"network output shape {out.shape} != image shape {x0.shape}")
  err = jnp.square(out.astype(jnp.float32) - objective.target(x0, eps, alpha, sigma))
  axes = tuple(range(1, x0.ndim))
  if pixel_weight is None:
    mse = jnp.mean(err, axis=axes)
  else:
    w = jnp.broadcast_to(_pixel_weights(pixel_weight, x0.shape), x0.shape)
    # An all-zero weight map gives loss 0 instead of 0/0.
    mse = jnp.sum(w * err, axis=axes) / jnp.maximum(jnp.sum(w, axis=axes), 1e-30)
  log_snr = schedule.log_snr(t)
  return spec.weighting(log_snr, objective.log_x0_weight(log_snr)) * mse


def training_loss(net: Net, x0: jax.Array, key: jax.Array, spec, *,
                  pixel_weight: jax.Array | None = None) -> jax.Array:
  """Per-example diffusion loss [B] float32 at random t ~ spec.schedule and eps ~ N(0, I).

  x0: [B, H, W, C] clean images; see per_example_loss for net and pixel_weight.
  The draws are `sample_t_and_noise(key, x0.shape, spec.schedule, spec.weighting)`.
  """
  t, eps = sample_t_and_noise(key, x0.shape, spec.schedule, spec.weighting)
  return per_example_loss(net, x0, t, eps, spec, pixel_weight=pixel_weight)
