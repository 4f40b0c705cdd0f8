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
         sigma) (see their functions), the order rising as the history fills, first order
         (x_s = alpha_s x0_hat) on the last step to sigma = 0.
"""

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from genjax.diffusion import registry
from genjax.diffusion.denoiser import DenoiseFn
from genjax.diffusion.phi import phi_functions

# Stream tags for fold_in: the initial noise and the per-step noise of a sample's key.
INIT_NOISE, STEP_NOISE = 0, 1
# Per-step noise uses within one step (see editing.py for the others).
_NOISE_TRANSITION = 0


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


def _step_noise(ctx, x, index, use):
  return sample_normal(ctx.keys, x.shape[1:], STEP_NOISE, *index, use)


def log_r(a_t, s_t, a_s, s_s):
  """log((alpha_t sigma_s / (alpha_s sigma_t))^2) = log_snr_t - log_snr_s; -inf at sigma_s = 0."""
  return 2.0 * (jnp.log(a_t) + jnp.log(s_s) - jnp.log(a_s) - jnp.log(s_t))


def ddpm_coefficients(a_t, s_t, a_s, s_s):
  """(coef_x_t, coef_x0, std) of the posterior q(x_s | x_t, x0) for s < t, any schedule."""
  one_minus_r = -jnp.expm1(log_r(a_t, s_t, a_s, s_s))
  return (a_t / a_s) * jnp.square(s_s / s_t), a_s * one_minus_r, s_s * jnp.sqrt(one_minus_r)


# ---- step rules: (ctx, x, carry, t, t_next, index, **opts) -> (x_next, carry) ----
# `index` is a tuple of ints/tracers naming the step (and resampling pass) for noise.

def _no_carry(x):
  return ()


def _ddpm_step(ctx, x, carry, t, t_next, index):
  a_t, s_t = ctx.schedule.alpha_sigma(t)
  a_s, s_s = ctx.schedule.alpha_sigma(t_next)
  x0_hat = evaluate(ctx, x, t)
  c_x, c_0, std = ddpm_coefficients(a_t, s_t, a_s, s_s)
  return c_x * x + c_0 * x0_hat + std * _step_noise(ctx, x, index, _NOISE_TRANSITION), carry


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
  return x_next + keep * eps_hat + c * _step_noise(ctx, x, index, _NOISE_TRANSITION), carry


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
    x = (a_h / a_i) * x + a_h * extra * _step_noise(ctx, x, index, _NOISE_TRANSITION)
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


def _dpmpp_2m_init(x):
  # (x0_hat of the previous step, its h, whether there is one)
  return jnp.zeros_like(x), jnp.ones((), jnp.float32), jnp.zeros((), bool)


def _dpmpp_2m_step(ctx, x, carry, t, t_next, index):
  x0_prev, h_prev, has_prev = carry
  a_t, s_t = ctx.schedule.alpha_sigma(t)
  a_s, s_s = ctx.schedule.alpha_sigma(t_next)
  x0_hat = evaluate(ctx, x, t)
  final = s_s <= 0
  # h = lambda_s - lambda_t with lambda = log(alpha / sigma); +inf on the final step.
  h = jnp.where(final, 1.0, jnp.log(a_s) - jnp.log(s_s) - jnp.log(a_t) + jnp.log(s_t))
  # D = (1 + 1/(2r)) x0_i - 1/(2r) x0_{i-1}, r = h_prev / h.
  d = jnp.where(has_prev & ~final, x0_hat + (0.5 * h / h_prev) * (x0_hat - x0_prev), x0_hat)
  # -alpha_s (e^-h - 1) with e^-h = alpha_t sigma_s / (sigma_t alpha_s): 1 at sigma_s = 0.
  coef_d = a_s - a_t * s_s / s_t
  x_next = (s_s / s_t) * x + coef_d * d
  return x_next, (x0_hat, h, jnp.ones((), bool))


# ---- multistep exponential integrators in lambda = log(alpha / sigma) ----------------------
# All are written on x0_hat ("data prediction") in x-space: with h = lambda_s - lambda_t,
#   x_s = (sigma_s / sigma_t) x_t + alpha_s h phi_1(-h) x0_hat + (higher-order terms),
# which is exact for a constant x0_hat. On the final step (sigma_s = 0, h = inf) every one
# of them returns alpha_s x0_hat, first order, as dpmpp_2m does.

def _lambda(a, s):
  return jnp.log(a) - jnp.log(s)


def _step_h(a_t, s_t, a_s, s_s):
  """(h, final): h = lambda_s - lambda_t, replaced by 1 on the final step to sigma_s = 0."""
  final = s_s <= 0
  return jnp.where(final, 1.0, _lambda(a_s, s_s) - _lambda(a_t, s_t)), final


def _multistep_init(x, depth=2):
  # (x0_hat at the last `depth` times, newest first; their lambdas; how many are valid)
  return (tuple(jnp.zeros_like(x) for _ in range(depth)), jnp.zeros((depth,), jnp.float32),
          jnp.zeros((), jnp.int32))


def _push(carry, x0_hat, lam):
  hist, lams, count = carry
  return ((x0_hat,) + hist[:-1], jnp.concatenate([lam[None], lams[:-1]]),
          jnp.minimum(count + 1, len(hist)))


def _dpmpp_3m_step(ctx, x, carry, t, t_next, index):
  """Lu et al. 2022 (DPM-Solver++), the third-order multistep update (their Appendix B;
  as in k-diffusion's sample_dpmpp_3m_sde with eta = 0): first order on the first step,
  second order on the second, third order after."""
  (m1, m2), (lam1, lam2), count = carry
  a_t, s_t = ctx.schedule.alpha_sigma(t)
  a_s, s_s = ctx.schedule.alpha_sigma(t_next)
  m0 = evaluate(ctx, x, t)
  lam0 = _lambda(a_t, s_t)
  h, final = _step_h(a_t, s_t, a_s, s_s)
  p1, p2, p3 = phi_functions(-h, 3)
  # r0 = h_0 / h, r1 = h_1 / h with the previous two step sizes; 1 where missing (unused).
  r0 = jnp.where(count >= 1, (lam0 - lam1) / h, 1.0)
  r1 = jnp.where(count >= 2, (lam1 - lam2) / h, 1.0)
  d1_0 = (m0 - m1) / r0
  d1_1 = (m1 - m2) / r1
  d1_3 = d1_0 + (r0 / (r0 + r1)) * (d1_0 - d1_1)
  d2 = (d1_0 - d1_1) / (r0 + r1)
  c1 = jnp.where(count >= 1, a_s * h * p2, 0.0)
  # The reference coefficient (Lu et al.'s code, k-diffusion, diffusers): alpha h phi_3 on
  # D2 ~ h^2 x0'' / 2, half the Taylor term alpha h^3 phi_3 x0''. So asymptotically this is
  # a second-order method with a small constant (measured: error ratio ~4 per halving
  # beyond 40 steps); the exact third-order multistep is unipc(order=3, corrector=False).
  # We keep the published method, which is the better one at 5-20 steps here.
  c2 = jnp.where(count >= 2, a_s * h * p3, 0.0)
  d1 = jnp.where(count >= 2, d1_3, d1_0)
  x_next = (s_s / s_t) * x + a_s * h * p1 * m0 + c1 * d1 + c2 * d2
  x_next = jnp.where(final, a_s * m0, x_next)
  return x_next, _push(carry, m0, lam0)


def _dpmpp_2m_sde_init(x):
  return jnp.zeros_like(x), jnp.ones((), jnp.float32), jnp.zeros((), bool)


def _dpmpp_2m_sde_step(ctx, x, carry, t, t_next, index, *, eta=1.0, s_noise=1.0):
  """Lu et al. 2022 (DPM-Solver++), the second-order multistep SDE solver ("2M SDE",
  midpoint form, as in k-diffusion's sample_dpmpp_2m_sde). Per step, with
  g = 1 - e^(-(1 + eta) h):
    x_s = (sigma_s / sigma_t) e^(-eta h) x_t + alpha_s g (x0 + (h / (2 h_prev)) (x0 - x0_prev))
          + sigma_s sqrt(1 - e^(-2 eta h)) s_noise n.
  eta = 1 is the reverse SDE, eta = 0 the deterministic dpmpp_2m."""
  x0_prev, h_prev, has_prev = carry
  a_t, s_t = ctx.schedule.alpha_sigma(t)
  a_s, s_s = ctx.schedule.alpha_sigma(t_next)
  x0_hat = evaluate(ctx, x, t)
  h, final = _step_h(a_t, s_t, a_s, s_s)
  g = -jnp.expm1(-(1.0 + eta) * h)
  d = jnp.where(has_prev, x0_hat + (0.5 * h / h_prev) * (x0_hat - x0_prev), x0_hat)
  x_next = (s_s / s_t) * jnp.exp(-eta * h) * x + a_s * g * d
  if eta > 0.0 and s_noise > 0.0:  # static: no noise draw at all otherwise
    std = s_s * jnp.sqrt(-jnp.expm1(-2.0 * eta * h)) * s_noise
    x_next = x_next + std * _step_noise(ctx, x, index, _NOISE_TRANSITION)
  x_next = jnp.where(final, a_s * x0_hat, x_next)
  return x_next, (x0_hat, h, jnp.ones((), bool))


def _unipc_b(h, order, variant):
  """UniPC's b_k = k! phi_{k+1}(-h) / B'(h), k = 1..order, with B(h) = -h B'(h): B' =
  phi_1(-h) for bh2 (B = e^-h - 1), 1 for bh1 (B = -h): [b_1, ..., b_order]."""
  phis = phi_functions(-h, order + 1)
  scale = phis[0] if variant == "bh2" else 1.0
  return [math.factorial(k) * phis[k] / scale for k in range(1, order + 1)]


def _unipc_rhos(rs, b, order, corrector):
  """The weights rho of UniPC's predictor (corrector = False; order - 1 of them) or
  corrector (order of them, the last on the new point's difference) for the ratios
  rs = [r_1, r_2] of the earlier points; solves sum_j rho_j r_j^(i-1) = b_i (Zhao et al.
  2023, Algorithm 2 and 3; r = 1 for the new point). As in their code, the order-2
  predictor and the order-1 corrector use rho = 1/2."""
  r1, r2 = rs
  if not corrector:
    if order == 1:
      return []
    if order == 2:
      return [0.5]
    det = r2 - r1                                   # [[1, 1], [r1, r2]] rho = [b1, b2]
    return [(b[0] * r2 - b[1]) / det, (b[1] - b[0] * r1) / det]
  if order == 1:
    return [0.5]
  if order == 2:                                    # [[1, 1], [r1, 1]] rho = [b1, b2]
    det = 1.0 - r1
    return [(b[0] - b[1]) / det, (b[1] - b[0] * r1) / det]
  m = jnp.stack([jnp.stack([1.0, 1.0, 1.0]), jnp.stack([r1, r2, 1.0]),
                 jnp.stack([r1 * r1, r2 * r2, 1.0])])
  rho = jnp.linalg.solve(m, jnp.stack(b[:3]))
  return [rho[0], rho[1], rho[2]]


def _unipc_update(x, a_s, s_s, s_t, h, m0, diffs, rhos, variant):
  """x_s = (sigma_s / sigma_t) x + alpha_s h (phi_1(-h) m0 + B' sum_j rho_j D_j)."""
  (p1,) = phi_functions(-h, 1)
  scale = p1 if variant == "bh2" else 1.0
  res = sum((rho * d for rho, d in zip(rhos, diffs)), jnp.zeros_like(x))
  return (s_s / s_t) * x + a_s * h * (p1 * m0 + scale * res)


def _select(order, variants):
  """variants[order - 1] for a traced order in 1..len(variants) (each a pytree of arrays)."""
  return jax.tree.map(lambda *vs: jnp.select([order == k + 1 for k in range(len(vs))], vs),
                      *variants)


def _unipc_init(x):
  # (x at the previous time, its time t_prev, the predictor order used from it) + history
  # of the last three x0_hat (newest first) with their lambdas.
  return ((jnp.zeros_like(x), jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32)),
          _multistep_init(x, 3))


def _unipc_step(ctx, x, carry, t, t_next, index, *, order=2, variant="bh2", corrector=True):
  """UniPC (Zhao et al. 2023, "UniPC: A Unified Predictor-Corrector Framework for Fast
  Sampling of Diffusion Models"), data prediction, B(h) of `variant`, as in diffusers'
  UniPCMultistepScheduler: the model is evaluated once per step at the predicted point;
  that evaluation first corrects the point (UniC, of the order of the predictor that made
  it) and then drives the next prediction (UniP) from the corrected point. The order
  rises 1, 2, .. up to `order` as the history fills; the final step (to sigma = 0)
  gives alpha x0_hat."""
  (x_prev, t_prev, order_prev), hist = carry
  (m1, m2, m3), (lam1, lam2, lam3), count = hist
  a_t, s_t = ctx.schedule.alpha_sigma(t)
  a_s, s_s = ctx.schedule.alpha_sigma(t_next)
  m0 = evaluate(ctx, x, t)
  lam0 = _lambda(a_t, s_t)

  def ratios(lams, lam_ref, h, valid_from):
    # r_j = (lambda_j - lambda_ref) / h for the earlier points; -j where missing (unused,
    # only keeps the linear systems regular).
    return [jnp.where(count >= valid_from + j, (lam - lam_ref) / h, -1.0 - j)
            for j, lam in enumerate(lams)]

  if corrector:
    # UniC: the step t_prev -> t again, now with m0 at t: corrects x (no new evaluation).
    a_p, s_p = ctx.schedule.alpha_sigma(t_prev)
    h_c = jnp.where(count >= 1, lam0 - lam1, 1.0)
    rs = ratios((lam2, lam3), lam1, h_c, 2)
    b = _unipc_b(h_c, order, variant)
    diffs = [(m2 - m1) / rs[0], (m3 - m1) / rs[1]]
    variants = []
    for k in range(1, order + 1):
      rhos = _unipc_rhos(rs, b, k, corrector=True)
      variants.append(_unipc_update(x_prev, a_t, s_t, s_p, h_c, m1,
                                    diffs[:k - 1] + [m0 - m1], rhos[:k - 1] + rhos[-1:],
                                    variant))
    x = jnp.where(count >= 1, _select(jnp.maximum(order_prev, 1), variants), x)

  # UniP from the (corrected) x at t with m0.
  h, final = _step_h(a_t, s_t, a_s, s_s)
  p = jnp.minimum(count + 1, order)
  rs = ratios((lam1, lam2), lam0, h, 1)
  b = _unipc_b(h, order, variant)
  diffs = [(m1 - m0) / rs[0], (m2 - m0) / rs[1]]
  variants = [_unipc_update(x, a_s, s_s, s_t, h, m0, diffs[:k - 1],
                            _unipc_rhos(rs, b, k, corrector=False), variant)
              for k in range(1, order + 1)]
  x_next = jnp.where(final, a_s * m0, _select(p, variants))
  return x_next, ((x, t, p), _push(hist, m0, lam0))


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
    "dpmpp_2m": StepRule(_dpmpp_2m_step, _dpmpp_2m_init, {}),
    "dpmpp_3m": StepRule(_dpmpp_3m_step, _multistep_init, {}),
    "dpmpp_2m_sde": StepRule(_dpmpp_2m_sde_step, _dpmpp_2m_sde_init, dict(eta=1.0, s_noise=1.0)),
    "unipc": StepRule(_unipc_step, _unipc_init, dict(order=2, variant="bh2", corrector=True)),
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
