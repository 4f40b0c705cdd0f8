"""Samplers by name: DDPM, DDIM, Euler, Heun (EDM), DPM-Solver++ (2M, 3M, 2M SDE), UniPC.

Every sampler is one pure function

  x0 = sampler(denoise_fn, key, x_T, spec, *, steps, **opts)   # [B, ...] float32

that runs all steps inside one `lax.scan` over the grid `spec.schedule.sampling_grid
(steps, grid)` (t from t_start down to 0); jit it at the outermost level with `x_T` (a
shape) and `steps` bound, e.g. `jax.jit(functools.partial(ddim, denoise_fn, x_T=shape,
spec=spec, steps=50))(key)`. `denoise_fn(x_t [B, ...], t [B]) -> x0_hat [B, ...]`
(see `make_denoiser`) hides the objective, so every sampler runs every objective.

Grids (option `grid`, see schedules.GRIDS): euler and heun walk the "karras" grid
(rho = 7 in sigma / alpha from 80, as in EDM) on every schedule by default; the others
the schedule's own grid (None: "uniform" in t for VP, "karras" for "edm").
Every sampler takes either. On the karras grid a deterministic sampler gives the same
samples on every schedule, since the ODE in x / alpha is the same.

x_T is the shape (B, ...) or unit-variance noise z [B, ...]; the start is sigma(t_start) z,
t_start = grid[0]. For VP on the karras grid alpha(t_start) ~ 0.0125; leaving out
alpha x0 there is what EDM does at sigma_max = 80, and through the exact flow it
shrinks the output's mean by a fraction ~ std / 80 and its variance by (std / 80)^2
(std: the data's; tested with Gaussian data).
`key` is one key (sample i then uses `fold_in(key, i)`) or a [B] array of per-sample
keys. All noise of sample i comes from its own key through vmap, so a sample does not
change with the batch size or the other samples in the batch.

Denoiser evaluations (NFE): `steps` for all but heun: 2 steps - 1.

The update rules, written in x-space with (alpha, sigma) of any schedule:
  eps_hat = (x_t - alpha_t x0_hat) / sigma_t, r = (alpha_t sigma_s / (alpha_s sigma_t))^2
  ddpm:  x_s = (alpha_t / alpha_s)(sigma_s / sigma_t)^2 x_t + alpha_s (1 - r) x0_hat
               + sigma_s sqrt(1 - r) n                      (the posterior q(x_s | x_t, x0_hat))
  ddim:  x_s = alpha_s x0_hat + sqrt(sigma_s^2 - c^2) eps_hat + c n, c = eta sigma_s sqrt(1 - r)
  euler: Karras et al. Algorithm 2 without the correction, in the VE frame x / alpha,
         sigma / alpha (so without churn it equals ddim with eta = 0); heun adds the
         trapezoidal correction except on the last step to sigma = 0.
  dpmpp_2m: Lu et al. 2022, Algorithm 2 (data prediction, multistep, first order on the
         first step and on the last step to sigma = 0).
  dpmpp_3m, dpmpp_2m_sde, unipc: exponential integrators on x0_hat in lambda = log(alpha /
         sigma) (genjax.diffusion.multistep), the order rising as the history fills, first
         order (x_s = alpha_s x0_hat) on the last step to sigma = 0.
"""

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from genjax.diffusion import multistep, registry
from genjax.diffusion.denoiser import DenoiseFn
# Re-exported: the editing loops, distillation and the apps build on them as samplers.*.
from genjax.diffusion.sampling_context import (  # noqa: F401
    INIT_NOISE, NOISE_TRANSITION, STEP_NOISE, Context, ddpm_coefficients, evaluate, log_r,
    per_sample_keys, sample_normal, step_noise)


# ---- step rules: (ctx, x, carry, t, t_next, index, **opts) -> (x_next, carry) ----
# `index` is a tuple of ints/tracers naming the step (and resampling pass) for noise.

def _no_carry(x):
  return ()


def _ddpm_step(ctx, x, carry, t, t_next, index):
  a_t, s_t = ctx.schedule.alpha_sigma(t)
  a_s, s_s = ctx.schedule.alpha_sigma(t_next)
  x0_hat = evaluate(ctx, x, t)
  c_x, c_0, std = ddpm_coefficients(a_t, s_t, a_s, s_s)
  return c_x * x + c_0 * x0_hat + std * step_noise(ctx, x, index, NOISE_TRANSITION), carry


def _ddim_step(ctx, x, carry, t, t_next, index, *, eta=0.0):
  a_t, s_t = ctx.schedule.alpha_sigma(t)
  a_s, s_s = ctx.schedule.alpha_sigma(t_next)
  x0_hat = evaluate(ctx, x, t)
  eps_hat = (x - a_t * x0_hat) / s_t
  x_next = a_s * x0_hat
  if eta == 0.0:  # static: no noise draw at all
    return x_next + s_s * eps_hat, carry
  one_minus_r = -jnp.expm1(log_r(a_t, s_t, a_s, s_s))
  # c^2 = eta^2 sigma_s^2 (1 - r); sqrt(sigma_s^2 - c^2) = sigma_s sqrt(1 - eta^2 (1 - r)).
  keep = s_s * jnp.sqrt(jnp.maximum(1.0 - eta * eta * one_minus_r, 0.0))
  c = eta * s_s * jnp.sqrt(one_minus_r)
  return x_next + keep * eps_hat + c * step_noise(ctx, x, index, NOISE_TRANSITION), carry


def _karras_step(ctx, x, carry, t, t_next, index, *, second_order, s_churn=0.0, s_tmin=0.0,
                 s_tmax=math.inf, s_noise=1.0):
  """Karras et al. 2022, Algorithm 2, in x-space. In the VE frame (x / alpha, sigma /
  alpha) the Euler direction is eps_hat, so the Euler step is alpha_n x0_hat + sigma_n
  eps_hat and Heun averages eps_hat at both ends."""
  sched = ctx.schedule
  a_i, s_i = sched.alpha_sigma(t)
  a_n, s_n = sched.alpha_sigma(t_next)
  if s_churn > 0.0:
    ve_i = s_i / a_i
    gamma = jnp.where((ve_i >= s_tmin) & (ve_i <= s_tmax),
                      min(s_churn / ctx.num_steps, math.sqrt(2.0) - 1.0), 0.0)
    ve_hat = ve_i * (1.0 + gamma)
    t_hat = jnp.where(gamma > 0, sched.t_from_log_snr(-2.0 * jnp.log(ve_hat)), t)
    a_h, s_h = sched.alpha_sigma(t_hat)
    # Add noise in the VE frame: x~ += sqrt(ve_hat^2 - ve_i^2) s_noise n.
    extra = jnp.sqrt(jnp.maximum(ve_hat * ve_hat - ve_i * ve_i, 0.0)) * s_noise
    x = (a_h / a_i) * x + a_h * extra * step_noise(ctx, x, index, NOISE_TRANSITION)
    t, a_i, s_i = t_hat, a_h, s_h
  x0_hat = evaluate(ctx, x, t)
  eps_hat = (x - a_i * x0_hat) / s_i
  x_euler = a_n * x0_hat + s_n * eps_hat
  if not second_order:
    return x_euler, carry

  def correct(x_e):
    eps_n = (x_e - a_n * evaluate(ctx, x_e, t_next)) / s_n
    # x~ + (ve_n - ve_i)(eps + eps_n) / 2 in the VE frame, times alpha_n.
    return (a_n * x0_hat + s_n * 0.5 * (eps_hat + eps_n)
            + a_n * (s_i / a_i) * 0.5 * (eps_hat - eps_n))

  return jax.lax.cond(s_n > 0, correct, lambda x_e: x_e, x_euler), carry


class StepRule(NamedTuple):
  step: Callable
  init_carry: Callable
  defaults: dict
  grid: str | None = None  # the default grid name; None: the schedule's own


def _euler_step(ctx, x, carry, t, t_next, index, **opts):
  return _karras_step(ctx, x, carry, t, t_next, index, second_order=False, **opts)


def _heun_step(ctx, x, carry, t, t_next, index, **opts):
  return _karras_step(ctx, x, carry, t, t_next, index, second_order=True, **opts)


_CHURN = dict(s_churn=0.0, s_tmin=0.0, s_tmax=math.inf, s_noise=1.0)
STEP_RULES: dict[str, StepRule] = {
    "ddpm": StepRule(_ddpm_step, _no_carry, {}),
    "ddim": StepRule(_ddim_step, _no_carry, dict(eta=0.0)),
    # Karras et al.'s samplers on their grid on every schedule: on VP's uniform t grid
    # Heun's first step spans sigma / alpha from 2.2e4 ("cosine") to ~6, and its ODE
    # error at 19 evaluations is 18 (relative) there, 0.21 on this grid (exact Gaussian
    # denoiser, tests/diffusion/test_samplers.py).
    "euler": StepRule(_euler_step, _no_carry, _CHURN, "karras"),
    "heun": StepRule(_heun_step, _no_carry, _CHURN, "karras"),
    "dpmpp_2m": StepRule(multistep.dpmpp_2m_step, multistep.dpmpp_2m_init, {}),
    "dpmpp_3m": StepRule(multistep.dpmpp_3m_step, multistep.multistep_init, {}),
    "dpmpp_2m_sde": StepRule(multistep.dpmpp_2m_sde_step, multistep.dpmpp_2m_sde_init, dict(eta=1.0, s_noise=1.0)),
    "unipc": StepRule(multistep.unipc_step, multistep.unipc_init, dict(order=2, variant="bh2", corrector=True)),
}


def check_options(name: str, opts: dict) -> dict:
  """opts with the rule's defaults filled in; unknown options are a TypeError naming them."""
  rule = registry.lookup(STEP_RULES, name, "sampler")
  unknown = sorted(set(opts) - set(rule.defaults))
  if unknown:
    raise TypeError(f"sampler {name!r} takes no option(s) {unknown}; "
                    f"its options: {sorted(rule.defaults) or 'none'}")
  return {**rule.defaults, **opts}


def sampling_grid(name: str, schedule, steps: int, grid: str | None = None) -> jax.Array:
  """The [steps + 1] times sampler `name` walks: `grid` (a schedules.GRIDS name) if given,
  else the sampler's default grid, else the schedule's own (see the module docstring)."""
  rule = registry.lookup(STEP_RULES, name, "sampler")
  return schedule.sampling_grid(steps, grid or rule.grid)


def integrate(name: str, ctx: Context, x: jax.Array, grid: jax.Array, **opts) -> jax.Array:
  """Runs rule `name` from x at grid[0] through grid[1:], in one lax.scan: [B, ...]."""
  rule = STEP_RULES[name]
  opts = check_options(name, opts)

  def body(state, inp):
    x, carry = state
    i, t, t_next = inp
    return rule.step(ctx, x, carry, t, t_next, (i,), **opts), None

  n = grid.shape[0] - 1
  (x, _), _ = jax.lax.scan(body, (x, rule.init_carry(x)), (jnp.arange(n), grid[:-1], grid[1:]))
  return x


def initial_state(key, x_T, schedule, t_start) -> tuple[jax.Array, jax.Array]:
  """(per-sample keys [B], x at t_start = sigma(t_start) z) from a shape or noise z."""
  if isinstance(x_T, (tuple, list)):
    shape = tuple(int(d) for d in x_T)
    keys = per_sample_keys(key, shape[0])
    z = sample_normal(keys, shape[1:], INIT_NOISE)
  else:
    z = jnp.asarray(x_T, jnp.float32)
    keys = per_sample_keys(key, z.shape[0])
  _, sigma = schedule.alpha_sigma(t_start)
  return keys, sigma * z


def _sample(name, denoise_fn, key, x_T, spec, steps, grid, **opts):
  times = sampling_grid(name, spec.schedule, steps, grid)
  keys, x = initial_state(key, x_T, spec.schedule, times[0])
  ctx = Context(denoise_fn, spec.schedule, keys, int(steps))
  return integrate(name, ctx, x, times, **opts)


def ddpm(denoise_fn: DenoiseFn, key: jax.Array, x_T, spec, *, steps: int,
         grid: str | None = None) -> jax.Array:
  """Ancestral sampling (Ho et al. 2020): each step draws from q(x_s | x_t, x0_hat).

  With the "linear" schedule and steps = 1000 this is DDPM's chain exactly. NFE = steps.
  grid: a schedules.GRIDS name; None: the schedule's own.
  """
  return _sample("ddpm", denoise_fn, key, x_T, spec, steps, grid)


def ddim(denoise_fn: DenoiseFn, key: jax.Array, x_T, spec, *, steps: int,
         eta: float = 0.0, grid: str | None = None) -> jax.Array:
  """DDIM (Song et al. 2021, "Denoising Diffusion Implicit Models", eq. 12).

  eta = 0: deterministic (the probability-flow ODE's Euler step in x / alpha);
  eta = 1: the same distribution per step as ddpm. NFE = steps.
  grid: a schedules.GRIDS name; None: the schedule's own.
  """
  return _sample("ddim", denoise_fn, key, x_T, spec, steps, grid, eta=float(eta))


def euler(denoise_fn: DenoiseFn, key: jax.Array, x_T, spec, *, steps: int,
          s_churn: float = 0.0, s_tmin: float = 0.0, s_tmax: float = math.inf,
          s_noise: float = 1.0, grid: str | None = None) -> jax.Array:
  """Euler steps of Karras et al. 2022, Algorithm 2 (no second-order correction). NFE = steps.

  Stochastic churn: where s_tmin <= sigma/alpha <= s_tmax (VE sigma; = t for "edm"),
  the noise level is first raised by gamma = min(s_churn / steps, sqrt(2) - 1) with
  fresh noise scaled by s_noise. s_churn = 0: deterministic.
  grid: a schedules.GRIDS name; None: "karras" (rho = 7 in sigma / alpha) on every
  schedule. On the same grid and without churn this is ddim with eta = 0.
  """
  return _sample("euler", denoise_fn, key, x_T, spec, steps, grid, s_churn=float(s_churn),
                 s_tmin=float(s_tmin), s_tmax=float(s_tmax), s_noise=float(s_noise))


def heun(denoise_fn: DenoiseFn, key: jax.Array, x_T, spec, *, steps: int,
         s_churn: float = 0.0, s_tmin: float = 0.0, s_tmax: float = math.inf,
         s_noise: float = 1.0, grid: str | None = None) -> jax.Array:
  """Heun's 2nd-order method, Karras et al. 2022, Algorithm 2 (options as in `euler`).

  NFE = 2 steps - 1 (the last step, to sigma = 0, is an Euler step). grid: None is the
  rho-spaced "karras" grid it was made for, on every schedule. Avoid VP's "uniform"
  grid: its first step spans sigma / alpha from 2.2e4 ("cosine" at t = 1; 156 for
  "linear") down to ~6, where the trapezoid is poor.
  """
  return _sample("heun", denoise_fn, key, x_T, spec, steps, grid, s_churn=float(s_churn),
                 s_tmin=float(s_tmin), s_tmax=float(s_tmax), s_noise=float(s_noise))


def dpmpp_2m(denoise_fn: DenoiseFn, key: jax.Array, x_T, spec, *, steps: int,
             grid: str | None = None) -> jax.Array:
  """DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of
  Diffusion Probabilistic Models", Algorithm 2): second-order multistep in log-SNR
  time on x0_hat; deterministic. NFE = steps. grid: a schedules.GRIDS name; None: the
  schedule's own."""
  return _sample("dpmpp_2m", denoise_fn, key, x_T, spec, steps, grid)


def dpmpp_3m(denoise_fn: DenoiseFn, key: jax.Array, x_T, spec, *, steps: int,
             grid: str | None = None) -> jax.Array:
  """DPM-Solver++(3M) (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of
  Diffusion Probabilistic Models", the third-order multistep solver of their Appendix B):
  x0_hat extrapolated from the last three evaluations in log-SNR time; deterministic.
  NFE = steps. grid: a schedules.GRIDS name; None: the schedule's own."""
  return _sample("dpmpp_3m", denoise_fn, key, x_T, spec, steps, grid)


def dpmpp_2m_sde(denoise_fn: DenoiseFn, key: jax.Array, x_T, spec, *, steps: int,
                 eta: float = 1.0, s_noise: float = 1.0, grid: str | None = None) -> jax.Array:
  """DPM-Solver++(2M) SDE (Lu et al. 2022, sec. 5 / Appendix; the midpoint form of
  k-diffusion's sample_dpmpp_2m_sde): the reverse SDE integrated exactly in its linear
  part, second order in x0_hat. eta = 1: the SDE; eta = 0: dpmpp_2m. NFE = steps.
  grid: a schedules.GRIDS name; None: the schedule's own."""
  return _sample("dpmpp_2m_sde", denoise_fn, key, x_T, spec, steps, grid, eta=float(eta),
                 s_noise=float(s_noise))


def unipc(denoise_fn: DenoiseFn, key: jax.Array, x_T, spec, *, steps: int, order: int = 2,
          variant: str = "bh2", corrector: bool = True, grid: str | None = None) -> jax.Array:
  """UniPC (Zhao et al. 2023, "UniPC: A Unified Predictor-Corrector Framework for Fast
  Sampling of Diffusion Models"): the multistep predictor UniP-`order` with the corrector
  UniC, which raises the order by one at no extra evaluation. order: 1, 2 or 3;
  variant: "bh2" (B(h) = e^h - 1, their choice for few steps and guidance) or "bh1"
  (B(h) = h); corrector=False gives UniP alone. Deterministic. NFE = steps.
  grid: a schedules.GRIDS name; None: the schedule's own."""
  if isinstance(order, bool) or order not in (1, 2, 3):
    raise ValueError(f"unipc: order must be 1, 2 or 3, got {order!r}")
  if variant not in ("bh1", "bh2"):
    raise ValueError(f"unipc: variant must be 'bh1' or 'bh2', got {variant!r}")
  return _sample("unipc", denoise_fn, key, x_T, spec, steps, grid, order=int(order),
                 variant=variant, corrector=bool(corrector))


SAMPLERS: dict[str, Callable[..., jax.Array]] = {
    "ddpm": ddpm,
    "ddim": ddim,
    "euler": euler,
    "heun": heun,
    "dpmpp_2m": dpmpp_2m,
    "dpmpp_3m": dpmpp_3m,
    "dpmpp_2m_sde": dpmpp_2m_sde,
    "unipc": unipc,
}


def get_sampler(name: str) -> Callable[..., jax.Array]:
  """SAMPLERS[name]; an unknown name raises UnknownNameError listing the names."""
  return registry.lookup(SAMPLERS, name, "sampler")


def num_evaluations(name: str, steps: int) -> int:
  """Denoiser evaluations of sampler `name` with `steps` steps."""
  registry.lookup(SAMPLERS, name, "sampler")
  return 2 * steps - 1 if name == "heun" else steps
