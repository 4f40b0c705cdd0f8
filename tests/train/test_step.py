"""The train step: data parallelism, skipped non-finite steps, no recompilation, gradient
accumulation, label dropout, FSDP."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import configs, data
from genjax.train import loop, sharding, startup, step


class Harness:
  """One initial state and batch; one compiled step per device count, built on first use."""

  def __init__(self, overrides):
    self.config = configs.load("tiny", overrides)
    *_, self.create = loop.build(self.config)
    self.key = jax.random.PRNGKey(0)
    self.state = jax.device_get(jax.jit(self.create)(self.key))
    loader = data.make_loader(self.config.data, global_batch_size=self.config.train.batch_size,
                              seed=0, shard_index=0, shard_count=1)
    self.batch = next(iter(loader))
    self._compiled = {}

  def step_fn(self, n_devices):
    if n_devices not in self._compiled:
      mesh = sharding.make_mesh(self.config.mesh, devices=jax.devices()[:n_devices])
      shardings = sharding.state_shardings(jax.eval_shape(self.create, self.key), mesh)
      self._compiled[n_devices] = mesh, shardings, loop.make_step_fn(self.config, mesh, shardings)
    return self._compiled[n_devices]

  def run(self, n_devices, batch=None):
    mesh, shardings, step_fn = self.step_fn(n_devices)
    state = jax.device_put(self.state, shardings)  # a fresh copy: the step donates it
    new_state, metrics = step_fn(state, loop.global_batch(batch or self.batch, mesh))
    return jax.device_get(new_state), jax.device_get(metrics)


@pytest.fixture(scope="module")
def harness(tiny_overrides):
  return Harness(tiny_overrides)


def _max_abs(a, b):
  return max(float(np.max(np.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_four_devices_match_one_device(harness):
  one_state, one_metrics = harness.run(1)
  four_state, four_metrics = harness.run(4)
  assert abs(one_metrics["loss"] - four_metrics["loss"]) <= 1e-5 * abs(one_metrics["loss"])
  assert _max_abs(one_state.params, four_state.params) <= 1e-5
  # The step really moved the parameters, so the comparison above means something.
  assert _max_abs(one_state.params, harness.state.params) > 1e-4


def test_nonfinite_batch_skips_the_update(harness):
  bad = dict(harness.batch, image=np.full_like(harness.batch["image"], np.nan))
  state, metrics = harness.run(4, batch=bad)
  assert metrics["finite"] == 0
  assert int(state.skipped) == 1 and int(state.step) == 1
  assert _max_abs(state.params, harness.state.params) == 0.0
  assert _max_abs(state.ema_params, harness.state.ema_params) == 0.0
  # A good batch trains with the same compiled program: no second trace.
  _, metrics = harness.run(4)
  assert metrics["finite"] == 1 and np.isfinite(metrics["loss"])
  assert harness.step_fn(4)[2]._cache_size() == 1


def test_start_up_init_options_keep_the_bits(harness):
  # genjax train compiles the state's init at LLVM level 1 on the CPU (faster to compile):
  # the initial state must be the one of the default options, bit for bit.
  mesh = sharding.make_mesh(harness.config.mesh, devices=jax.devices()[:1])
  shardings = sharding.state_shardings(jax.eval_shape(harness.create, harness.key), mesh)
  state = jax.device_get(startup.compile_init(harness.create, harness.key, shardings)(harness.key))
  leaves, expected = jax.tree.leaves(state), jax.tree.leaves(harness.state)
  assert len(leaves) == len(expected) > 10
  for got, want in zip(leaves, expected):
    np.testing.assert_array_equal(got, want)


def test_grad_accumulation_is_the_mean_over_micro_batches(harness):
  """train.grad_accum_steps = 2: the loss and gradient are the means of the two micro-batches'
  (examples i, i + 2, i + 4, ... of the batch, with key fold_in(key, i)), computed apart."""
  model, spec, _, step_cfg, _ = loop.build(harness.config)
  cfg = dataclasses.replace(step_cfg, grad_accum_steps=2)
  params = harness.state.params
  batch = {k: jnp.asarray(v) for k, v in harness.batch.items()}
  key = jax.random.PRNGKey(3)
  loss, grads = jax.jit(functools.partial(step._grads, model=model, spec=spec, cfg=cfg))(
      params, batch, key)
  one = jax.jit(jax.value_and_grad(functools.partial(step._loss, model=model, spec=spec,
                                                     cfg=cfg)))
  parts = [one(params, jax.tree.map(lambda a, i=i: a[i::2], batch), jax.random.fold_in(key, i))
           for i in range(2)]
  want_loss = (parts[0][0] + parts[1][0]) / 2
  want_grads = jax.tree.map(lambda a, b: (a + b) / 2, parts[0][1], parts[1][1])
  np.testing.assert_allclose(float(loss), float(want_loss), rtol=1e-6)
  scale = max(float(np.max(np.abs(g))) for g in jax.tree.leaves(want_grads))
  assert _max_abs(grads, want_grads) <= 1e-5 * scale
  # The micro-batches' gradients differ, so the mean is not either one of them.
  assert _max_abs(parts[0][1], parts[1][1]) > 1e-2 * scale


def test_label_dropout_replaces_labels_by_the_null_class(tiny_overrides):
  """Classifier-free guidance training: with train.label_dropout = 1 every label becomes the
  null class (label num_classes), so the loss is the one of the null labels without dropout;
  with dropout 0 the labels reach the model (another loss)."""
  config = configs.load("tiny", list(tiny_overrides) + ["model.num_classes=3"])
  model, spec, _, step_cfg, create = loop.build(config)
  params = jax.jit(create)(jax.random.PRNGKey(0)).params
  # Noise on every parameter: the zero-initialised output layer would hide the labels.
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(5), len(leaves))
  params = jax.tree.unflatten(tree, [p + 0.05 * jax.random.normal(k, p.shape)
                                     for p, k in zip(leaves, keys)])
  b, (h, w) = 4, config.data.image_size
  x0 = jax.random.uniform(jax.random.PRNGKey(1), (b, h, w, 3), minval=-1.0, maxval=1.0)
  labels = jnp.array([0, 1, 2, 1], jnp.int32)
  key = jax.random.PRNGKey(2)

  @functools.partial(jax.jit, static_argnums=2)
  def loss(labels, params, dropout):
    cfg = dataclasses.replace(step_cfg, label_dropout=dropout)
    return step._loss(params, {"image": x0, "label": labels}, key, model=model, spec=spec,
                      cfg=cfg)

  null = jnp.full_like(labels, 3)
  assert float(loss(labels, params, 1.0)) == float(loss(null, params, 0.0))
  assert float(loss(labels, params, 0.0)) != float(loss(null, params, 0.0))


def test_fsdp_matches_one_device(harness, tiny_overrides):
  """mesh.fsdp = 2 on 4 devices (parameters, EMA and Adam moments split over the fsdp axis,
  the batch over both axes) takes the step the one-device step takes."""
  fsdp = Harness(list(tiny_overrides) + ["mesh.fsdp=2"])
  _, shardings, _ = fsdp.step_fn(4)
  split = [s for s in jax.tree.leaves(shardings.params) if "fsdp" in tuple(s.spec)]
  assert split  # the comparison below is about split parameters, not only replicated ones
  one_state, one_metrics = harness.run(1)
  fsdp_state, fsdp_metrics = fsdp.run(4)
  assert abs(one_metrics["loss"] - fsdp_metrics["loss"]) <= 1e-5 * abs(one_metrics["loss"])
  assert _max_abs(one_state.params, fsdp_state.params) <= 1e-5
  assert _max_abs(one_state.opt_state, fsdp_state.opt_state) <= 1e-5
