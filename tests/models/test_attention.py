"""The UNet's attention (hand-written gradient) against float64 NumPy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.models.attention import dot_product_attention


def _attention64(q, k, v, g):
  """Output and the gradients of sum(out * g), by the textbook formulas, float64."""
  q, k, v, g = (np.swapaxes(a.astype(np.float64), 1, 2) for a in (q, k, v, g))  # [B,N,T,D]
  s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
  p = np.exp(s - s.max(-1, keepdims=True))
  p /= p.sum(-1, keepdims=True)
  dp = g @ np.swapaxes(v, -1, -2)
  ds = p * (dp - (dp * p).sum(-1, keepdims=True)) / np.sqrt(q.shape[-1])
  out = (p @ v, ds @ k, np.swapaxes(ds, -1, -2) @ q, np.swapaxes(p, -1, -2) @ g)
  return [np.swapaxes(a, 1, 2) for a in out]


@pytest.mark.parametrize("shape", [(2, 7, 3, 5), (1, 16, 1, 8)])
def test_forward_and_gradients_match_float64(shape):
  rng = np.random.default_rng(0)
  q, k, v, g = (rng.standard_normal(shape).astype(np.float32) * 2 for _ in range(4))
  fn = lambda q, k, v: jnp.sum(dot_product_attention(q, k, v) * g)
  out = dot_product_attention(q, k, v)
  grads = jax.grad(fn, (0, 1, 2))(q, k, v)
  for got, want in zip([out, *grads], _attention64(q, k, v, g)):
    np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=1e-5 * np.abs(want).max())


def test_bfloat16_is_close():
  rng = np.random.default_rng(1)
  q, k, v = (jnp.asarray(rng.standard_normal((2, 9, 2, 4)), jnp.float32) for _ in range(3))
  out = dot_product_attention(*(a.astype(jnp.bfloat16) for a in (q, k, v)))
  assert out.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(out, np.float32),
                             np.asarray(dot_product_attention(q, k, v)), atol=5e-2)


def test_bad_shapes():
  with pytest.raises(ValueError, match="not all"):
    dot_product_attention(jnp.zeros((1, 2, 1, 4)), jnp.zeros((1, 3, 1, 4)), jnp.zeros((1, 2, 1, 4)))


def test_bfloat16_gradients_match_float64():
  rng = np.random.default_rng(2)
  q, k, v, g = (jnp.asarray(rng.standard_normal((2, 12, 2, 8)), jnp.bfloat16) for _ in range(4))
  grads = jax.grad(lambda *a: jnp.sum(dot_product_attention(*a).astype(jnp.float32)
                                      * g.astype(jnp.float32)), (0, 1, 2))(q, k, v)
  want = _attention64(*(np.asarray(a, np.float32) for a in (q, k, v, g)))[1:]
  for got, ref in zip(grads, want):  # relative error against float64, bfloat16 operands
    assert got.dtype == jnp.bfloat16
    assert np.linalg.norm(np.asarray(got, np.float64) - ref) / np.linalg.norm(ref) <= 2e-2


def test_probabilities_are_not_kept_for_the_backward_pass():
  b, t, n, d = 2, 64, 2, 4  # T * T per head is 16x the [T, D] tensors
  q = k = v = jnp.ones((b, t, n, d))
  _, vjp = jax.vjp(dot_product_attention, q, k, v)
  assert max(r.size for r in jax.tree.leaves(vjp)) == b * t * n * d
