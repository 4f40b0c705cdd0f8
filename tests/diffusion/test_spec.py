"""DiffusionSpec from configs and by name."""

import jax
import pytest

from genjax.configs import base
from genjax.diffusion import DiffusionSpec, objectives, schedules, weighting
from genjax.diffusion.registry import UnknownNameError


def _locked_config(**overrides):
  c = base.get_config()
  for k, v in overrides.items():
    setattr(c.diffusion, k, v)
  c.lock()
  return c.diffusion


def test_from_base_config():
  spec = DiffusionSpec.from_config(_locked_config())
  assert spec == DiffusionSpec(schedules.CosineSchedule(), objectives.VPrediction(),
                               weighting.Uniform())
  hash(spec)  # static argument of jitted functions


def test_from_config_reads_parameters():
  spec = DiffusionSpec.from_config(_locked_config(
      schedule="edm", objective="edm", weighting="min_snr", min_snr_gamma=3.0, sigma_data=0.25,
      p_mean=-1.0, p_std=1.4))
  assert spec.schedule == schedules.EDMSchedule(p_mean=-1.0, p_std=1.4)
  assert spec.objective == objectives.EDMPreconditioning(sigma_data=0.25)
  assert spec.weighting == weighting.MinSNR(gamma=3.0)
  # Keys that are not in the base config come from cfg.get(..., default).
  spec = DiffusionSpec.from_config({"schedule": "edm", "rho": 5, "sigma_max": 40.0})
  assert spec.schedule.rho == 5.0 and isinstance(spec.schedule.rho, float)
  assert spec.schedule.sigma_max == 40.0
  spec = DiffusionSpec.from_config({"schedule": "cosine", "ratio_max": 20, "rho": 5})
  assert spec.schedule == schedules.CosineSchedule(ratio_max=20.0, rho=5.0)


@pytest.mark.parametrize("key,value,names", [
    ("schedule", "sqrt", "cosine, edm, flow, linear"),
    ("objective", "score", "edm, eps, flow, v, x0"),
    ("weighting", "p2", "edm, logit_normal, min_snr, snr, uniform"),
])
def test_unknown_names_are_errors_listing_choices(key, value, names):
  with pytest.raises(UnknownNameError, match=f"diffusion.{key} '{value}'.*{names}"):
    DiffusionSpec.from_config(_locked_config(**{key: value}))


def test_create_by_name_and_unknown_parameter():
  spec = DiffusionSpec.create("linear", "eps", "min_snr", min_snr_gamma=2.0, t_min=0.01)
  assert spec.schedule == schedules.LinearSchedule(t_min=0.01)
  assert spec.weighting.gamma == 2.0
  with pytest.raises(ValueError, match="p_mean"):
    DiffusionSpec.create("cosine", "v", "uniform", p_mean=0.0)


def test_spec_is_a_static_jit_argument():
  calls = []

  def f(x, spec):
    calls.append(spec)
    return spec.schedule.alpha_sigma(x)[1]

  jf = jax.jit(f, static_argnums=1)
  jf(0.5, DiffusionSpec.create())
  jf(0.25, DiffusionSpec.create())  # an equal spec: no retrace
  assert len(calls) == 1
