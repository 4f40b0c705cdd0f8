"""Samplers driven by the exact denoiser of Gaussian data.

Data: x0 ~ N(mu, s^2) independently per pixel, so E[x0 | x_t] = mu + alpha s^2 /
(alpha^2 s^2 + sigma^2) (x_t - alpha mu) exactly, for every schedule. Then:
* the probability-flow ODE from x_T at the grid's first time T is the affine map
  x0* = mu + s (x_T - alpha_T mu) / sqrt(alpha_T^2 s^2 + sigma_T^2), so deterministic
  samplers are compared per sample;
* stochastic samplers are linear-Gaussian chains whose output mean and variance a float64
  recursion gives exactly; Monte-Carlo tolerances are 5 standard errors.
Each sampler configuration is compiled once per module (the `run` cache).
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.diffusion import (DiffusionSpec, SAMPLERS, get_sampler, make_denoiser, num_evaluations,
                              samplers)
from genjax.diffusion.registry import UnknownNameError

H, W, C = 4, 3, 2   # non-square
N = 4096            # samples per Monte-Carlo test
D = H * W * C
MU = np.linspace(-0.5, 0.5, D).reshape(1, H, W, C)
STD = np.linspace(0.8, 0.2, D).reshape(1, H, W, C)
Z_MAX = 5.0         # |z| bound on standardized Monte-Carlo errors (P(fail) < 1e-5 for 24 pixels)


def gaussian_denoiser(schedule, mu=MU, std=STD):
  mu, std = jnp.asarray(mu, jnp.float32), jnp.asarray(std, jnp.float32)

  def denoise_fn(x, t):
    a, s = schedule.alpha_sigma(t)
    a, s = a[:, None, None, None], s[:, None, None, None]
    return mu + a * std**2 / (a * a * std**2 + s * s) * (x - a * mu)

  return denoise_fn


SPECS = {name: DiffusionSpec.create(name, "v") for name in ("edm", "cosine", "linear")}
SPECS["flow"] = DiffusionSpec.create("flow", "flow")


@functools.cache
def run(name, sched, steps, opts=(), shape=None):
  """jit(sampler) for one configuration, compiled once for the module: f(key, z) with
  given noise z, or f(key) drawing the noise of `shape` from the key."""
  spec = SPECS[sched]
  fn = functools.partial(SAMPLERS[name], gaussian_denoiser(spec.schedule), spec=spec,
                         steps=steps, **dict(opts))
  if shape is not None:
    return jax.jit(lambda key: fn(key, shape))
  return jax.jit(lambda key, z: fn(key, z))


@pytest.fixture(scope="module")
def z():
  return jax.random.normal(jax.random.key(123), (N, H, W, C))


def exact_flow(spec, z, t_start):
  """The probability-flow ODE's endpoint from x_T = sigma(t_start) z, float64."""
  a, s = (float(v) for v in spec.schedule.alpha_sigma(jnp.float32(t_start)))
  x_T = s * np.asarray(z, np.float64)
  return MU + STD * (x_T - a * MU) / np.sqrt(a * a * STD**2 + s * s)


def flow_error(name, sched, steps, z, opts=()):
  """||x - x0*|| / ||x0* - mu|| of sampler `name` from x_T = sigma(grid[0]) z."""
  spec = SPECS[sched]
  x = run(name, sched, steps, opts)(jax.random.key(0), z)
  t_start = samplers.sampling_grid(name, spec.schedule, steps, dict(opts).get("grid"))[0]
  ref = exact_flow(spec, z, t_start)
  return np.linalg.norm(np.asarray(x, np.float64) - ref) / np.linalg.norm(ref - MU)


# ---- deterministic samplers: exact ODE flow --------------------------------------------------

# (sampler, schedule, steps): bound on ||x - x0*|| / ||x0* - mu|| (measured value / ~1.5).
# Default grids: euler and heun "karras" everywhere (the same error on every schedule),
# the others "uniform" on VP.
ODE_CASES = [
    ("euler", "edm", 32, 0.13),     # 0.086
    ("euler", "cosine", 32, 0.13),  # 0.086
    ("heun", "edm", 16, 0.10),      # 0.069, NFE 31
    ("heun", "cosine", 16, 0.10),   # 0.069
    ("dpmpp_2m", "edm", 32, 0.025),  # 0.016
    ("ddim", "cosine", 32, 0.07),   # 0.047
    ("dpmpp_2m", "cosine", 32, 0.006),  # 0.0035
    ("dpmpp_2m", "linear", 32, 0.03),   # 0.020
    ("dpmpp_3m", "edm", 32, 0.002),     # 0.0012
    ("dpmpp_3m", "cosine", 32, 0.0135),  # 0.0090
    ("unipc", "edm", 32, 0.011),        # 0.0072
    ("unipc", "cosine", 32, 0.0055),    # 0.0037
    ("unipc", "flow", 32, 0.0047),      # 0.0031
    ("dpmpp_3m", "flow", 32, 0.0066),   # 0.0044
    ("ddim", "flow", 32, 0.066),        # 0.044
]
UNIPC3 = (("order", 3),)


@pytest.mark.parametrize("name,sched,steps,bound,opts", [c + ((),) for c in ODE_CASES] + [
    ("unipc", "edm", 32, 0.0045, UNIPC3),    # 0.0029
    ("unipc", "cosine", 32, 0.017, UNIPC3),  # 0.0115
])
def test_deterministic_sampler_follows_the_exact_ode(name, sched, steps, bound, opts, z):
  assert flow_error(name, sched, steps, z, opts) < bound
  f = run(name, sched, steps, opts)
  # Deterministic: another key gives the same result bit for bit (x_T is given).
  np.testing.assert_array_equal(f(jax.random.key(1), z), f(jax.random.key(0), z))
  assert f._cache_size() == 1  # the second call did not recompile


@pytest.mark.parametrize("name,order,opts", [
    ("euler", 1, ()), ("heun", 2, ()), ("dpmpp_2m", 2, ()),
    # UniC raises UniP's order by one at no extra evaluation (Zhao et al. 2023, Theorem 3.1).
    ("unipc", 2, (("order", 1),)),
    ("unipc", 3, (("order", 2),)),
    ("unipc", 3, (("order", 3), ("corrector", False))),
])
def test_convergence_order(name, order, opts, z):
  """Error ratio when doubling the steps: 2^order (measured: unipc 4.0, 8.7, 8.6)."""
  steps = 16 if name == "heun" else 32
  e1, e2 = (flow_error(name, "edm", n, z, opts) for n in (steps, 2 * steps))
  assert 0.85 * 2**order < e1 / e2 < 1.25 * 2**order, (e1, e2)


@pytest.mark.parametrize("a,b", [
    # UniP-2 alone is DPM-Solver++(2M): rho = 1/2 on (x0_i - x0_{i-1}) / r.
    (("unipc", (("corrector", False),)), ("dpmpp_2m", ())),
    # The 2M SDE without noise (eta = 0) is the 2M ODE solver.
    (("dpmpp_2m_sde", (("eta", 0.0),)), ("dpmpp_2m", ())),
])
@pytest.mark.parametrize("sched", ["edm", "cosine"])
def test_solver_special_cases(a, b, sched, z):
  x = run(a[0], sched, 12, a[1])(jax.random.key(0), z)
  np.testing.assert_allclose(x, run(b[0], sched, 12, b[1])(jax.random.key(0), z),
                             rtol=2e-5, atol=2e-5)


# Errors with the default grids (measured; NFE in brackets):
#             euler         heun          dpmpp_2m        heun on "uniform"
#   cosine    0.136 (20)    0.21 (19)     0.0115 (20)     18.2 (19)
#             0.069 (40)    0.042 (39)    0.0020 (40)     2.27 (39)
#   linear    same as cosine (karras)     0.053 (20)      0.128 (19)
#   edm       same                        0.047 (20)      -
# Heun overtakes Euler from ~27 evaluations, on every schedule alike.
@pytest.mark.parametrize("sched", ["cosine", "linear", "edm"])
def test_second_order_beats_euler_at_equal_evaluations(sched, z):
  euler = {n: flow_error("euler", sched, n, z) for n in (20, 40)}
  dpmpp = flow_error("dpmpp_2m", sched, 20, z)
  heun = flow_error("heun", sched, 20, z)
  assert num_evaluations("heun", 20) == 39 < 40
  assert dpmpp < euler[20] / 2, (dpmpp, euler)
  assert heun < euler[40] / 1.4, (heun, euler)


def test_heun_on_the_karras_grid_fixes_vp():
  """The uniform t grid's first step (sigma / alpha 2.2e4 -> 6 on "cosine") ruins Heun."""
  z_small = jax.random.normal(jax.random.key(5), (256, H, W, C))
  karras = flow_error("heun", "cosine", 10, z_small)
  uniform = flow_error("heun", "cosine", 10, z_small, (("grid", "uniform"),))
  assert karras < 0.3 and uniform > 30 * karras, (karras, uniform)


def test_karras_grid_gives_the_same_samples_on_every_schedule(z):
  """The ODE in x / alpha does not depend on the schedule; nor, on this grid, its steps."""
  for name, steps in (("heun", 8), ("dpmpp_2m", 16)):
    opts = (("grid", "karras"),)
    ref = np.asarray(run(name, "edm", steps, opts)(jax.random.key(0), z))
    for sched in ("cosine", "linear"):
      x = run(name, sched, steps, opts)(jax.random.key(0), z)
      assert np.linalg.norm(x - ref) / np.linalg.norm(ref) < 2e-6, (name, sched)


@pytest.mark.parametrize("sched,grid", [("cosine", "uniform"), ("cosine", "karras"),
                                        ("edm", "karras")])
def test_euler_without_churn_is_ddim_eta_0(sched, grid, z):
  # In the VE frame (x / alpha, sigma / alpha) Euler's step is DDIM's update.
  a = run("euler", sched, 32, (("grid", grid),))(jax.random.key(0), z)
  b = run("ddim", sched, 32, (("grid", grid),))(jax.random.key(0), z)
  np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("sched", ["cosine", "linear", "edm"])
def test_pure_noise_start_of_the_karras_grid_is_unbiased(sched):
  """x_T = sigma z leaves out alpha(t_start) x0 (alpha ~ 0.0125 at sigma / alpha = 80).

  Exactly (float64): the ODE then maps N(0, sigma^2) to N(mu (1 - s alpha / v), s^2 sigma^2
  / v^2), v^2 = alpha^2 s^2 + sigma^2: a mean bias of |mu| alpha / v ~ |mu| / 80 data
  standard deviations (< 0.01; the Monte-Carlo standard error is 0.016) and a variance
  within 1e-4 of the data's.
  Sampled: DPM-Solver++(2M), 80 steps on the karras grid (ODE error 0.2%) from pure
  noise matches the data's moments."""
  spec = SPECS[sched]
  t0 = spec.schedule.sampling_grid(80, "karras")[0]
  np.testing.assert_allclose(spec.schedule.ratio(t0), 80.0, rtol=1e-5)
  a, s = (float(v) for v in spec.schedule.alpha_sigma(t0))
  v = np.sqrt(a * a * STD**2 + s * s)
  assert np.max(np.abs(MU * a / v)) < 0.01
  assert np.max(np.abs(s * s / v**2 - 1)) < 1e-4
  x = run("dpmpp_2m", sched, 80, (("grid", "karras"),), (N, H, W, C))(jax.random.key(8))
  assert_moments(x, MU, STD**2)


# ---- stochastic samplers: moments of the exact linear-Gaussian chain --------------------------

def _posterior(a_t, s_t, a_s, s_s):
  """q(x_s | x_t, x0) = N(k_x x_t + k_0 x0, var) (Kingma et al. 2021, VDM, eq. 8), float64."""
  a_ts = a_t / a_s
  s2_ts = s_t**2 - a_ts**2 * s_s**2
  return a_ts * s_s**2 / s_t**2, a_s * s2_ts / s_t**2, s2_ts * s_s**2 / s_t**2


def chain_moments(spec, steps, eta):
  """Mean and variance [1, H, W, C] of DDIM(eta) (eta = 1: DDPM) with the exact denoiser,
  on the schedule's own grid."""
  grid = np.asarray(spec.schedule.sampling_grid(steps))
  al, sg = (np.asarray(v, np.float64) for v in spec.schedule.alpha_sigma(jnp.asarray(grid)))
  m, v = np.zeros_like(MU), np.full_like(MU, sg[0] ** 2)
  for i in range(steps):
    a_t, s_t, a_s, s_s = al[i], sg[i], al[i + 1], sg[i + 1]
    g = a_t * STD**2 / (a_t**2 * STD**2 + s_t**2)  # x0_hat = g x + (1 - g a_t) mu
    if eta == 1.0:
      k_x, k_0, var = _posterior(a_t, s_t, a_s, s_s)
    else:  # Song et al. eq. 12: a_s x0_hat + sqrt(s_s^2 - c^2) eps_hat + c n
      c2 = eta**2 * _posterior(a_t, s_t, a_s, s_s)[2]
      keep = np.sqrt(s_s**2 - c2)
      k_x, k_0, var = keep / s_t, a_s - keep * a_t / s_t, c2
    p, q = k_x + k_0 * g, k_0 * (1 - g * a_t) * MU
    m, v = p * m + q, p * p * v + var
  return m, v


def assert_moments(x, mean, var, extra_var_tol=0.0):
  """Per-pixel standardized mean errors below Z_MAX and the pooled variance ratio
  within Z_MAX standard errors (sqrt(2 / (N D)) for Gaussian samples) + extra_var_tol."""
  x = np.asarray(x, np.float64)
  z_mean = (x.mean(0, keepdims=True) - mean) / np.sqrt(var / N)
  assert np.max(np.abs(z_mean)) < Z_MAX, np.max(np.abs(z_mean))
  ratio = np.mean(x.var(0, keepdims=True) / var)
  assert abs(ratio - 1) < Z_MAX * math.sqrt(2 / (N * D)) + extra_var_tol, ratio


@pytest.mark.parametrize("name,sched,opts,eta", [
    ("ddpm", "edm", (), 1.0),
    ("ddpm", "cosine", (), 1.0),
    ("ddim", "cosine", (("eta", 0.5),), 0.5),
    ("ddim", "linear", (("eta", 1.0),), 1.0),
])
def test_stochastic_chain_moments(name, sched, opts, eta):
  spec = SPECS[sched]
  x = run(name, sched, 32, opts, (N, H, W, C))(jax.random.key(7))
  assert_moments(x, *chain_moments(spec, 32, eta))


def test_ddpm_chain_converges_to_the_data():
  """Discretization bias of ancestral sampling (float64 reference chain only):
  the variance deficit shrinks like 1 / steps."""
  ratios = [np.mean(chain_moments(SPECS["cosine"], n, 1.0)[1] / STD**2) for n in (32, 1000)]
  assert 0.7 < ratios[0] < 0.9 and abs(ratios[1] - 1) < 0.02, ratios
  np.testing.assert_allclose(chain_moments(SPECS["cosine"], 1000, 1.0)[0], MU, atol=1e-3)


def test_ddpm_equals_ddim_eta_1(z):
  a = run("ddpm", "cosine", 32)(jax.random.key(3), z)
  b = run("ddim", "cosine", 32, (("eta", 1.0),))(jax.random.key(3), z)
  np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_heun_with_churn_matches_the_data():
  opts = (("s_churn", 40.0), ("s_tmin", 0.05), ("s_tmax", 50.0))
  x = run("heun", "edm", 128, opts, (N, H, W, C))(jax.random.key(8))
  # Karras et al.'s stochastic sampler; 1.4% variance bias measured at 128 steps.
  assert_moments(x, MU, STD**2, extra_var_tol=0.025)
  assert not np.array_equal(x, run("heun", "edm", 128, opts, (N, H, W, C))(jax.random.key(9)))


def test_ddpm_coefficients_are_ho_et_al_posterior():
  """1000 linear steps: the posterior mean coefficients and variance beta~_t of DDPM."""
  spec = DiffusionSpec.create("linear")
  grid = spec.schedule.sampling_grid(1000)
  a, s = spec.schedule.alpha_sigma(grid)
  c_x, c_0, std = samplers.ddpm_coefficients(a[:-1], s[:-1], a[1:], s[1:])
  betas = np.linspace(1e-4, 0.02, 1000)
  ab = np.cumprod(1 - betas)[::-1]                   # alpha_bar_t for t = 1000 .. 1
  ab_prev = np.append(ab[1:], 1.0)                   # alpha_bar_{t-1}
  beta = betas[::-1]
  np.testing.assert_allclose(c_0, np.sqrt(ab_prev) * beta / (1 - ab), rtol=2e-3)
  np.testing.assert_allclose(c_x, np.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab), rtol=1e-4)
  np.testing.assert_allclose(np.square(std), (1 - ab_prev) / (1 - ab) * beta, rtol=2e-3)


# ---- a flow-matching model: the exact velocity field as the network --------------------------

def velocity_net(schedule, mu=MU, std=STD):
  """net(x_in, c_noise) = E[eps - x0 | x_t], the optimal flow-matching velocity for
  Gaussian data, written without dividing by alpha or sigma; the network sees
  x_t / (alpha + sigma) (= x_t on the "flow" schedule) and c_noise = 1000 t."""
  mu, std = jnp.asarray(mu, jnp.float32), jnp.asarray(std, jnp.float32)

  def net(x_in, c_noise):
    a, s = schedule.alpha_sigma(c_noise / 1000.0)
    a, s = a[:, None, None, None], s[:, None, None, None]
    x_t = x_in * (a + s)
    v = a * a * std**2 + s * s
    e_x0 = mu + a * std**2 / v * (x_t - a * mu)
    e_eps = s / v * (x_t - a * mu)
    return e_eps - e_x0

  return net


@functools.cache
def run_flow_model(name, steps, opts=(), shape=None):
  spec = SPECS["flow"]
  fn = functools.partial(SAMPLERS[name], make_denoiser(velocity_net(spec.schedule), spec),
                         spec=spec, steps=steps, **dict(opts))
  if shape is not None:
    return jax.jit(lambda key: fn(key, shape))
  return jax.jit(lambda key, z: fn(key, z))


def test_velocity_conversions_are_exact():
  """u -> (x0_hat, eps_hat) of the "flow" objective is the Gaussian posterior mean, float64."""
  spec = SPECS["flow"]
  t = jnp.asarray([0.0, 0.1, 0.5, 0.9, 1.0])
  x_t = jax.random.normal(jax.random.key(2), (5, H, W, C))
  x0_hat = make_denoiser(velocity_net(spec.schedule), spec)(x_t, t)
  np.testing.assert_allclose(x0_hat, gaussian_denoiser(spec.schedule)(x_t, t), rtol=2e-5,
                             atol=2e-5)
  a = np.asarray(1 - np.minimum(t, spec.schedule.t_clip), np.float64)[:, None, None, None]
  x = np.asarray(x_t, np.float64)
  ref = MU + a * STD**2 / (a * a * STD**2 + (1 - a) ** 2) * (x - a * MU)
  np.testing.assert_allclose(x0_hat, ref, rtol=2e-5, atol=2e-5)


# Deterministic samplers: per sample against the exact ODE flow (float64); the default
# grid of each ("uniform" in t from 1 for the flow schedule, "karras" for euler / heun).
FLOW_ODE = [("ddim", 64, (), 0.035), ("euler", 64, (), 0.07), ("heun", 32, (), 0.05),
            ("dpmpp_2m", 32, (), 0.0085), ("dpmpp_3m", 32, (), 0.0066),
            ("unipc", 32, (), 0.0047), ("unipc", 32, UNIPC3, 0.011)]


@pytest.mark.parametrize("name,steps,opts,bound", FLOW_ODE)
def test_every_ode_sampler_runs_a_flow_matching_model(name, steps, opts, bound, z):
  """The flow-matching model's samples: per sample on the exact flow, and the data's
  mean and variance from pure noise."""
  spec = SPECS["flow"]
  x = run_flow_model(name, steps, opts)(jax.random.key(0), z)
  t0 = samplers.sampling_grid(name, spec.schedule, steps)[0]
  ref = exact_flow(spec, z, t0)
  assert np.linalg.norm(np.asarray(x, np.float64) - ref) / np.linalg.norm(ref - MU) < bound
  assert_moments(x, MU, STD**2, extra_var_tol=2 * bound)


@pytest.mark.parametrize("name,opts,eta", [("ddpm", (), 1.0), ("ddim", (("eta", 0.5),), 0.5)])
def test_stochastic_samplers_on_a_flow_matching_model(name, opts, eta):
  spec = SPECS["flow"]
  x = run_flow_model(name, 32, opts, (N, H, W, C))(jax.random.key(7))
  assert_moments(x, *chain_moments(spec, 32, eta))


@pytest.mark.parametrize("model", ["flow", "cosine"])
def test_dpmpp_2m_sde_matches_the_data(model):
  """No exact chain for the multistep SDE solver: 64 steps from pure noise against the
  data's moments (its discretization bias, measured: < 1% in the variance)."""
  if model == "flow":
    x = run_flow_model("dpmpp_2m_sde", 64, (), (N, H, W, C))(jax.random.key(8))
  else:
    x = run("dpmpp_2m_sde", "cosine", 64, (), (N, H, W, C))(jax.random.key(8))
  assert_moments(x, MU, STD**2, extra_var_tol=0.015)
  y = run("dpmpp_2m_sde", "cosine", 64, (), (N, H, W, C))(jax.random.key(9))
  assert not np.array_equal(x, y)


# ---- error against evaluations on a Gaussian mixture ------------------------------------------
# Per pixel x0 ~ sum_k w_k N(m_k, s_k^2): E[x0 | x_t] in closed form, the ODE's endpoint by
# a float64 DOP853 integration (rtol 1e-11) of dy / dlambda = D(y) - y in the VE frame
# y = x / alpha, lambda = -log(sigma / alpha).

MIX_W, MIX_M, MIX_S = np.array([0.3, 0.5, 0.2]), np.array([-0.8, 0.1, 0.7]), np.array([0.1, 0.2, 0.15])
MIX_SHAPE = (4, 2, 2)


def mixture_denoiser(schedule):
  w, m, s = (jnp.asarray(v, jnp.float32).reshape(1, 1, 1, 1, -1) for v in (MIX_W, MIX_M, MIX_S))

  def denoise_fn(x, t):
    a, sg = schedule.alpha_sigma(t)
    a, sg = a[:, None, None, None, None], sg[:, None, None, None, None]
    xe = x[..., None]
    v = a * a * s * s + sg * sg
    g = jax.nn.softmax(jnp.log(w) - 0.5 * jnp.log(v) - 0.5 * jnp.square(xe - a * m) / v, -1)
    return jnp.sum(g * (m + a * s * s / v * (xe - a * m)), axis=-1)

  return denoise_fn


def mixture_denoiser_64(y, ratio):
  """E[x0 | y = x0 + ratio eps] in float64."""
  from scipy import special
  y = np.asarray(y, np.float64)[..., None]
  v = MIX_S**2 + ratio**2
  g = special.softmax(np.log(MIX_W) - 0.5 * np.log(v) - 0.5 * (y - MIX_M) ** 2 / v, axis=-1)
  return np.sum(g * (MIX_M + MIX_S**2 / v * (y - MIX_M)), axis=-1)


@functools.cache
def mixture_ode_endpoint(ratio0, seed=1, n=256):
  """(z, x0*): noise [n, *MIX_SHAPE] and the exact ODE endpoint from x / alpha = ratio0 z."""
  from scipy import integrate
  z = np.asarray(jax.random.normal(jax.random.key(seed), (n,) + MIX_SHAPE), np.float64)
  lam0, lam1 = -math.log(ratio0), -math.log(1e-6)
  sol = integrate.solve_ivp(lambda lam, y: mixture_denoiser_64(y, math.exp(-lam)) - y,
                            (lam0, lam1), ratio0 * z.ravel(), method="DOP853", rtol=1e-11,
                            atol=1e-11)
  return z, mixture_denoiser_64(sol.y[:, -1], 1e-6).reshape(z.shape)


@functools.cache
def run_mixture(name, sched, steps, opts=(), shape=None):
  spec = SPECS[sched]
  fn = functools.partial(SAMPLERS[name], mixture_denoiser(spec.schedule), spec=spec,
                         steps=steps, **dict(opts))
  if shape is not None:
    return jax.jit(lambda key: fn(key, shape))
  return jax.jit(lambda key, z: fn(key, z))


def mixture_ode_error(name, sched, steps, opts=()):
  spec = SPECS[sched]
  t0 = samplers.sampling_grid(name, spec.schedule, steps)[0]
  z, ref = mixture_ode_endpoint(float(spec.schedule.ratio(t0)))
  x = np.asarray(run_mixture(name, sched, steps, opts)(jax.random.key(0), jnp.asarray(z)),
                 np.float64)
  return np.linalg.norm(x - ref) / np.linalg.norm(ref - np.mean(ref))


# Measured ||x - x0*|| / ||x0* - mean|| at 5, 10, 20 NFE on the schedules' own ("uniform")
# grids; at 20 the first-order last jump from t = 1/20 to 0 dominates every solver.
#              cosine                   flow
#   ddim       0.242  0.125  0.068      0.233  0.128  0.069
#   dpmpp_2m   0.188  0.056  0.036      0.138  0.038  0.024
#   dpmpp_3m   0.171  0.061  0.041      0.105  0.056  0.022
#   unipc      0.167  0.056  0.038      0.113  0.044  0.024
#   unipc o=3  0.150  0.065  0.043      0.088  0.068  0.028
# (On EDM's karras grid from sigma = 80 the third-order solvers are worse than DDIM at 5
# NFE on this mixture, 0.89 / 1.17 against 0.59, and best from 20 on: 0.030 / 0.037 / 0.14.)
HIGHER_ORDER = [("dpmpp_2m", ()), ("dpmpp_3m", ()), ("unipc", ()), ("unipc", UNIPC3)]


@pytest.mark.slow  # ~50 s: 15 sampler programs and a float64 ODE reference per schedule
@pytest.mark.parametrize("sched", ["cosine", "flow"])
def test_error_falls_with_evaluations_and_beats_ddim(sched):
  ddim = {n: mixture_ode_error("ddim", sched, n) for n in (5, 10, 20)}
  assert ddim[20] < ddim[10] < ddim[5], ddim
  for name, opts in HIGHER_ORDER:
    err = {n: mixture_ode_error(name, sched, n, opts) for n in (5, 10, 20)}
    assert err[20] < err[10] < err[5], (name, opts, err)
    for n in (5, 10, 20):
      assert err[n] < 0.85 * ddim[n], (name, opts, n, err, ddim)


def mixture_w1(x):
  """1-D Wasserstein-1 distance of the pooled samples to the mixture (its quantiles by
  float64 interpolation of the CDF on a fine grid)."""
  from scipy import stats
  x = np.sort(np.asarray(x, np.float64).ravel())
  grid = np.linspace(-2.5, 2.5, 500_001)
  cdf = np.sum(MIX_W * stats.norm.cdf((grid[:, None] - MIX_M) / MIX_S), axis=-1)
  quantiles = np.interp((np.arange(x.size) + 0.5) / x.size, cdf, grid)
  return np.mean(np.abs(x - quantiles))


# W1 (pooled over 8192 x 16 samples; Monte-Carlo part ~0.002) at 5, 10, 20 NFE, measured:
#   cosine: dpmpp_2m_sde 0.085 0.025 0.019, ddpm 0.128 0.079 0.046
#   flow:   dpmpp_2m_sde 0.065 0.024 0.017, ddpm 0.142 0.082 0.046
@pytest.mark.slow  # ~45 s
@pytest.mark.parametrize("sched", ["cosine", "flow"])
def test_sde_solver_error_falls_with_evaluations_and_beats_ddpm(sched):
  shape = (8192,) + MIX_SHAPE
  sde, ddpm = ({n: mixture_w1(run_mixture(name, sched, n, (), shape)(jax.random.key(3)))
                for n in (5, 10, 20)} for name in ("dpmpp_2m_sde", "ddpm"))
  assert sde[20] < sde[10] < sde[5], sde
  for n in (5, 10, 20):
    assert sde[n] < 0.8 * ddpm[n], (n, sde, ddpm)


# ---- keys and batches -------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["ddpm", "heun"])
def test_sample_does_not_depend_on_batch_size(name):
  opts = (("s_churn", 10.0),) if name == "heun" else ()
  key = jax.random.key(11)
  small = run(name, "edm", 8, opts, (3, H, W, C))(key)
  large = run(name, "edm", 8, opts, (5, H, W, C))(key)
  np.testing.assert_allclose(small, large[:3], rtol=1e-6, atol=1e-6)
  # Per-sample keys: sample i is fold_in(key, i) whichever batch it is in.
  keys = jax.vmap(jax.random.fold_in, (None, 0))(key, jnp.arange(5))
  picked = run(name, "edm", 8, opts, (3, H, W, C))(keys[2:])
  np.testing.assert_allclose(picked, large[2:], rtol=1e-6, atol=1e-6)


def test_raw_uint32_keys_work():
  x = run("ddpm", "edm", 8, (), (3, H, W, C))(jax.random.PRNGKey(0))
  assert x.shape == (3, H, W, C) and np.all(np.isfinite(x))


# ---- errors -----------------------------------------------------------------------------------

def test_errors():
  spec = SPECS["edm"]
  den = gaussian_denoiser(spec.schedule)
  with pytest.raises(UnknownNameError,
                     match="ddim, ddpm, dpmpp_2m, dpmpp_2m_sde, dpmpp_3m, euler, heun, unipc"):
    get_sampler("plms")
  with pytest.raises(ValueError, match="steps"):
    SAMPLERS["ddim"](den, jax.random.key(0), (2, H, W, C), spec, steps=0)
  with pytest.raises(TypeError, match="eta"):
    SAMPLERS["heun"](den, jax.random.key(0), (2, H, W, C), spec, steps=4, eta=0.5)
  with pytest.raises(ValueError, match="order must be 1, 2 or 3"):
    SAMPLERS["unipc"](den, jax.random.key(0), (2, H, W, C), spec, steps=4, order=4)
  with pytest.raises(ValueError, match="variant"):
    SAMPLERS["unipc"](den, jax.random.key(0), (2, H, W, C), spec, steps=4, variant="bh3")
  with pytest.raises(ValueError, match="batch of 2 keys"):
    SAMPLERS["ddpm"](den, jax.random.split(jax.random.key(0), 3), (2, H, W, C), spec, steps=4)
