"""DiffusionSpec: the static description of a diffusion process (hashable, jit-safe)."""

import dataclasses
from typing import Any

from genjax.diffusion import objectives, registry, schedules
from genjax.diffusion import weighting as weightings


@dataclasses.dataclass(frozen=True)
class DiffusionSpec:
  """Schedule, objective and loss weighting, each a frozen dataclass with its parameters."""

  schedule: schedules.Schedule = dataclasses.field(default_factory=schedules.CosineSchedule)
  objective: objectives.Objective = dataclasses.field(default_factory=objectives.VPrediction)
  weighting: weightings.Weighting = dataclasses.field(default_factory=weightings.Uniform)

  @classmethod
  def from_config(cls, cfg: Any) -> "DiffusionSpec":
    """From `config.diffusion` (a ConfigDict or a dict).

    Reads the names `schedule`, `objective`, `weighting` and each chosen class's
    parameters with `cfg.get(key, default)`: min_snr_gamma, sigma_data, p_mean,
    p_std, logit_mean, logit_std (in the base config) and, when present, sigma_min, sigma_max, rho,
    beta_start, beta_end, num_diffusion_steps, cosine_s, log_snr_min, t_min, and the
    VP schedules' karras grid range ratio_min, ratio_max (EDM's sigma_min, sigma_max).
    Unknown names raise UnknownNameError listing the valid ones.
    """
    def build(reg, keys, key, default, what):
      impl = registry.lookup(reg, cfg.get(key, default), what)
      return registry.from_mapping(impl, cfg, keys.get(impl))

    return cls(
        schedule=build(schedules.SCHEDULES, schedules.CONFIG_KEYS, "schedule", "cosine",
                       "diffusion.schedule"),
        objective=build(objectives.OBJECTIVES, {}, "objective", "v", "diffusion.objective"),
        weighting=build(weightings.WEIGHTINGS, weightings.CONFIG_KEYS, "weighting", "uniform",
                        "diffusion.weighting"),
    )

  @classmethod
  def create(cls, schedule: str = "cosine", objective: str = "v", weighting: str = "uniform",
             **params) -> "DiffusionSpec":
    """By name, e.g. create("edm", "edm", "edm", sigma_data=0.5, p_mean=-1.2).

    `params` use the config keys of `from_config`; a key that none of the three chosen
    classes reads is a ValueError naming it.
    """
    cfg = dict(schedule=schedule, objective=objective, weighting=weighting, **params)
    spec = cls.from_config(cfg)
    known = set()
    for part, keys in ((spec.schedule, schedules.CONFIG_KEYS),
                       (spec.objective, {}),
                       (spec.weighting, weightings.CONFIG_KEYS)):
      known |= registry.config_keys(type(part), keys.get(type(part)))
    unknown = sorted(set(params) - known)
    if unknown:
      raise ValueError(f"DiffusionSpec.create: parameters {unknown} are not read by schedule "
                       f"{schedule!r}, objective {objective!r} or weighting {weighting!r}; "
                       f"valid: {sorted(known)}")
    return spec
