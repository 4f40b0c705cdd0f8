"""Objectives and the denoiser: conversions, EDM preconditioning identities, ideal networks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.diffusion import DiffusionSpec, denoise, make_denoiser, objectives, schedules
from genjax.diffusion.registry import UnknownNameError

OBJECTIVES = ("eps", "v", "x0", "edm", "flow")
SCHEDULES = ("linear", "cosine", "edm", "flow")
RTOL32 = 1e-5
SHAPE = (6, 3, 5, 2)  # non-square images


def _rel(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.linalg.norm(a - b) / np.linalg.norm(b)


def _interior_times(schedule, n):
  """n times away from the ends, where every conversion is well conditioned."""
  if isinstance(schedule, schedules.EDMSchedule):
    return jnp.exp(jnp.linspace(np.log(0.01), np.log(50.0), n))
  return jnp.linspace(0.02, 0.98, n)


def _data(shape=SHAPE, seed=0):
  k0, k1 = jax.random.split(jax.random.key(seed))
  return 0.5 * jax.random.normal(k0, shape), jax.random.normal(k1, shape)


def _t_from_c_noise(schedule, c_noise):
  """Invert schedule.c_noise, so that test networks can see the time."""
  if isinstance(schedule, schedules.EDMSchedule):
    return jnp.exp(4.0 * c_noise)
  return c_noise / 1000.0


def _col(a):
  return np.asarray(a, np.float64)[:, None, None, None]


@pytest.mark.parametrize("sched", SCHEDULES)
@pytest.mark.parametrize("obj", OBJECTIVES)
def test_target_round_trips_to_x0_and_eps(sched, obj):
  schedule = schedules.get_schedule(sched)
  objective = objectives.get_objective(obj)
  x0, eps = _data()
  t = _interior_times(schedule, SHAPE[0])
  alpha, sigma = schedule.alpha_sigma(t)
  x_t = objectives.expand(alpha, x0) * x0 + objectives.expand(sigma, x0) * eps
  x0_hat, eps_hat = objective.predictions(objective.target(x0, eps, alpha, sigma), x_t, alpha,
                                          sigma)
  assert _rel(x0_hat, x0) < 20 * RTOL32 and _rel(eps_hat, eps) < 20 * RTOL32


@pytest.mark.parametrize("sched", SCHEDULES)
def test_targets_match_float64_formulas(sched):
  schedule = schedules.get_schedule(sched)
  x0, eps = _data()
  t = _interior_times(schedule, SHAPE[0])
  alpha, sigma = schedule.alpha_sigma(t)
  a, s = _col(alpha), _col(sigma)
  x0_64, eps_64 = np.asarray(x0, np.float64), np.asarray(eps, np.float64)
  r = np.sqrt(a * a + s * s)
  sd = 0.5
  ve = s / a  # Karras's sigma in the VE frame x / alpha
  c_skip, c_out = sd**2 / (ve**2 + sd**2), ve * sd / np.sqrt(ve**2 + sd**2)
  refs = {
      "eps": eps_64,
      "x0": x0_64,
      "v": (a * eps_64 - s * x0_64) / r,   # Salimans & Ho (r = 1 for VP)
      "edm": (x0_64 - c_skip * (x0_64 + ve * eps_64)) / c_out,
  }
  for name, ref in refs.items():
    got = objectives.get_objective(name).target(x0, eps, alpha, sigma)
    assert _rel(got, ref) < RTOL32 * 10, name


@pytest.mark.parametrize("sched", ["linear", "cosine"])
def test_vp_network_input_is_x_t(sched):
  schedule = schedules.get_schedule(sched)
  x_t, _ = _data()
  alpha, sigma = schedule.alpha_sigma(_interior_times(schedule, SHAPE[0]))
  for name in ("eps", "v", "x0"):
    np.testing.assert_allclose(objectives.get_objective(name).net_input(x_t, alpha, sigma), x_t,
                               rtol=1e-6)


@pytest.mark.parametrize("sched", SCHEDULES)
@pytest.mark.parametrize("obj", OBJECTIVES)
def test_log_x0_weight_is_the_error_ratio(sched, obj):
  """||d out||^2 = k ||d x0_hat||^2, k = exp(log_x0_weight): what the weightings rely on."""
  schedule = schedules.get_schedule(sched)
  objective = objectives.get_objective(obj)
  x_t, out = _data()
  delta = 1e-2 * _data(seed=1)[0]
  alpha, sigma = schedule.alpha_sigma(_interior_times(schedule, SHAPE[0]))
  x0_a, _ = objective.predictions(out, x_t, alpha, sigma)
  x0_b, _ = objective.predictions(out + delta, x_t, alpha, sigma)
  ratio = (np.sum(np.square(np.asarray(delta, np.float64)), axis=(1, 2, 3))
           / np.sum(np.square(np.asarray(x0_b - x0_a, np.float64)), axis=(1, 2, 3)))
  k = np.exp(np.asarray(objective.log_x0_weight(schedule.log_snr(
      _interior_times(schedule, SHAPE[0]))), np.float64))
  np.testing.assert_allclose(ratio, k, rtol=2e-3)  # x0_b - x0_a loses digits to cancellation


def test_edm_preconditioning_coefficients():
  """Karras et al. Table 1 at sigma = sigma_data, and their unit-variance design rules."""
  sd = 0.5
  edm = objectives.EDMPreconditioning(sigma_data=sd)
  one = jnp.ones((1,))
  c_skip, c_out, c_in = (float(c[0]) for c in edm.coefficients(one, sd * one))
  np.testing.assert_allclose([c_skip, c_out, c_in], [0.5, sd / np.sqrt(2), 1 / (sd * np.sqrt(2))],
                             rtol=1e-6)
  # For data with std sd: Var(c_in x_t) = 1 and Var(F target) = 1 at every noise level,
  # on the VE (alpha = 1) and the VP frames alike.
  for sched in (schedules.EDMSchedule(), schedules.CosineSchedule()):
    t = _interior_times(sched, 7)
    alpha, sigma = sched.alpha_sigma(t)
    c_skip, c_out, c_in = edm.coefficients(alpha, sigma)
    a, s = np.asarray(alpha, np.float64), np.asarray(sigma, np.float64)
    np.testing.assert_allclose(np.asarray(c_in) ** 2 * (a * a * sd * sd + s * s), 1.0, rtol=1e-5)
    # F* = ((1 - c_skip alpha) x0 - c_skip sigma eps) / c_out
    var_f = ((1 - np.asarray(c_skip) * a) ** 2 * sd * sd + (np.asarray(c_skip) * s) ** 2) / \
        np.asarray(c_out, np.float64) ** 2
    np.testing.assert_allclose(var_f, 1.0, rtol=1e-4)
  # sigma -> 0: c_skip -> 1 and c_out -> 0, so D(x; 0) = x.
  c_skip, c_out, _ = edm.coefficients(one, 0.0 * one)
  assert float(c_skip[0]) == 1.0 and float(c_out[0]) == 0.0


@pytest.mark.parametrize("sched", SCHEDULES)
@pytest.mark.parametrize("obj", OBJECTIVES)
def test_ideal_network_for_a_point_mass_denoises_to_the_point(sched, obj):
  """Data = one image y: E[x0 | x_t] = y for every x_t; the ideal network's output
  (the objective's target for x0 = y, eps = (x_t - alpha y) / sigma) must denoise to y."""
  spec = DiffusionSpec.create(sched, obj)
  y = _data(seed=3)[0][:1]
  objective = spec.objective

  def net(x_in, c_noise):
    t = _t_from_c_noise(spec.schedule, c_noise)
    alpha, sigma = spec.schedule.alpha_sigma(t)
    x_t = x_in / objective.net_input(jnp.ones_like(x_in), alpha, sigma)  # undo input scaling
    a, s = objectives.expand(alpha, x_t), objectives.expand(sigma, x_t)
    return objective.target(jnp.broadcast_to(y, x_t.shape), (x_t - a * y) / s, alpha, sigma)

  x_t = 3.0 * _data(seed=4)[1]  # arbitrary points, not from the data
  t = _interior_times(spec.schedule, SHAPE[0])
  x0_hat, eps_hat = denoise(net, x_t, t, spec)
  y_b = np.broadcast_to(np.asarray(y), SHAPE)
  assert _rel(x0_hat, y_b) < 1e-4
  alpha, sigma = spec.schedule.alpha_sigma(t)
  eps_ref = (np.asarray(x_t, np.float64) - _col(alpha) * y_b) / _col(sigma)
  assert _rel(eps_hat, eps_ref) < 1e-4


def test_make_denoiser_clips_and_checks_shapes():
  spec = DiffusionSpec.create("cosine", "x0")
  x_t = jnp.ones(SHAPE)
  t = jnp.full((SHAPE[0],), 0.5)
  fn = make_denoiser(lambda x, c: 5.0 * x, spec, clip_x0=1.0)
  np.testing.assert_array_equal(fn(x_t, t), 1.0)
  np.testing.assert_allclose(make_denoiser(lambda x, c: 5.0 * x, spec)(x_t, t), 5.0, rtol=1e-6)
  with pytest.raises(ValueError, match="output shape"):
    make_denoiser(lambda x, c: x[..., :1], spec)(x_t, t)


@pytest.mark.parametrize("obj", OBJECTIVES)
def test_finite_at_both_ends(obj):
  for sched in SCHEDULES:
    spec = DiffusionSpec.create(sched, obj)
    t = jnp.asarray([0.0, spec.schedule.t_max, 0.0, spec.schedule.t_max, 0.0, 1e-3])
    x0_hat, eps_hat = denoise(lambda x, c: jnp.tanh(x), _data()[0], t, spec)
    assert np.all(np.isfinite(x0_hat)) and np.all(np.isfinite(eps_hat)), sched
    # At sigma = 0 the denoiser returns x_t itself for every objective but x0.
    if obj != "x0":
      np.testing.assert_allclose(x0_hat[0], _data()[0][0], rtol=1e-6)


def test_unknown_objective_lists_names():
  with pytest.raises(UnknownNameError, match="edm, eps, flow, v, x0"):
    objectives.get_objective("score")
