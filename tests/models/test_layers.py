"""The models' GroupNorm layer against float64 NumPy and flax.linen.GroupNorm."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.models.layers import GroupNorm


def _group_norm64(x, scale, bias, groups, eps=1e-6):
  b, h, w, c = x.shape
  xg = x.astype(np.float64).reshape(b, h, w, groups, c // groups)
  mean = xg.mean(axis=(1, 2, 4), keepdims=True)
  var = ((xg - mean) ** 2).mean(axis=(1, 2, 4), keepdims=True)
  return ((xg - mean) / np.sqrt(var + eps)).reshape(x.shape) * scale + bias


@pytest.mark.parametrize("shape,groups", [((2, 5, 3, 12), 4), ((1, 4, 4, 6), 6), ((3, 2, 7, 8), 1)])
def test_group_norm_matches_float64(shape, groups):
  rng = np.random.default_rng(0)
  # A large mean: a one-pass E[x^2] - E[x]^2 variance would lose most of its digits.
  x = (rng.standard_normal(shape) * 0.5 + 300.0).astype(np.float32)
  scale, bias = rng.standard_normal(shape[-1]), rng.standard_normal(shape[-1])
  params = {"params": {"scale": jnp.asarray(scale, jnp.float32),
                       "bias": jnp.asarray(bias, jnp.float32)}}
  y = GroupNorm(groups).apply(params, jnp.asarray(x))
  ref = _group_norm64(x, scale, bias, groups)
  np.testing.assert_allclose(np.asarray(y), ref, rtol=0, atol=2e-4 * np.abs(ref).max())


def test_parameters_and_gradients_as_flax():
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.standard_normal((2, 4, 4, 8)), jnp.float32)
  ours, theirs = GroupNorm(4), nn.GroupNorm(4)
  params = theirs.init(jax.random.key(0), x)
  assert jax.tree.structure(ours.init(jax.random.key(0), x)) == jax.tree.structure(params)
  params = jax.tree.map(lambda p: p + jnp.asarray(rng.standard_normal(p.shape), p.dtype),
                        params)
  cot = jnp.asarray(rng.standard_normal(x.shape), jnp.float32)
  grads = [jax.grad(lambda p, x, m=m: jnp.sum(m.apply(p, x) * cot), (0, 1))(params, x)
           for m in (ours, theirs)]
  for a, b in zip(*map(jax.tree.leaves, grads)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_bad_group_count():
  with pytest.raises(ValueError, match="num_groups=3"):
    GroupNorm(3).init(jax.random.key(0), jnp.zeros((1, 2, 2, 8)))
