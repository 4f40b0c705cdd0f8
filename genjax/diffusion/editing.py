"""Image editing with any sampler: image-to-image (SDEdit) and inpainting (RePaint).

Both reuse the samplers' step rules inside one `lax.scan` and work with any image
shape [B, H, W, C] (square or not).
"""

import jax
import jax.numpy as jnp

from genjax.diffusion import samplers
from genjax.diffusion.denoiser import DenoiseFn

# Noise uses within one step, beside samplers.NOISE_TRANSITION.
_NOISE_KNOWN, _NOISE_JUMP = 1, 2
# Repeating a multistep solver's step after re-noising extrapolates from a stale
# history and diverges (measured: variance x40 at 25 steps, resample 10).
MULTISTEP = frozenset({"dpmpp_2m", "dpmpp_3m", "dpmpp_2m_sde", "unipc"})


def img2img(denoise_fn: DenoiseFn, key: jax.Array, init: jax.Array, spec, *, steps: int,
            strength: float, sampler: str = "ddim", grid: str | None = None,
            **opts) -> jax.Array:
  """SDEdit (Meng et al. 2022): noise `init` part of the way, then denoise it.

  The last n = round(strength * steps) steps of the sampler's `steps`-step grid are
  run (at least 1 when strength > 0), starting from x = alpha init + sigma z at
  t = grid[steps - n]. strength = 1 starts at the grid's first time (for VP: alpha(1)
  init + noise on the "uniform" grid, alpha ~ 0.0125 on "karras"; essentially pure
  noise), strength = 0 returns init unchanged.

  Args:
    init: [B, H, W, C] float32 images in the data range.
    key: one key or [B] per-sample keys (see samplers).
    sampler, opts: a SAMPLERS name and its options (eta, s_churn, ...).
    grid: a schedules.GRIDS name; None: the sampler's default (see samplers).
  Returns: [B, H, W, C] float32.
  """
  strength = float(strength)
  if not 0.0 <= strength <= 1.0:
    raise ValueError(f"img2img strength must be in [0, 1], got {strength}")
  init = jnp.asarray(init, jnp.float32)
  samplers.check_options(sampler, opts)
  grid = samplers.sampling_grid(sampler, spec.schedule, steps, grid)
  n = max(1, round(strength * steps)) if strength > 0 else 0
  if n == 0:
    return init
  grid = grid[steps - n:]
  keys = samplers.per_sample_keys(key, init.shape[0])
  z = samplers.sample_normal(keys, init.shape[1:], samplers.INIT_NOISE)
  alpha, sigma = spec.schedule.alpha_sigma(grid[0])
  ctx = samplers.Context(denoise_fn, spec.schedule, keys, int(steps))
  return samplers.integrate(sampler, ctx, alpha * init + sigma * z, grid, **opts)


def _mask(mask, shape) -> jax.Array:
  """[H, W] or [B or 1, H, W, 1 or C] -> float32 of rank 4 broadcastable to shape."""
  m = jnp.asarray(mask, jnp.float32)
  if m.ndim == 2:
    m = m[None, :, :, None]
  ok = (m.ndim == 4 and m.shape[1:3] == tuple(shape[1:3]) and m.shape[0] in (1, shape[0])
        and m.shape[3] in (1, shape[3]))
  if not ok:
    raise ValueError(f"inpainting mask shape {tuple(jnp.shape(mask))} does not fit images of "
                     f"shape {tuple(shape)}: use [H, W] or [B or 1, H, W, 1 or C]")
  return m


def inpaint(denoise_fn: DenoiseFn, key: jax.Array, known: jax.Array, mask: jax.Array, spec, *,
            steps: int, resample: int = 1, sampler: str = "ddpm", grid: str | None = None,
            **opts) -> jax.Array:
  """Inpainting with RePaint-style resampling (Lugmayr et al. 2022, "RePaint").

  Sampling starts from pure noise. After every step t -> s the known region is
  replaced by the known image noised to s (fresh noise: alpha_s known + sigma_s n), so
  the last step (s = 0) leaves the known pixels exactly equal to `known`. With
  resample = r > 1 each step is done r times: between passes x_s is re-noised to t
  with the forward process q(x_t | x_s) (RePaint's jump length 1, r resamplings), which
  lets the generated region harmonize with the known one. NFE = r * NFE(sampler).

  Args:
    known: [B, H, W, C] float32 images; only pixels where mask > 0 are used.
    mask: [H, W] or [B or 1, H, W, 1 or C], 1 = keep the known pixel, 0 = generate;
      values in between blend.
    key: one key or [B] per-sample keys (see samplers).
    sampler, opts: a SAMPLERS name and its options; with resample > 1 a one-step
      sampler (ddpm, ddim, euler, heun).
    grid: a schedules.GRIDS name; None: the sampler's default (see samplers).
  Returns: [B, H, W, C] float32.
  """
  known = jnp.asarray(known, jnp.float32)
  if known.ndim != 4:
    raise ValueError(f"inpaint: known must be [B, H, W, C], got shape {known.shape}")
  m = _mask(mask, known.shape)
  if isinstance(resample, bool) or not isinstance(resample, int) or resample < 1:
    raise ValueError(f"inpaint: resample must be an integer >= 1, got {resample!r}")
  opts = samplers.check_options(sampler, opts)
  if resample > 1 and sampler in MULTISTEP:
    raise ValueError(f"inpaint: sampler {sampler!r} is multistep, its history is invalid after "
                     f"re-noising; with resample > 1 use one of "
                     f"{sorted(set(samplers.STEP_RULES) - MULTISTEP)}")
  rule = samplers.STEP_RULES[sampler]
  schedule = spec.schedule
  grid = samplers.sampling_grid(sampler, schedule, steps, grid)
  keys, x = samplers.initial_state(key, known.shape, schedule, grid[0])
  ctx = samplers.Context(denoise_fn, schedule, keys, int(steps))
  shape = known.shape[1:]

  def paste(x_s, t_s, index):
    a_s, s_s = schedule.alpha_sigma(t_s)
    noise = samplers.sample_normal(keys, shape, samplers.STEP_NOISE, *index, _NOISE_KNOWN)
    return m * (a_s * known + s_s * noise) + (1.0 - m) * x_s

  def body(state, inp):
    x, carry = state
    i, t, t_next = inp
    x_s, carry_s = rule.step(ctx, x, carry, t, t_next, (i, 0), **opts)
    x_s = paste(x_s, t_next, (i, 0))

    def again(j, state):
      x_s, _ = state
      a_t, s_t = schedule.alpha_sigma(t)
      a_s, s_s = schedule.alpha_sigma(t_next)
      # q(x_t | x_s): mean (alpha_t / alpha_s) x_s, variance sigma_t^2 (1 - r).
      std = s_t * jnp.sqrt(-jnp.expm1(samplers.log_r(a_t, s_t, a_s, s_s)))
      noise = samplers.sample_normal(keys, shape, samplers.STEP_NOISE, i, j, _NOISE_JUMP)
      x_t = (a_t / a_s) * x_s + std * noise
      # Redo step i from the carry it started with (multistep history).
      x_s, carry_s = rule.step(ctx, x_t, carry, t, t_next, (i, j), **opts)
      return paste(x_s, t_next, (i, j)), carry_s

    if resample > 1:
      x_s, carry_s = jax.lax.fori_loop(1, resample, again, (x_s, carry_s))
    return (x_s, carry_s), None

  n = grid.shape[0] - 1
  (x, _), _ = jax.lax.scan(body, (x, rule.init_carry(x)), (jnp.arange(n), grid[:-1], grid[1:]))
  return x
