"""Noise schedules: x_t = alpha(t) * x0 + sigma(t) * eps, eps ~ N(0, I).

Each schedule has its own time variable t:

* VP schedules ("linear", "cosine"): t in [0, 1], alpha^2 + sigma^2 = 1, t = 0 is
  clean (alpha = 1, sigma = 0 exactly) and t = 1 the noisiest.
* "edm" (Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based
  Generative Models"): alpha = 1 and t = sigma in [0, sigma_max], their sigma(t) = t.

Samplers only see t through this interface, so they run unchanged on every schedule:

  alpha_sigma(t) -> (alpha, sigma)   same shape as t (a [B] array or a scalar)
  log_snr(t)                         log(alpha^2 / sigma^2), clipped to <= LOG_SNR_MAX
  t_from_log_snr(log_snr)            the inverse of the unclipped log_snr
  sample_train_t(key, batch) -> [B]  training time distribution
  sampling_grid(steps) -> [steps+1]  from t_max (high noise) down to exactly 0
  c_noise(t)                         the scalar the network is conditioned on

All outputs are float32 and finite at both ends of the time range (sigma = 0 gives
log_snr = LOG_SNR_MAX, c_noise is floored); no NaN anywhere in [0, t_max].
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from genjax.diffusion import registry

# log_snr is clipped here so that it is finite at sigma = 0 and exp(log_snr) still
# fits in float32 (max ~ exp(88)). Nothing trains or samples near it: the smallest
# nonzero sigma any default schedule reaches is ~2e-3 (log_snr ~ 12).
LOG_SNR_MAX = 40.0

# VP schedules condition the network on 1000 * t: the index of DDPM's 1000-step chain.
_VP_TIME_SCALE = 1000.0

# EDM's c_noise = log(sigma) / 4 is -inf at sigma = 0; the network is never evaluated
# there by the samplers, but the floor keeps any such call finite.
_SIGMA_FLOOR = 1e-20


def _f32(t) -> jax.Array:
  return jnp.asarray(t, jnp.float32)


def _check_steps(steps) -> int:
  if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
    raise ValueError(f"sampling steps must be an integer >= 1, got {steps!r}")
  return int(steps)


class Schedule:
  """Common interface (see the module docstring). Subclasses are frozen dataclasses."""

  name = ""

  @property
  def t_max(self) -> float:
    raise NotImplementedError

  def alpha_sigma(self, t) -> tuple[jax.Array, jax.Array]:
    raise NotImplementedError

  def log_snr(self, t) -> jax.Array:
    """log(alpha^2 / sigma^2), clipped above at LOG_SNR_MAX (sigma = 0 at t = 0)."""
    alpha, sigma = self.alpha_sigma(t)
    return jnp.minimum(2.0 * (jnp.log(alpha) - jnp.log(sigma)), LOG_SNR_MAX)

  def t_from_log_snr(self, log_snr) -> jax.Array:
    raise NotImplementedError

  def sample_train_t(self, key: jax.Array, batch: int) -> jax.Array:
    raise NotImplementedError

  def sampling_grid(self, steps: int) -> jax.Array:
    raise NotImplementedError

  def c_noise(self, t) -> jax.Array:
    raise NotImplementedError


class _VPSchedule(Schedule):
  """Variance preserving: t in [0, 1], uniform training times in [t_min, 1]."""

  t_min: float

  @property
  def t_max(self) -> float:
    return 1.0

  def sample_train_t(self, key, batch):
    """t ~ U[t_min, 1]: [batch] float32."""
    return jax.random.uniform(key, (batch,), jnp.float32, self.t_min, 1.0)

  def sampling_grid(self, steps):
    """Uniform in t from 1 to 0: [steps + 1] float32.

    Starting at t = 1 exactly (the "trailing" spacing of Lin et al. 2024, "Common
    Diffusion Noise Schedules and Sample Steps are Flawed").
    """
    steps = _check_steps(steps)
    return jnp.asarray(np.linspace(1.0, 0.0, steps + 1), jnp.float32)

  def c_noise(self, t):
    """1000 * t: DDPM's step index, so t = i / 1000 is discrete step i."""
    return _VP_TIME_SCALE * _f32(t)


@dataclasses.dataclass(frozen=True)
class LinearSchedule(_VPSchedule):
  """DDPM's linear betas (Ho et al. 2020), in continuous time.

  The discrete chain has betas linspace(beta_start, beta_end, num_steps) and
  alpha_bar_i = prod_{j <= i} (1 - beta_j). In continuous time we interpolate
  log(alpha_bar) linearly between the grid points t = i / num_steps, i.e. a piecewise
  constant rate beta(t) = -num_steps * log(1 - beta_i) on ((i-1)/N, i/N]. So
  alpha(i/N)^2 equals the discrete alpha_bar_i (the table is built in float64) and
  1000 steps of the ancestral sampler reproduce DDPM's chain. (The closed-form
  integral of a linear beta(t), as in Song et al.'s VP-SDE, differs from the discrete
  product by up to ~7% in alpha_bar near t = 1, so we do not use it.)
  """

  name = "linear"
  beta_start: float = 1e-4
  beta_end: float = 0.02
  num_steps: int = 1000
  t_min: float = 1e-3   # the first step of the discrete chain (sigma = 0.01)

  def _log_alpha_bar_table(self) -> np.ndarray:
    """log(alpha_bar_i) at t = i / num_steps, i = 0..num_steps: [N + 1] float64."""
    betas = np.linspace(self.beta_start, self.beta_end, self.num_steps, dtype=np.float64)
    return np.concatenate([[0.0], np.cumsum(np.log1p(-betas))])

  def log_alpha_bar(self, t) -> jax.Array:
    """log(alpha(t)^2), piecewise linear in t; t is clipped to [0, 1]."""
    table = self._log_alpha_bar_table()
    x = jnp.clip(_f32(t), 0.0, 1.0) * self.num_steps
    return jnp.interp(x, jnp.arange(self.num_steps + 1, dtype=jnp.float32),
                      jnp.asarray(table, jnp.float32))

  def alpha_sigma(self, t):
    lab = self.log_alpha_bar(t)
    # sigma^2 = 1 - alpha_bar via expm1: exact to float32 precision for t -> 0.
    return jnp.exp(0.5 * lab), jnp.sqrt(-jnp.expm1(lab))

  def t_from_log_snr(self, log_snr):
    # alpha_bar = sigmoid(log_snr); the table is decreasing, interp wants increasing.
    lab = jax.nn.log_sigmoid(_f32(log_snr))
    table = self._log_alpha_bar_table()
    grid = np.linspace(0.0, 1.0, self.num_steps + 1)
    return jnp.interp(-lab, jnp.asarray(-table, jnp.float32), jnp.asarray(grid, jnp.float32))


@dataclasses.dataclass(frozen=True)
class CosineSchedule(_VPSchedule):
  """Cosine schedule of Nichol & Dhariwal 2021 ("Improved DDPM"), continuous time.

  alpha(t)^2 = f(t) / f(0), f(t) = cos^2(pi/2 * (t + s) / (1 + s)). The discrete
  version clips betas at 0.999 because alpha -> 0 at t = 1; here time is clipped
  instead at the t where log_snr reaches `log_snr_min` (-20 by default, about the
  log_snr of the discrete clipped chain's last step), so alpha(1) = exp(-10) > 0 and
  the schedule is flat beyond. sigma is computed as
  sqrt(sin(d) sin(2 phi0 + d)) / cos(phi0), d = phi - phi0, with no cancellation near t = 0.
  """

  name = "cosine"
  s: float = 0.008
  log_snr_min: float = -20.0
  t_min: float = 1e-3

  @property
  def _phi0(self) -> float:
    return 0.5 * math.pi * self.s / (1.0 + self.s)

  @property
  def t_clip(self) -> float:
    """The time where log_snr(t) = log_snr_min (Python float, computed in float64)."""
    cos_phi = math.sqrt(1.0 / (1.0 + math.exp(-self.log_snr_min))) * math.cos(self._phi0)
    return min(1.0, (math.acos(cos_phi) - self._phi0) * (1.0 + self.s) / (0.5 * math.pi))

  def alpha_sigma(self, t):
    t = jnp.clip(_f32(t), 0.0, self.t_clip)
    phi0 = jnp.float32(self._phi0)
    d = t * jnp.float32(0.5 * math.pi / (1.0 + self.s))
    cos0 = jnp.cos(phi0)
    alpha = jnp.cos(phi0 + d) / cos0
    sigma = jnp.sqrt(jnp.sin(d) * jnp.sin(2.0 * phi0 + d)) / cos0
    return alpha, sigma

  def t_from_log_snr(self, log_snr):
    alpha = jnp.sqrt(jax.nn.sigmoid(_f32(log_snr)))
    phi = jnp.arccos(jnp.clip(alpha * jnp.cos(jnp.float32(self._phi0)), -1.0, 1.0))
    t = (phi - jnp.float32(self._phi0)) * jnp.float32((1.0 + self.s) / (0.5 * math.pi))
    return jnp.clip(t, 0.0, self.t_clip)


@dataclasses.dataclass(frozen=True)
class EDMSchedule(Schedule):
  """Karras et al. 2022 (EDM): alpha = 1, sigma = t.

  Training: ln(sigma) ~ N(p_mean, p_std^2). Sampling: sigma_i = (sigma_max^(1/rho) +
  i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho for i < N, then sigma_N = 0
  (their eq. 5). c_noise = ln(sigma) / 4.
  """

  name = "edm"
  sigma_min: float = 0.002
  sigma_max: float = 80.0
  rho: float = 7.0
  p_mean: float = -1.2
  p_std: float = 1.2

  @property
  def t_max(self) -> float:
    return self.sigma_max

  def alpha_sigma(self, t):
    sigma = jnp.maximum(_f32(t), 0.0)
    return jnp.ones_like(sigma), sigma

  def t_from_log_snr(self, log_snr):
    return jnp.exp(-0.5 * _f32(log_snr))

  def sample_train_t(self, key, batch):
    """sigma = exp(p_mean + p_std * n), n ~ N(0, 1): [batch] float32."""
    return jnp.exp(self.p_mean + self.p_std * jax.random.normal(key, (batch,), jnp.float32))

  def sampling_grid(self, steps):
    """Karras rho-spaced sigmas from sigma_max to sigma_min, then 0: [steps + 1] float32."""
    steps = _check_steps(steps)
    inv_rho = 1.0 / self.rho
    frac = np.arange(steps, dtype=np.float64) / max(steps - 1, 1)
    lo, hi = self.sigma_min ** inv_rho, self.sigma_max ** inv_rho
    sigmas = (hi + frac * (lo - hi)) ** self.rho
    return jnp.asarray(np.append(sigmas, 0.0), jnp.float32)

  def c_noise(self, t):
    return 0.25 * jnp.log(jnp.maximum(_f32(t), _SIGMA_FLOOR))


SCHEDULES: dict[str, type[Schedule]] = {
    "linear": LinearSchedule,
    "cosine": CosineSchedule,
    "edm": EDMSchedule,
}

# Config keys whose name differs from the dataclass field.
CONFIG_KEYS = {CosineSchedule: {"s": "cosine_s"},
               LinearSchedule: {"num_steps": "num_diffusion_steps"}}


def get_schedule(name: str, **params) -> Schedule:
  """SCHEDULES[name](**params); an unknown name raises UnknownNameError listing the names."""
  return registry.lookup(SCHEDULES, name, "diffusion.schedule")(**params)
