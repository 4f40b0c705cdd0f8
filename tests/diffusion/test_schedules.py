"""Schedules against their closed forms (float64 NumPy references)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.diffusion import schedules
from genjax.diffusion.registry import UnknownNameError

ALL = ("linear", "cosine", "edm", "flow")
RTOL32 = 2e-5  # float32 results vs float64 references, a few ulps of accumulated error


def _rel(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.linalg.norm(a - b) / np.linalg.norm(b)


def _discrete_alpha_bar(n=1000, lo=1e-4, hi=0.02):
  return np.cumprod(1.0 - np.linspace(lo, hi, n, dtype=np.float64))


def _cosine_alpha_bar(t, s=0.008):
  f = lambda u: np.cos(0.5 * np.pi * (u + s) / (1 + s)) ** 2
  return f(np.asarray(t, np.float64)) / f(0.0)


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_vp_alpha_sigma_unit_norm(name):
  t = jnp.linspace(0.0, 1.0, 1001)
  alpha, sigma = schedules.get_schedule(name).alpha_sigma(t)
  np.testing.assert_allclose(np.square(alpha) + np.square(sigma), 1.0, atol=2e-6)
  assert alpha[0] == 1.0 and sigma[0] == 0.0


def test_linear_matches_discrete_cumprod_at_grid_points():
  sched = schedules.LinearSchedule()
  t = jnp.arange(1, 1001, dtype=jnp.float32) / 1000.0
  alpha, sigma = sched.alpha_sigma(t)
  ab = _discrete_alpha_bar()
  np.testing.assert_allclose(np.square(alpha), ab, rtol=RTOL32)
  # 1 - alpha_bar keeps its relative precision down to the first step (1e-4).
  np.testing.assert_allclose(np.square(sigma), 1.0 - ab, rtol=RTOL32)


def test_linear_interpolates_log_alpha_bar_between_grid_points():
  sched = schedules.LinearSchedule()
  lab = np.log(np.concatenate([[1.0], _discrete_alpha_bar()]))
  i = np.array([0, 1, 10, 499, 998])
  mid = (i + 0.5) / 1000.0
  np.testing.assert_allclose(sched.log_alpha_bar(jnp.asarray(mid, jnp.float32)),
                             0.5 * (lab[i] + lab[i + 1]), rtol=RTOL32, atol=1e-7)


def test_cosine_closed_form():
  sched = schedules.CosineSchedule()
  t = np.concatenate([np.linspace(0.0, 0.99, 100), [1e-6, 1e-4]])
  alpha, sigma = sched.alpha_sigma(jnp.asarray(t, jnp.float32))
  ab = _cosine_alpha_bar(t.astype(np.float32).astype(np.float64))
  np.testing.assert_allclose(np.square(alpha), ab, rtol=RTOL32, atol=1e-7)
  # sigma^2 = 1 - alpha_bar to relative precision also for tiny t (no cancellation).
  np.testing.assert_allclose(np.square(sigma[1:]), (1.0 - ab)[1:], rtol=1e-4)


def test_cosine_is_clipped_at_log_snr_min():
  sched = schedules.CosineSchedule()
  t = jnp.linspace(0.9, 1.0, 1001)
  lam = sched.log_snr(t)
  assert float(jnp.min(lam)) >= -20.0 - 1e-3
  np.testing.assert_allclose(sched.log_snr(jnp.float32(1.0)), -20.0, atol=1e-3)
  alpha, _ = sched.alpha_sigma(jnp.float32(1.0))
  np.testing.assert_allclose(alpha, math.exp(-10.0), rtol=1e-3)
  # Below the clip the schedule is the unclipped formula.
  t_in = np.float32(0.999)
  np.testing.assert_allclose(np.square(sched.alpha_sigma(jnp.float32(t_in))[0]),
                             _cosine_alpha_bar(np.float64(t_in)), rtol=1e-3)


def test_edm_schedule_and_karras_grid():
  sched = schedules.EDMSchedule()
  t = jnp.asarray([0.0, 0.002, 1.0, 80.0])
  alpha, sigma = sched.alpha_sigma(t)
  np.testing.assert_array_equal(alpha, 1.0)
  np.testing.assert_array_equal(sigma, t)
  np.testing.assert_allclose(sched.c_noise(t[1:]), np.log(np.asarray(t[1:], np.float64)) / 4,
                             rtol=1e-6)
  n = 18
  grid = np.asarray(sched.sampling_grid(n), np.float64)
  i = np.arange(n)
  ref = (80 ** (1 / 7) + i / (n - 1) * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
  np.testing.assert_allclose(grid[:-1], ref, rtol=1e-6)
  assert grid[-1] == 0.0


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("grid", list(schedules.GRIDS))
@pytest.mark.parametrize("steps", [1, 2, 25, 1000])
def test_sampling_grid_runs_from_its_start_to_zero(name, grid, steps):
  sched = schedules.get_schedule(name)
  times = np.asarray(sched.sampling_grid(steps, grid))
  assert times.shape == (steps + 1,) and times.dtype == np.float32
  assert times[-1] == 0.0 and np.all(np.diff(times) < 0)
  if grid == "uniform" or name == "edm":
    assert times[0] == np.float32(sched.t_max)
  else:  # VP: where sigma / alpha = 80
    np.testing.assert_allclose(sched.ratio(times[0]), 80.0, rtol=1e-5)
    assert times[0] < sched.t_max


@pytest.mark.parametrize("name,default", [("linear", "uniform"), ("cosine", "uniform"),
                                          ("edm", "karras")])
def test_default_grid(name, default):
  sched = schedules.get_schedule(name)
  np.testing.assert_array_equal(sched.sampling_grid(9), sched.sampling_grid(9, default))
  np.testing.assert_array_equal(sched.sampling_grid(4, "uniform"),
                                np.linspace(sched.t_max, 0.0, 5).astype(np.float32))


@pytest.mark.parametrize("name", ALL)
def test_karras_grid_is_rho_spaced_in_the_noise_ratio(name):
  """Karras et al. eq. 5 with sigma = sigma / alpha, 0.002 .. 80, rho = 7, for any schedule."""
  sched = schedules.get_schedule(name)
  n = 18
  times = sched.sampling_grid(n, "karras")
  i = np.arange(n)
  ref = (80 ** (1 / 7) + i / (n - 1) * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
  np.testing.assert_allclose(sched.ratio(times[:-1]), ref, rtol=1e-5)
  # A constant of the program, also when built inside jit.
  np.testing.assert_array_equal(jax.jit(lambda: sched.sampling_grid(n, "karras"))(), times)


def test_karras_grid_starts_at_t_max_when_ratio_max_is_beyond_it():
  sched = schedules.LinearSchedule(ratio_max=1000.0)
  top = math.sqrt(1 / _discrete_alpha_bar()[-1] - 1)  # ratio(1) = 157.4
  times = np.asarray(sched.sampling_grid(10, "karras"))
  assert times[0] == 1.0
  np.testing.assert_allclose(sched.ratio(times[1]),
                             (top ** (1 / 7) + (0.002 ** (1 / 7) - top ** (1 / 7)) / 9) ** 7,
                             rtol=1e-5)


def test_grid_errors():
  with pytest.raises(UnknownNameError, match="karras, uniform"):
    schedules.CosineSchedule().sampling_grid(10, "quadratic")
  with pytest.raises(ValueError, match="ratio_min"):
    schedules.CosineSchedule(ratio_min=100.0).sampling_grid(10, "karras")


@pytest.mark.parametrize("steps", [0, -3, 2.5, True, "10"])
def test_sampling_grid_rejects_bad_steps(steps):
  with pytest.raises(ValueError, match="steps"):
    schedules.CosineSchedule().sampling_grid(steps)


@pytest.mark.parametrize("name", ALL)
def test_finite_at_both_ends(name):
  sched = schedules.get_schedule(name)
  t = jnp.asarray([0.0, 1e-7, 1e-3, 0.5, sched.t_max], jnp.float32)
  alpha, sigma = sched.alpha_sigma(t)
  for v in (alpha, sigma, sched.log_snr(t), sched.c_noise(t)):
    assert np.all(np.isfinite(np.asarray(v))), (name, v)
  assert alpha[0] == 1.0 and sigma[0] == 0.0
  assert float(sched.log_snr(t)[0]) == schedules.LOG_SNR_MAX
  assert np.all(np.diff(np.asarray(sched.log_snr(t))) < 0)


@pytest.mark.parametrize("name", ALL)
def test_t_from_log_snr_inverts_log_snr(name):
  sched = schedules.get_schedule(name)
  t = jnp.linspace(0.02, 0.98, 49) * sched.t_max
  np.testing.assert_allclose(sched.t_from_log_snr(sched.log_snr(t)), t, rtol=1e-4,
                             atol=1e-5 * sched.t_max)


@pytest.mark.parametrize("name", ALL)
def test_t_from_ratio_inverts_ratio(name):
  """Over the whole karras range, down to sigma / alpha = 0.002 (t ~ 1e-4 for VP)."""
  sched = schedules.get_schedule(name)
  ratios = np.geomspace(0.002, 80.0, 41)
  np.testing.assert_allclose(sched.ratio(sched.t_from_ratio(ratios)), ratios, rtol=2e-5)


def test_cosine_ratio_closed_form():
  t = np.array([1e-4, 1e-3, 0.3, 0.9])
  ab = _cosine_alpha_bar(t.astype(np.float32).astype(np.float64))
  ratio = schedules.CosineSchedule().ratio(jnp.asarray(t, jnp.float32))
  np.testing.assert_allclose(ratio, np.sqrt((1 - ab) / ab), rtol=1e-4)


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_vp_training_times_uniform(name):
  sched = schedules.get_schedule(name)
  n = 100_000
  t = np.asarray(sched.sample_train_t(jax.random.key(0), n), np.float64)
  assert t.shape == (n,) and t.min() >= sched.t_min and t.max() <= 1.0
  mean, sd = (1 + sched.t_min) / 2, (1 - sched.t_min) / math.sqrt(12)
  assert abs(t.mean() - mean) < 5 * sd / math.sqrt(n)


def test_edm_training_sigmas_log_normal():
  sched = schedules.EDMSchedule(p_mean=-1.2, p_std=1.2)
  n = 100_000
  log_sigma = np.log(np.asarray(sched.sample_train_t(jax.random.key(0), n), np.float64))
  se = 1.2 / math.sqrt(n)
  assert abs(log_sigma.mean() + 1.2) < 5 * se
  assert abs(log_sigma.std() - 1.2) < 5 * 1.2 / math.sqrt(2 * n)


def test_vp_c_noise_is_1000_t():
  t = jnp.asarray([0.0, 0.001, 0.5, 1.0])
  np.testing.assert_allclose(schedules.LinearSchedule().c_noise(t), 1000 * np.asarray(t),
                             rtol=1e-6)


def test_unknown_schedule_lists_names():
  with pytest.raises(UnknownNameError, match="cosine, edm, flow, linear"):
    schedules.get_schedule("sqrt")
