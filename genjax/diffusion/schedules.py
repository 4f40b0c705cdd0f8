"""Noise schedules: x_t = alpha(t) * x0 + sigma(t) * eps, eps ~ N(0, I).

Each schedule has its own time variable t:

* VP schedules ("linear", "cosine"): t in [0, 1], alpha^2 + sigma^2 = 1, t = 0 is
  clean (alpha = 1, sigma = 0 exactly) and t = 1 the noisiest.
* "edm" (Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based
  Generative Models"): alpha = 1 and t = sigma in [0, sigma_max], their sigma(t) = t.
* "flow" (rectified flow: Liu et al. 2023, "Flow Straight and Fast"; Lipman et al.
  2023, "Flow Matching for Generative Modeling"; Esser et al. 2024, SD3): the straight
  path alpha = 1 - t, sigma = t, t in [0, 1].

Samplers only see t through this interface, so they run unchanged on every schedule:

  alpha_sigma(t) -> (alpha, sigma)   same shape as t (a [B] array or a scalar)
  log_snr(t)                         log(alpha^2 / sigma^2), clipped to <= LOG_SNR_MAX
  t_from_log_snr(log_snr)            the inverse of the unclipped log_snr
  ratio(t), t_from_ratio(ratio)      the noise ratio sigma / alpha (EDM's sigma) and its inverse
  sample_train_t(key, batch) -> [B]  training time distribution
  sampling_grid(steps, grid=None)    [steps+1] times from t_start <= t_max down to exactly 0
  c_noise(t)                         the scalar the network is conditioned on

Sampling grids, by name (GRIDS):

* "uniform": uniform in the schedule's own t from t_max to 0 (for VP the "trailing"
  spacing of Lin et al. 2024, "Common Diffusion Noise Schedules and Sample Steps are
  Flawed"; for "edm" uniform in sigma).
* "karras": Karras et al.'s rho-spaced grid (their eq. 5) in the noise ratio sigma / alpha
  from min(ratio_max, ratio(t_max)) to ratio_min, mapped back to t, then 0. In x / alpha
  the probability-flow ODE is the same for every schedule, so on this grid a
  deterministic sampler gives the same samples on every schedule (up to c_noise). For
  VP schedules ratio_max = 80 (EDM's sigma_max) starts at t_from_ratio(80) < 1
  (alpha ~ 0.0125), not at t = 1 (ratio 156 for "linear", 2.2e4 for "cosine").

`default_grid` is each schedule's own: "uniform" for VP, "karras" for "edm".

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
  """Common interface (see the module docstring). Subclasses are frozen dataclasses
  with the fields ratio_min, ratio_max and rho of the "karras" grid."""

  name = ""
  default_grid = "uniform"

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

  def ratio(self, t) -> jax.Array:
    """The noise ratio sigma / alpha (EDM's sigma, the std of the noise in x / alpha)."""
    alpha, sigma = self.alpha_sigma(t)
    return sigma / alpha

  def t_from_ratio(self, ratio) -> jax.Array:
    """The t where sigma / alpha = ratio (> 0): the inverse of `ratio`."""
    return self.t_from_log_snr(-2.0 * jnp.log(_f32(ratio)))

  def sample_train_t(self, key: jax.Array, batch: int) -> jax.Array:
    raise NotImplementedError

  def sampling_grid(self, steps: int, grid: str | None = None) -> jax.Array:
    """The times of `steps` sampling steps, [steps + 1] float32, strictly decreasing to 0.

    grid: a GRIDS name ("uniform", "karras"); None: this schedule's `default_grid`.
    """
    return get_grid(grid or self.default_grid)(self, steps)

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
  # The "karras" grid in sigma / alpha: EDM's sigma_min, sigma_max and rho.
  ratio_min: float = 0.002
  ratio_max: float = 80.0
  rho: float = 7.0

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
  # The "karras" grid in sigma / alpha: EDM's sigma_min, sigma_max and rho.
  ratio_min: float = 0.002
  ratio_max: float = 80.0
  rho: float = 7.0

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
    # cos(phi) = alpha cos(phi0), so sin(phi) = sqrt(sin^2 phi0 + cos^2 phi0 sigma^2):
    # atan2 of the two keeps t precise for small sigma, where arccos(~1) would not.
    log_snr = _f32(log_snr)
    alpha, sigma2 = jnp.sqrt(jax.nn.sigmoid(log_snr)), jax.nn.sigmoid(-log_snr)
    c0, s0 = math.cos(self._phi0), math.sin(self._phi0)
    phi = jnp.arctan2(jnp.sqrt(s0 * s0 + c0 * c0 * sigma2), alpha * c0)
    t = (phi - jnp.float32(self._phi0)) * jnp.float32((1.0 + self.s) / (0.5 * math.pi))
    return jnp.clip(t, 0.0, self.t_clip)


@dataclasses.dataclass(frozen=True)
class EDMSchedule(Schedule):
  """Karras et al. 2022 (EDM): alpha = 1, sigma = t.

  Training: ln(sigma) ~ N(p_mean, p_std^2). Sampling: the "karras" grid sigma_i =
  (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho for i < N,
  then sigma_N = 0 (their eq. 5). c_noise = ln(sigma) / 4.
  """

  name = "edm"
  default_grid = "karras"
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

  @property
  def ratio_min(self) -> float:
    return self.sigma_min

  @property
  def ratio_max(self) -> float:
    return self.sigma_max

  def t_from_log_snr(self, log_snr):
    return jnp.exp(-0.5 * _f32(log_snr))

  def t_from_ratio(self, ratio):
    return _f32(ratio)

  def sample_train_t(self, key, batch):
    """sigma = exp(p_mean + p_std * n), n ~ N(0, 1): [batch] float32."""
    return jnp.exp(self.p_mean + self.p_std * jax.random.normal(key, (batch,), jnp.float32))

  def c_noise(self, t):
    return 0.25 * jnp.log(jnp.maximum(_f32(t), _SIGMA_FLOOR))


@dataclasses.dataclass(frozen=True)
class FlowSchedule(Schedule):
  """Rectified flow: x_t = (1 - t) x0 + t eps, t in [0, 1] (Liu et al. 2023; the
  conditional optimal-transport path of Lipman et al. 2023 with sigma_min = 0).

  As for "cosine", time is clipped at the t where log_snr reaches `log_snr_min` (-20:
  t = 1 / (1 + e^-10), alpha = 4.5e-5), so alpha > 0 on all of [0, 1] and every sampler's
  log(alpha) stays finite; the schedule is flat beyond. Training: t ~ U[t_min, 1] (Liu
  et al.); the "logit_normal" weighting draws SD3's times instead. c_noise = 1000 t, the
  timestep SD3 conditions on.
  """

  name = "flow"
  log_snr_min: float = -20.0
  t_min: float = 0.0
  # The "karras" grid in sigma / alpha: EDM's sigma_min, sigma_max and rho.
  ratio_min: float = 0.002
  ratio_max: float = 80.0
  rho: float = 7.0

  @property
  def t_max(self) -> float:
    return 1.0

  @property
  def t_clip(self) -> float:
    """The time where log_snr(t) = log_snr_min: sigmoid(-log_snr_min / 2), float64."""
    return 1.0 / (1.0 + math.exp(0.5 * self.log_snr_min))

  def alpha_sigma(self, t):
    t = jnp.clip(_f32(t), 0.0, self.t_clip)
    return 1.0 - t, t

  def t_from_log_snr(self, log_snr):
    # sigma / alpha = t / (1 - t) = exp(-log_snr / 2).
    return jnp.clip(jax.nn.sigmoid(-0.5 * _f32(log_snr)), 0.0, self.t_clip)

  def t_from_ratio(self, ratio):
    ratio = _f32(ratio)
    return jnp.clip(ratio / (1.0 + ratio), 0.0, self.t_clip)

  def sample_train_t(self, key, batch):
    """t ~ U[t_min, 1]: [batch] float32."""
    return jax.random.uniform(key, (batch,), jnp.float32, self.t_min, 1.0)

  def c_noise(self, t):
    return _VP_TIME_SCALE * _f32(t)


def uniform_grid(schedule: Schedule, steps: int) -> jax.Array:
  """Uniform in t from t_max to 0: [steps + 1] float32."""
  steps = _check_steps(steps)
  return jnp.asarray(np.linspace(schedule.t_max, 0.0, steps + 1), jnp.float32)


def karras_grid(schedule: Schedule, steps: int) -> jax.Array:
  """Rho-spaced in sigma / alpha from min(ratio_max, ratio(t_max)) to ratio_min, as t,
  then 0: [steps + 1] float32 (Karras et al. 2022, eq. 5, for any schedule)."""
  steps = _check_steps(steps)
  lo, rho = float(schedule.ratio_min), float(schedule.rho)
  # A static function of (schedule, steps): evaluate it now even inside jit, so that it
  # enters the program as a constant and `top` can be compared in Python.
  with jax.ensure_compile_time_eval():
    top = float(schedule.ratio(schedule.t_max))
    hi = min(float(schedule.ratio_max), top)
    if not 0.0 < lo < hi or rho <= 0.0:
      raise ValueError(f"{schedule.name} schedule: the karras grid needs 0 < ratio_min < "
                       f"min(ratio_max, ratio(t_max)) = {hi:g} and rho > 0, got ratio_min={lo}, "
                       f"rho={rho}")
    frac = np.arange(steps, dtype=np.float64) / max(steps - 1, 1)
    ratios = (hi ** (1 / rho) + frac * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
    t = np.asarray(schedule.t_from_ratio(ratios), np.float64)
  if hi == top:
    t[0] = schedule.t_max  # not the inverse's round-off: exactly the end of the schedule
  return jnp.asarray(np.append(t, 0.0), jnp.float32)


GRIDS = {"uniform": uniform_grid, "karras": karras_grid}


def get_grid(name: str):
  """GRIDS[name]: (schedule, steps) -> [steps + 1] times; unknown names list the valid ones."""
  return registry.lookup(GRIDS, name, "sampling grid")


SCHEDULES: dict[str, type[Schedule]] = {
    "linear": LinearSchedule,
    "cosine": CosineSchedule,
    "edm": EDMSchedule,
    "flow": FlowSchedule,
}

# Config keys whose name differs from the dataclass field.
CONFIG_KEYS = {CosineSchedule: {"s": "cosine_s"},
               LinearSchedule: {"num_steps": "num_diffusion_steps"}}


def get_schedule(name: str, **params) -> Schedule:
  """SCHEDULES[name](**params); an unknown name raises UnknownNameError listing the names."""
  return registry.lookup(SCHEDULES, name, "diffusion.schedule")(**params)
