"""Classifier-free guidance as a denoiser wrapper (Ho & Salimans 2022, "Classifier-Free
Diffusion Guidance"), with an optional guidance interval (Kynkaanniemi et al. 2024,
"Applying Guidance in a Limited Interval Improves Sample and Distribution Quality").

Guidance on x0_hat equals guidance on eps_hat or on the score: at a fixed (x_t, t) they
are affine in each other, so the combination commutes with the conversion.
"""

from typing import Sequence

import jax.numpy as jnp

from genjax.diffusion.denoiser import DenoiseFn
from genjax.diffusion.objectives import expand


def guided(denoise_cond: DenoiseFn, denoise_uncond: DenoiseFn, scale,
           *, interval: Sequence[float] | None = None) -> DenoiseFn:
  """denoise_fn(x_t, t) = D_c + (scale - 1)(D_c - D_u), where t is in `interval`, else D_c.

  Args:
    denoise_cond, denoise_uncond: (x_t [B, ...], t [B]) -> x0_hat [B, ...], e.g. the
      same network with the label and with the null label.
    scale: the guidance weight w (D_u + w (D_c - D_u)); 1 gives D_c exactly, and when
      it is the Python number 1 the unconditional denoiser is not evaluated at all.
    interval: (t_lo, t_hi): guide only where t_lo < t <= t_hi, in the schedule's time
      (sigma for "edm"; e.g. (0.28, 5.42) in the paper). None: everywhere.
  """
  if interval is not None:
    lo, hi = (float(v) for v in interval)
    if not lo < hi:
      raise ValueError(f"guidance interval must be (t_lo, t_hi) with t_lo < t_hi, got {interval}")
  if isinstance(scale, (int, float)) and scale == 1:
    return denoise_cond

  def denoise_fn(x_t, t):
    d_c = denoise_cond(x_t, t).astype(jnp.float32)
    d_u = denoise_uncond(x_t, t).astype(jnp.float32)
    out = d_c + (jnp.asarray(scale, jnp.float32) - 1.0) * (d_c - d_u)
    if interval is None:
      return out
    inside = (t > lo) & (t <= hi)
    return jnp.where(expand(inside, x_t) > 0, out, d_c)

  return denoise_fn
