"""What the network predicts ("eps", "v", "x0", "edm", "flow"), and how its output becomes x0_hat.

Shapes: x_t, x0, eps, net output: [B, ...] (images [B, H, W, C]); alpha, sigma: [B].
Every objective works with every schedule; all coefficients are written in (alpha,
sigma) without dividing by alpha where avoidable, so nothing blows up at VP t = 1.

Network input: r = sqrt(alpha^2 + sigma^2), the standard deviation of x_t for unit-
variance data. "eps", "v" and "x0" feed x_t / r: x_t itself for VP schedules (r = 1
up to float32 rounding), unit scale for the EDM schedule. "edm" feeds c_in * x_t; "flow" feeds x_t / (alpha + sigma),
the point of the straight path (1 - tau) x0 + tau eps.

`log_x0_weight(log_snr)` is log k with ||out - target||^2 = k ||x0_hat - x0||^2: the
weight the objective's own MSE puts on the x0 error; the loss weightings use it.
"""

import dataclasses

import jax
import jax.numpy as jnp

from genjax.diffusion import registry

# Divisions by sigma (eps from x0) or alpha (x0 from eps) are floored here: finite
# at sigma = 0, where those quantities are undefined and no sampler uses them.
_TINY = 1e-20


def expand(a: jax.Array, x: jax.Array) -> jax.Array:
  """[B] -> [B, 1, ..., 1] with x.ndim dims, for broadcasting against x."""
  a = jnp.asarray(a, jnp.float32)
  return a.reshape(a.shape + (1,) * (x.ndim - a.ndim))


class Objective:
  """Common interface; subclasses are frozen dataclasses."""

  name = ""

  def net_input(self, x_t, alpha, sigma) -> jax.Array:
    """What the network sees: [B, ...]."""
    raise NotImplementedError

  def target(self, x0, eps, alpha, sigma) -> jax.Array:
    """The regression target for x_t = alpha x0 + sigma eps: [B, ...]."""
    raise NotImplementedError

  def predictions(self, out, x_t, alpha, sigma) -> tuple[jax.Array, jax.Array]:
    """(x0_hat, eps_hat) from the network output `out`, both [B, ...]."""
    raise NotImplementedError

  def log_x0_weight(self, log_snr) -> jax.Array:
    """log k, ||out - target||^2 = k ||x0_hat - x0||^2: [B]."""
    raise NotImplementedError


def _eps_from_x0(x0_hat, x_t, alpha, sigma):
  return (x_t - expand(alpha, x_t) * x0_hat) / expand(jnp.maximum(sigma, _TINY), x_t)


def _scale_input(x_t, alpha, sigma):
  return x_t * expand(jax.lax.rsqrt(alpha * alpha + sigma * sigma), x_t)


@dataclasses.dataclass(frozen=True)
class EpsPrediction(Objective):
  """The network predicts the noise eps (Ho et al. 2020, "Denoising Diffusion
  Probabilistic Models"). x0_hat = (x_t - sigma eps_hat) / alpha; k = SNR."""

  name = "eps"

  def net_input(self, x_t, alpha, sigma):
    return _scale_input(x_t, alpha, sigma)

  def target(self, x0, eps, alpha, sigma):
    return eps

  def predictions(self, out, x_t, alpha, sigma):
    x0_hat = (x_t - expand(sigma, x_t) * out) / expand(jnp.maximum(alpha, _TINY), x_t)
    return x0_hat, out

  def log_x0_weight(self, log_snr):
    return jnp.asarray(log_snr, jnp.float32)


@dataclasses.dataclass(frozen=True)
class VPrediction(Objective):
  """v = alpha' eps - sigma' x0 with (alpha', sigma') = (alpha, sigma) / r, r =
  sqrt(alpha^2 + sigma^2) (Salimans & Ho 2022, "Progressive Distillation for Fast
  Sampling of Diffusion Models"; r = 1 for VP). Inverse: x0 = alpha' x_t / r -
  sigma' v, eps = sigma' x_t / r + alpha' v. k = 1 / sigma'^2 = SNR + 1."""

  name = "v"

  def net_input(self, x_t, alpha, sigma):
    return _scale_input(x_t, alpha, sigma)

  def target(self, x0, eps, alpha, sigma):
    inv_r = jax.lax.rsqrt(alpha * alpha + sigma * sigma)
    return expand(alpha * inv_r, x0) * eps - expand(sigma * inv_r, x0) * x0

  def predictions(self, out, x_t, alpha, sigma):
    inv_r = jax.lax.rsqrt(alpha * alpha + sigma * sigma)
    a, s = expand(alpha * inv_r, x_t), expand(sigma * inv_r, x_t)
    z = x_t * expand(inv_r, x_t)
    return a * z - s * out, s * z + a * out

  def log_x0_weight(self, log_snr):
    return jax.nn.softplus(jnp.asarray(log_snr, jnp.float32))


@dataclasses.dataclass(frozen=True)
class X0Prediction(Objective):
  """The network predicts x0 directly. k = 1."""

  name = "x0"

  def net_input(self, x_t, alpha, sigma):
    return _scale_input(x_t, alpha, sigma)

  def target(self, x0, eps, alpha, sigma):
    return x0

  def predictions(self, out, x_t, alpha, sigma):
    return out, _eps_from_x0(out, x_t, alpha, sigma)

  def log_x0_weight(self, log_snr):
    return jnp.zeros_like(jnp.asarray(log_snr, jnp.float32))


@dataclasses.dataclass(frozen=True)
class EDMPreconditioning(Objective):
  """D = c_skip x~ + c_out F(c_in x~, c_noise) (Karras et al. 2022, "Elucidating the
  Design Space of Diffusion-Based Generative Models", Table 1 and Appendix B.6).

  In the VE frame x~ = x_t / alpha, s = sigma / alpha:
    c_skip = sd^2 / (s^2 + sd^2), c_out = s sd / sqrt(s^2 + sd^2), c_in = 1 / sqrt(s^2 + sd^2),
  sd = sigma_data. Written on x_t with d^2 = sigma^2 + alpha^2 sd^2 (no 1/alpha):
    x0_hat = (alpha sd^2 / d^2) x_t + (sigma sd / d) F,  F's input = x_t / d.
  c_noise comes from the schedule (ln(sigma) / 4 for "edm", as in the paper).
  Target F* = (x0 - c_skip x~) / c_out = (sigma x0 / sd - alpha sd eps) / d;
  k = 1 / c_out^2 = SNR + 1 / sd^2 = lambda(sigma).
  """

  name = "edm"
  sigma_data: float = 0.5

  def coefficients(self, alpha, sigma):
    """(c_skip, c_out, c_in), each [B], with c_skip and c_in acting on x_t."""
    sd2 = self.sigma_data * self.sigma_data
    d2 = sigma * sigma + alpha * alpha * sd2
    inv_d = jax.lax.rsqrt(d2)
    return alpha * sd2 / d2, sigma * self.sigma_data * inv_d, inv_d

  def net_input(self, x_t, alpha, sigma):
    _, _, c_in = self.coefficients(alpha, sigma)
    return x_t * expand(c_in, x_t)

  def target(self, x0, eps, alpha, sigma):
    # (x0 - c_skip x_t) / c_out simplified: finite at sigma = 0, where c_out = 0.
    sd = self.sigma_data
    inv_d = jax.lax.rsqrt(sigma * sigma + alpha * alpha * (sd * sd))
    return expand(sigma * inv_d / sd, x0) * x0 - expand(alpha * sd * inv_d, x0) * eps

  def predictions(self, out, x_t, alpha, sigma):
    c_skip, c_out, _ = self.coefficients(alpha, sigma)
    x0_hat = expand(c_skip, x_t) * x_t + expand(c_out, x_t) * out
    return x0_hat, _eps_from_x0(x0_hat, x_t, alpha, sigma)

  def log_x0_weight(self, log_snr):
    return jnp.logaddexp(jnp.asarray(log_snr, jnp.float32),
                         -2.0 * jnp.log(jnp.float32(self.sigma_data)))


@dataclasses.dataclass(frozen=True)
class FlowPrediction(Objective):
  """Flow matching: the network predicts the velocity u = eps - x0 of the straight path
  (Lipman et al. 2023, "Flow Matching for Generative Modeling"; Liu et al. 2023,
  "Flow Straight and Fast: Learning to Generate and Transfer Data with Rectified Flow";
  Esser et al. 2024, "Scaling Rectified Flow Transformers", SD3).

  On any schedule, x_t / r with r = alpha + sigma is the rectified-flow point
  z = (1 - tau) x0 + tau eps at tau = sigma / r, so the target u = eps - x0 is the same
  for every schedule and the "flow" schedule (r = 1, tau = t) is the usual one.
  Inverse (exact, no division by alpha or sigma): x0 = z - tau u, eps = z + (1 - tau) u.
  x0_hat - x0 = -tau (u_hat - u), so k = 1 / tau^2 = (1 + sqrt(SNR))^2.
  """

  name = "flow"

  def net_input(self, x_t, alpha, sigma):
    return x_t / expand(alpha + sigma, x_t)

  def target(self, x0, eps, alpha, sigma):
    return eps - x0

  def predictions(self, out, x_t, alpha, sigma):
    r = alpha + sigma
    tau, z = expand(sigma / r, x_t), x_t / expand(r, x_t)
    return z - tau * out, z + (1.0 - tau) * out

  def log_x0_weight(self, log_snr):
    return 2.0 * jax.nn.softplus(0.5 * jnp.asarray(log_snr, jnp.float32))


OBJECTIVES: dict[str, type[Objective]] = {
    "eps": EpsPrediction,
    "v": VPrediction,
    "x0": X0Prediction,
    "edm": EDMPreconditioning,
    "flow": FlowPrediction,
}


def get_objective(name: str, **params) -> Objective:
  """OBJECTIVES[name](**params); an unknown name raises UnknownNameError listing the names."""
  return registry.lookup(OBJECTIVES, name, "diffusion.objective")(**params)
