"""Loss weightings by name.

A weighting is defined by the weight w(t) it puts on the x0 error ||x0_hat - x0||^2
(except "uniform"); the loss is computed in the objective's own space, where the
same loss is (w / k) ||out - target||^2 with k = exp(objective.log_x0_weight). So
one weighting means the same thing for every objective. Everything is computed from
log_snr in log space: no overflow, no 0/0 at either end of the schedule.

  "uniform":  w / k = 1, the objective's plain MSE (eps: Ho et al.'s L_simple).
  "snr":      w = SNR; for eps prediction the same as "uniform".
  "min_snr":  w = min(SNR, gamma) (Hang et al. 2023, "Efficient Diffusion Training
              via Min-SNR Weighting Strategy"): eps: min(SNR, g) / SNR; v: min(SNR, g) /
              (SNR + 1); x0: min(SNR, g).
  "edm":      w = lambda(sigma) = (s^2 + sd^2) / (s sd)^2 with s = sigma / alpha
              (Karras et al. 2022, eq. 8 / Table 1) = SNR + 1 / sd^2; for the "edm"
              objective exactly 1 in F-space.
  "logit_normal": w / k = 1, with training times drawn logit-normally instead of from
              the schedule (Esser et al. 2024, "Scaling Rectified Flow Transformers for
              High-Resolution Image Synthesis" (SD3), sec. 3.1 and 5.1: their best
              sampler "lognorm(0.00, 1.00)"): in the rectified-flow time tau =
              sigma / (alpha + sigma), logit(tau) ~ N(logit_mean, logit_std^2), i.e.
              log_snr = -2 logit(tau) ~ N(-2 logit_mean, 4 logit_std^2), mapped to the
              schedule's t. On the "flow" schedule t = tau. SD3 read it as a weighting:
              relative to uniform t the loss weight is the logit-normal density; drawing
              the times instead gives the same expected loss with less variance.

Every weighting also draws the training times: `sample_train_t(key, batch, schedule)`,
the schedule's own distribution except for "logit_normal".
"""

import dataclasses
import math

import jax
import jax.numpy as jnp

from genjax.diffusion import registry


class Weighting:
  """Common interface; subclasses are frozen dataclasses."""

  name = ""

  def __call__(self, log_snr: jax.Array, log_k: jax.Array) -> jax.Array:
    """Weight of the objective-space squared error: [B] float32.

    Args:
      log_snr: [B] log(alpha^2 / sigma^2).
      log_k: [B] the objective's log_x0_weight(log_snr).
    """
    return jnp.exp(self.log_x0_weight(log_snr) - log_k)

  def log_x0_weight(self, log_snr: jax.Array) -> jax.Array:
    """log w(t), the weight on the x0-space error: [B]."""
    raise NotImplementedError

  def sample_train_t(self, key: jax.Array, batch: int, schedule) -> jax.Array:
    """Training times [batch] float32 of `schedule`: its own distribution by default."""
    return schedule.sample_train_t(key, batch)


@dataclasses.dataclass(frozen=True)
class Uniform(Weighting):
  name = "uniform"

  def __call__(self, log_snr, log_k):
    return jnp.ones_like(jnp.asarray(log_k, jnp.float32))


@dataclasses.dataclass(frozen=True)
class SNRWeighting(Weighting):
  name = "snr"

  def log_x0_weight(self, log_snr):
    return jnp.asarray(log_snr, jnp.float32)


@dataclasses.dataclass(frozen=True)
class MinSNR(Weighting):
  name = "min_snr"
  gamma: float = 5.0

  def __post_init__(self):
    if not self.gamma > 0:
      raise ValueError(f"diffusion.min_snr_gamma must be > 0, got {self.gamma}")

  def log_x0_weight(self, log_snr):
    return jnp.minimum(jnp.asarray(log_snr, jnp.float32), math.log(self.gamma))


@dataclasses.dataclass(frozen=True)
class EDMWeighting(Weighting):
  name = "edm"
  sigma_data: float = 0.5

  def log_x0_weight(self, log_snr):
    # Same expression as EDMPreconditioning.log_x0_weight, so the ratio is exactly 1.
    return jnp.logaddexp(jnp.asarray(log_snr, jnp.float32),
                         -2.0 * jnp.log(jnp.float32(self.sigma_data)))


@dataclasses.dataclass(frozen=True)
class LogitNormal(Weighting):
  """SD3's logit-normal time sampling (see the module docstring); loss weight 1."""

  name = "logit_normal"
  mean: float = 0.0
  std: float = 1.0

  def __post_init__(self):
    if not self.std > 0:
      raise ValueError(f"diffusion.logit_std must be > 0, got {self.std}")

  def __call__(self, log_snr, log_k):
    return jnp.ones_like(jnp.asarray(log_k, jnp.float32))

  def sample_train_t(self, key, batch, schedule):
    """t with logit(sigma / (alpha + sigma)) ~ N(mean, std^2): [batch] float32."""
    logit_tau = self.mean + self.std * jax.random.normal(key, (batch,), jnp.float32)
    return schedule.t_from_log_snr(-2.0 * logit_tau)


WEIGHTINGS: dict[str, type[Weighting]] = {
    "uniform": Uniform,
    "snr": SNRWeighting,
    "min_snr": MinSNR,
    "edm": EDMWeighting,
    "logit_normal": LogitNormal,
}

CONFIG_KEYS = {MinSNR: {"gamma": "min_snr_gamma"},
               LogitNormal: {"mean": "logit_mean", "std": "logit_std"}}


def get_weighting(name: str, **params) -> Weighting:
  """WEIGHTINGS[name](**params); an unknown name raises UnknownNameError listing the names."""
  return registry.lookup(WEIGHTINGS, name, "diffusion.weighting")(**params)
