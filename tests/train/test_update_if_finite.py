"""update_if_finite: the optimizer step and EMA under one lax.cond give the same numbers as the
per-leaf select it replaced, and update the donated state in place."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genjax import configs
from genjax.train import optimizer
from genjax.train.step import ema_update, keep_if_finite, update_if_finite

EMA_DECAY = 0.99


def _select_per_leaf(finite, grads, params, ema_params, opt_state, *, tx, ema_decay):
  """The train step's update before update_if_finite (commit c229467): the reference."""
  updates, new_opt_state = tx.update(grads, opt_state, params)
  new_params = optax.apply_updates(params, updates)
  new_ema = ema_update(new_params, ema_params, ema_decay)
  return (keep_if_finite(finite, new_params, params), keep_if_finite(finite, new_ema, ema_params),
          keep_if_finite(finite, new_opt_state, opt_state))


def _step(update, tx):
  def step(trees, grads):
    finite = jnp.isfinite(optax.tree.norm(grads))
    return update(finite, grads, *trees, tx=tx, ema_decay=EMA_DECAY)
  return jax.jit(step, donate_argnums=0)


@pytest.fixture(scope="module")
def setup():
  # The real chain (clipping, warm-up schedule, masked weight decay), weight decay switched on.
  train_cfg = configs.load("tiny", ["train.weight_decay=0.01", "train.warmup_steps=2"]).train
  tx = optimizer.make_optimizer(train_cfg)
  keys = jax.random.split(jax.random.PRNGKey(0), 4)
  params = {"dense": {"kernel": jax.random.normal(keys[0], (48, 64)),
                      "bias": jax.random.normal(keys[1], (64,))},
            "conv": {"kernel": jax.random.normal(keys[2], (3, 3, 8, 16))}}
  ema = jax.tree.map(lambda a: a + 0.5, params)
  trees = (params, ema, tx.init(params))
  grad_keys = jax.random.split(keys[3], 4)
  # Step 1 is clipped (global norm > grad_clip), step 3 has a NaN and must change nothing.
  grads = [jax.tree.map(lambda a, k=k, s=s: s * jax.random.normal(k, a.shape), params)
           for k, s in zip(grad_keys, (3.0, 1e-3, 1e-3, 1e-3))]
  grads[2] = jax.tree.map(lambda a: a.at[(0,) * a.ndim].set(jnp.nan), grads[2])
  return tx, trees, grads


def _run(step, trees, grads):
  trees = jax.tree.map(jnp.copy, trees)  # the step donates its input
  history = []
  for g in grads:
    trees = step(trees, g)
    history.append(jax.device_get(trees))
  return history


def test_same_numbers_as_the_select_per_leaf(setup):
  tx, trees, grads = setup
  new = _run(_step(update_if_finite, tx), trees, grads)
  old = _run(_step(_select_per_leaf, tx), trees, grads)
  for i, ((params, ema, opt_state), (params_ref, ema_ref, opt_state_ref)) in enumerate(
      zip(new, old)):
    for x, y in zip(jax.tree.leaves((params, opt_state)), jax.tree.leaves((params_ref,
                                                                           opt_state_ref))):
      np.testing.assert_array_equal(x, y, err_msg=f"step {i}")
    # The EMA may differ by float32 rounding: the old program recomputed the new parameters
    # inside the EMA's fusion (rounded differently from the stored ones), the new one reads
    # the stored new parameters. A few ulps of its terms' magnitude (not of the result, which
    # can cancel to near zero).
    for x, y, p in zip(jax.tree.leaves(ema), jax.tree.leaves(ema_ref), jax.tree.leaves(params)):
      bound = 4 * np.finfo(np.float32).eps * (np.abs(p) + np.abs(y))
      assert np.all(np.abs(x - y) <= bound), f"step {i}: {np.max(np.abs(x - y) / bound)}"
  # The NaN step (index 2) left params, EMA and optimizer state (count included) as they were.
  for x, y in zip(jax.tree.leaves(new[2]), jax.tree.leaves(new[1])):
    np.testing.assert_array_equal(x, y)
  # The good steps moved everything: the comparisons above mean something.
  params0, ema0, _ = jax.device_get(trees)
  assert all(np.max(np.abs(a - b)) > 1e-4 for a, b in zip(jax.tree.leaves(new[0][0]),
                                                            jax.tree.leaves(params0)))
  assert all(np.max(np.abs(a - b)) > 1e-6 for a, b in zip(jax.tree.leaves(new[0][1]),
                                                            jax.tree.leaves(ema0)))


def test_donated_state_is_updated_in_place(setup):
  """The select per leaf makes XLA copy the parameters and both Adam moments (here 2.7x the
  parameters' bytes of temporaries); under the cond what is left is about one parameter
  tree (the clipped gradients: the gradients are an input here, not a temporary)."""
  tx, trees, grads = setup
  param_bytes = sum(a.nbytes for a in jax.tree.leaves(trees[0]))

  def temp_bytes(update):
    return _step(update, tx).lower(trees, grads[0]).compile().memory_analysis().temp_size_in_bytes

  assert temp_bytes(_select_per_leaf) > 2.5 * param_bytes  # the reference really copies
  assert temp_bytes(update_if_finite) < 1.5 * param_bytes
