"""The training loss: zero for the oracle network, closed forms, weighting, pixel weights."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.diffusion import (DiffusionSpec, objectives, per_example_loss, sample_t_and_noise,
                              schedules, training_loss)

SHAPE = (8, 4, 6, 3)  # non-square images
SCHEDULES = ("linear", "cosine", "edm", "flow")
OBJECTIVES = ("eps", "v", "x0", "edm", "flow")


def _x0(seed=0):
  return jnp.tanh(jax.random.normal(jax.random.key(seed), SHAPE))


def _oracle_net(spec, x0):
  """Knows x0, so it can compute the exact target from its input (x_in, c_noise)."""
  schedule, objective = spec.schedule, spec.objective

  def net(x_in, c_noise):
    t = jnp.exp(4.0 * c_noise) if isinstance(schedule, schedules.EDMSchedule) else c_noise / 1000
    alpha, sigma = schedule.alpha_sigma(t)
    x_t = x_in / objective.net_input(jnp.ones_like(x_in), alpha, sigma)
    eps = (x_t - objectives.expand(alpha, x0) * x0) / objectives.expand(sigma, x0)
    return objective.target(x0, eps, alpha, sigma)

  return net


@pytest.mark.parametrize("sched", SCHEDULES)
@pytest.mark.parametrize("obj", OBJECTIVES)
def test_loss_is_zero_for_the_exact_target(sched, obj):
  spec = DiffusionSpec.create(sched, obj, "min_snr")
  x0 = _x0()
  loss = training_loss(_oracle_net(spec, x0), x0, jax.random.key(1), spec)
  baseline = training_loss(lambda x, c: jnp.zeros_like(x), x0, jax.random.key(1), spec)
  assert loss.shape == (SHAPE[0],) and loss.dtype == jnp.float32
  # Zero up to float32 rounding of the round trip x_t -> eps, relative to a zero network.
  assert float(jnp.max(loss)) < 1e-7 * float(jnp.mean(baseline)) + 1e-10


def test_x0_objective_with_zero_network_is_mean_square_of_x0():
  spec = DiffusionSpec.create("cosine", "x0", "uniform")
  x0 = _x0()
  loss = training_loss(lambda x, c: jnp.zeros_like(x), x0, jax.random.key(2), spec)
  np.testing.assert_allclose(loss, np.mean(np.square(np.asarray(x0, np.float64)), axis=(1, 2, 3)),
                             rtol=1e-6)


def test_eps_objective_with_zero_network_is_mean_square_of_noise():
  spec = DiffusionSpec.create("linear", "eps", "uniform")
  x0 = _x0()
  key = jax.random.key(3)
  _, eps = sample_t_and_noise(key, SHAPE, spec.schedule)
  loss = training_loss(lambda x, c: jnp.zeros_like(x), x0, key, spec)
  np.testing.assert_allclose(loss, np.mean(np.square(np.asarray(eps, np.float64)), axis=(1, 2, 3)),
                             rtol=1e-6)


@pytest.mark.parametrize("obj", OBJECTIVES)
def test_weighting_multiplies_the_plain_objective_mse(obj):
  x0 = _x0()
  t = jnp.linspace(0.05, 0.95, SHAPE[0])
  eps = jax.random.normal(jax.random.key(4), SHAPE)
  net = lambda x, c: 0.3 * x
  plain = per_example_loss(net, x0, t, eps, DiffusionSpec.create("cosine", obj, "uniform"))
  spec = DiffusionSpec.create("cosine", obj, "min_snr", min_snr_gamma=5.0)
  weighted = per_example_loss(net, x0, t, eps, spec)
  alpha, sigma = (np.asarray(a, np.float64) for a in spec.schedule.alpha_sigma(t))
  snr = alpha**2 / sigma**2
  k = {"eps": snr, "v": snr + 1, "x0": 1.0 + 0 * snr, "edm": snr + 1 / 0.5**2,
       "flow": (1 + np.sqrt(snr))**2}[obj]
  np.testing.assert_allclose(weighted, np.asarray(plain) * np.minimum(snr, 5.0) / k, rtol=1e-4)


def test_training_loss_uses_sample_t_and_noise():
  spec = DiffusionSpec.create("edm", "edm", "edm")
  x0, key = _x0(), jax.random.key(5)
  net = lambda x, c: jnp.sin(x) * c[:, None, None, None]
  t, eps = sample_t_and_noise(key, SHAPE, spec.schedule)
  np.testing.assert_array_equal(training_loss(net, x0, key, spec),
                                per_example_loss(net, x0, t, eps, spec))

  # A weighting that draws its own times (SD3's logit-normal) is used for them.
  spec = DiffusionSpec.create("flow", "flow", "logit_normal", logit_mean=0.5)
  t, eps = sample_t_and_noise(key, SHAPE, spec.schedule, spec.weighting)
  k_t, _ = jax.random.split(key)
  np.testing.assert_array_equal(t, spec.weighting.sample_train_t(k_t, SHAPE[0], spec.schedule))
  np.testing.assert_array_equal(training_loss(net, x0, key, spec),
                                per_example_loss(net, x0, t, eps, spec))


@pytest.mark.parametrize("pixel_weight", [jnp.ones((SHAPE[1],)), jnp.ones(SHAPE[:3] + (1,)),
                                          3.0 * jnp.ones((1,) + SHAPE[1:])])
def test_constant_pixel_weight_is_the_plain_mean(pixel_weight):
  spec = DiffusionSpec.create()
  x0, key = _x0(), jax.random.key(6)
  net = lambda x, c: 0.5 * x
  np.testing.assert_allclose(training_loss(net, x0, key, spec, pixel_weight=pixel_weight),
                             training_loss(net, x0, key, spec), rtol=1e-6)


def test_row_weights_are_a_weighted_mean():
  spec = DiffusionSpec.create("cosine", "x0", "uniform")
  x0 = _x0()
  lat = (np.arange(SHAPE[1]) + 0.5) / SHAPE[1] * np.pi - np.pi / 2
  w = np.cos(lat)  # equirectangular rows: area ~ cos(latitude)
  loss = training_loss(lambda x, c: jnp.zeros_like(x), x0, jax.random.key(7), spec,
                       pixel_weight=jnp.asarray(w, jnp.float32))
  sq = np.square(np.asarray(x0, np.float64))
  ref = np.einsum("bhwc,h->b", sq, w) / (w.sum() * SHAPE[2] * SHAPE[3])
  np.testing.assert_allclose(loss, ref, rtol=1e-5)


def test_bad_pixel_weight_shape():
  spec = DiffusionSpec.create()
  with pytest.raises(ValueError, match="pixel_weight shape"):
    training_loss(lambda x, c: x, _x0(), jax.random.key(0), spec,
                  pixel_weight=jnp.ones((SHAPE[2],)))


def test_gradient_is_finite_and_jit_compiles_once():
  spec = DiffusionSpec.create("cosine", "v", "min_snr")
  x0 = _x0()

  def mean_loss(w, key):
    return jnp.mean(training_loss(lambda x, c: w * x, x0, key, spec))

  grad = jax.jit(jax.grad(mean_loss))
  for i in range(3):
    assert np.isfinite(float(grad(jnp.float32(0.1), jax.random.key(i))))
  assert grad._cache_size() == 1
