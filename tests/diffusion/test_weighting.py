"""Loss weightings at known SNRs, per objective."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.diffusion import objectives, schedules, weighting
from genjax.diffusion.registry import UnknownNameError

SNR = np.array([1e-3, 0.1, 1.0, 5.0, 10.0, 100.0, 1e4])
GAMMA = 5.0


def _weights(name, obj, snr=SNR, **params):
  log_snr = jnp.asarray(np.log(snr), jnp.float32)
  objective = objectives.get_objective(obj)
  return np.asarray(weighting.get_weighting(name, **params)(log_snr,
                                                           objective.log_x0_weight(log_snr)))


@pytest.mark.parametrize("obj,ref", [
    ("eps", np.minimum(SNR, GAMMA) / SNR),
    ("v", np.minimum(SNR, GAMMA) / (SNR + 1)),
    ("x0", np.minimum(SNR, GAMMA)),
])
def test_min_snr_matches_hang_et_al(obj, ref):
  np.testing.assert_allclose(_weights("min_snr", obj, gamma=GAMMA), ref, rtol=1e-5)


def test_min_snr_known_values():
  # eps at SNR 10, gamma 5: 0.5; v at SNR 4: 4/5; x0 at SNR 100: 5.
  np.testing.assert_allclose(_weights("min_snr", "eps", np.array([10.0]), gamma=5.0), [0.5],
                             rtol=1e-6)
  np.testing.assert_allclose(_weights("min_snr", "v", np.array([4.0]), gamma=5.0), [0.8],
                             rtol=1e-6)
  np.testing.assert_allclose(_weights("min_snr", "x0", np.array([100.0]), gamma=5.0), [5.0],
                             rtol=1e-6)


@pytest.mark.parametrize("obj,ref", [("eps", 1.0 + 0 * SNR), ("v", SNR / (SNR + 1)), ("x0", SNR)])
def test_snr_weighting(obj, ref):
  np.testing.assert_allclose(_weights("snr", obj), ref, rtol=1e-5)


def test_edm_weighting():
  sd = 0.5
  sigma = 1.0 / np.sqrt(SNR)  # VE frame: SNR = 1 / sigma^2
  lam = (sigma**2 + sd**2) / (sigma * sd) ** 2  # Karras et al. lambda(sigma)
  np.testing.assert_allclose(_weights("edm", "x0", sigma_data=sd), lam, rtol=1e-5)
  np.testing.assert_array_equal(_weights("edm", "edm", sigma_data=sd), 1.0)  # uniform in F-space
  np.testing.assert_allclose(_weights("edm", "eps", sigma_data=sd), lam / SNR, rtol=1e-5)


@pytest.mark.parametrize("obj", ["eps", "v", "x0", "edm"])
def test_uniform_is_one(obj):
  np.testing.assert_array_equal(_weights("uniform", obj), 1.0)


@pytest.mark.parametrize("name", sorted(weighting.WEIGHTINGS))
@pytest.mark.parametrize("obj", sorted(objectives.OBJECTIVES))
def test_finite_over_the_whole_log_snr_range(name, obj):
  snr = np.exp(np.array([-20.0, -10.0, 0.0, 10.0, schedules.LOG_SNR_MAX]))
  w = _weights(name, obj, snr)
  assert np.all(np.isfinite(w)) and np.all(w >= 0)


@pytest.mark.parametrize("sched", ["flow", "cosine", "edm"])
def test_logit_normal_times(sched):
  """SD3's lognorm(m, s): logit(tau) ~ N(m, s^2) in the rectified-flow time tau =
  sigma / (alpha + sigma), which is t on the "flow" schedule (Kolmogorov-Smirnov test,
  4096 seeded draws; the loss weight itself is 1)."""
  from scipy import stats
  schedule = schedules.get_schedule(sched)
  w = weighting.get_weighting("logit_normal", mean=0.3, std=0.8)
  t = w.sample_train_t(jax.random.key(0), 4096, schedule)
  alpha, sigma = (np.asarray(v, np.float64) for v in schedule.alpha_sigma(t))
  tau = sigma / (alpha + sigma)
  if sched == "flow":
    np.testing.assert_allclose(tau, np.asarray(t, np.float64), rtol=1e-6)
  logit = np.log(tau) - np.log1p(-tau)
  assert stats.kstest(logit, stats.norm(0.3, 0.8).cdf).pvalue > 1e-3
  np.testing.assert_array_equal(w(jnp.zeros(3), jnp.ones(3)), 1.0)
  with pytest.raises(ValueError, match="logit_std"):
    weighting.LogitNormal(std=0.0)


def test_bad_gamma_and_unknown_name():
  with pytest.raises(ValueError, match="min_snr_gamma"):
    weighting.MinSNR(gamma=0.0)
  with pytest.raises(UnknownNameError, match="edm, logit_normal, min_snr, snr, uniform"):
    weighting.get_weighting("p2")
  assert math.isclose(weighting.MinSNR().gamma, 5.0)
