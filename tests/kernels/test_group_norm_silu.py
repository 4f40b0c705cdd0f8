"""group_norm_silu (hand-written VJP that keeps only x) against its float64 NumPy reference."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.kernels import group_norm_silu
from genjax.kernels.fused_resblock_reference import group_norm_reference
from genjax.kernels.group_norm_silu_reference import group_norm_silu_reference, \
    group_norm_silu_vjp_reference

# Relative error ||a - b|| / ||b|| against float64, per compute dtype (bfloat16 operands are
# rounded first and the reference computed from the rounded values).
TOL = {jnp.float32: 1e-5, jnp.bfloat16: 1e-2}
NAMES = ("x", "gn_scale", "gn_bias", "scale", "shift")


def _rel(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.linalg.norm(a - b) / np.linalg.norm(b)


def _operands(b, h, w, c, dtype, seed=0):
  rng = np.random.default_rng(seed)
  x = 3.0 + 2.0 * rng.standard_normal((b, h, w, c))  # |mean| > std: two-pass statistics
  ops = {"x": x, "gn_scale": 1 + 0.3 * rng.standard_normal(c), "gn_bias": rng.standard_normal(c),
         "scale": 0.5 * rng.standard_normal((b, c)), "shift": rng.standard_normal((b, c))}
  dtypes = {"x": dtype, "gn_scale": jnp.float32, "gn_bias": jnp.float32, "scale": dtype,
            "shift": dtype}
  ops = {k: jnp.asarray(v, dtypes[k]) for k, v in ops.items()}
  g = jnp.asarray(rng.standard_normal((b, h, w, c)), dtype)
  return ops, g


@functools.lru_cache(maxsize=None)
def _value_and_vjp(num_groups):
  def run(ops, g):
    f = lambda *a: group_norm_silu(*a, num_groups=num_groups)  # noqa: E731
    out, vjp = jax.vjp(f, *(ops[k] for k in NAMES))
    return out, dict(zip(NAMES, vjp(g)))
  return jax.jit(run)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("shape,groups", [((2, 4, 6, 8), 4), ((1, 3, 5, 6), 6)])
def test_forward_and_gradients_match_float64(shape, groups, dtype):
  ops, g = _operands(*shape, dtype)
  out, grads = _value_and_vjp(groups)(ops, g)
  np_ops = [np.asarray(ops[k], np.float64) for k in NAMES]
  assert out.dtype == dtype and out.shape == shape
  assert _rel(out, group_norm_silu_reference(*np_ops, groups)) <= TOL[dtype]
  want = group_norm_silu_vjp_reference(*np_ops, np.asarray(g, np.float64), groups)
  for k in NAMES:
    assert grads[k].dtype == ops[k].dtype and grads[k].shape == ops[k].shape, k
    assert _rel(grads[k], want[k]) <= TOL[dtype], (k, _rel(grads[k], want[k]))


def test_without_scale_shift_is_silu_of_group_norm():
  ops, _ = _operands(2, 4, 4, 8, jnp.float32)
  out = group_norm_silu(ops["x"], ops["gn_scale"], ops["gn_bias"], num_groups=2)
  y, _, _ = group_norm_reference(ops["x"], ops["gn_scale"], ops["gn_bias"], 2)
  assert _rel(out, y / (1 + np.exp(-y))) <= 1e-5


def test_reference_gradient_matches_finite_differences():
  rng = np.random.default_rng(3)
  ops = [rng.standard_normal(s) for s in ((2, 3, 2, 4), (4,), (4,), (2, 4), (2, 4))]
  g = rng.standard_normal((2, 3, 2, 4))
  grads = group_norm_silu_vjp_reference(*ops, g, 2)
  f = lambda o: np.sum(group_norm_silu_reference(*o, 2) * g)  # noqa: E731
  for i, k in enumerate(NAMES):
    d = rng.standard_normal(ops[i].shape)
    eps = 1e-6
    plus = [o + eps * d if j == i else o for j, o in enumerate(ops)]
    minus = [o - eps * d if j == i else o for j, o in enumerate(ops)]
    numeric = (f(plus) - f(minus)) / (2 * eps)
    assert np.isclose(np.sum(grads[k] * d), numeric, rtol=1e-6, atol=1e-8), k


def test_keeps_only_x_and_statistics():
  ops, _ = _operands(2, 8, 8, 16, jnp.float32)
  _, vjp = jax.vjp(lambda *a: group_norm_silu(*a, num_groups=4), *(ops[k] for k in NAMES))
  big = [r.shape for r in jax.tree.leaves(vjp) if r.size >= ops["x"].size]
  assert big == [ops["x"].shape]  # x itself; the rest is [B, C] or [C]


@pytest.mark.parametrize("change,message", [
    (dict(x=jnp.zeros((2, 4, 4, 6))), "divisible"),
    (dict(gn_scale=jnp.ones((3,))), "gn_scale"),
    (dict(scale=jnp.ones((2, 3))), "scale"),
])
def test_bad_operands(change, message):
  ops = {"x": jnp.zeros((2, 4, 4, 8)), "gn_scale": jnp.ones((8,)), "gn_bias": jnp.zeros((8,)),
         "scale": None, "shift": None, **change}
  with pytest.raises(ValueError, match=message):
    group_norm_silu(*(ops[k] for k in NAMES), num_groups=4)
