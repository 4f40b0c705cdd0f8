"""The multistep samplers' step rules: DPM-Solver++ 2M, 3M and 2M SDE (Lu et al. 2022) and
UniPC (Zhao et al. 2023), exponential integrators on x0_hat in lambda = log(alpha / sigma).

Each rule is `(ctx, x, carry, t, t_next, index, **opts) -> (x_next, carry)` with an init
`carry = init(x)` holding the history (genjax.diffusion.samplers.STEP_RULES runs them).
"""

import math

import jax
import jax.numpy as jnp

from genjax.diffusion.phi import phi_functions
from genjax.diffusion.sampling_context import NOISE_TRANSITION, evaluate, step_noise


def dpmpp_2m_init(x):
  # (x0_hat of the previous step, its h, whether there is one)
  return jnp.zeros_like(x), jnp.ones((), jnp.float32), jnp.zeros((), bool)


def dpmpp_2m_step(ctx, x, carry, t, t_next, index):
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


def multistep_init(x, depth=2):
  # (x0_hat at the last `depth` times, newest first; their lambdas; how many are valid)
  return (tuple(jnp.zeros_like(x) for _ in range(depth)), jnp.zeros((depth,), jnp.float32),
          jnp.zeros((), jnp.int32))


def _push(carry, x0_hat, lam):
  hist, lams, count = carry
  return ((x0_hat,) + hist[:-1], jnp.concatenate([lam[None], lams[:-1]]),
          jnp.minimum(count + 1, len(hist)))


def dpmpp_3m_step(ctx, x, carry, t, t_next, index):
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


def dpmpp_2m_sde_init(x):
  return jnp.zeros_like(x), jnp.ones((), jnp.float32), jnp.zeros((), bool)


def dpmpp_2m_sde_step(ctx, x, carry, t, t_next, index, *, eta=1.0, s_noise=1.0):
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
    x_next = x_next + std * step_noise(ctx, x, index, NOISE_TRANSITION)
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


def unipc_init(x):
  # (x at the previous time, its time t_prev, the predictor order used from it) + history
  # of the last three x0_hat (newest first) with their lambdas.
  return ((jnp.zeros_like(x), jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32)),
          multistep_init(x, 3))


def unipc_step(ctx, x, carry, t, t_next, index, *, order=2, variant="bh2", corrector=True):
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
