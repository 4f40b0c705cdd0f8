"""norm_act_conv (recomputes its activation in the backward pass) against float64 NumPy,
and what it keeps for the backward pass."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.kernels import norm_act_conv
from genjax.kernels.norm_act_conv_reference import norm_act_conv_reference, \
    norm_act_conv_vjp_reference
from genjax.kernels.recompute import pack_bits, unpack_bits

TOL = {jnp.float32: 1e-5, jnp.bfloat16: 1e-2}  # ||a - b|| / ||b|| against float64
# bfloat16's bias gradient is a sum over B * H * W of bfloat16 output gradients, summed in
# bfloat16 as by the unfused Conv layer (bias added in the compute dtype).
BF16_BIAS_TOL = 3e-2
NAMES = ("x", "gn_scale", "gn_bias", "kernel", "bias", "scale", "shift")
KEEP_PROB = 0.75


def _rel(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.linalg.norm(a - b) / np.linalg.norm(b)


def _operands(b, h, w, cin, cout, dtype, seed=0):
  rng = np.random.default_rng(seed)
  ops = {"x": 1.0 + rng.standard_normal((b, h, w, cin)),
         "gn_scale": 1 + 0.3 * rng.standard_normal(cin), "gn_bias": rng.standard_normal(cin),
         "kernel": rng.standard_normal((3, 3, cin, cout)) / np.sqrt(9 * cin),
         "bias": rng.standard_normal(cout), "scale": 0.5 * rng.standard_normal((b, cin)),
         "shift": rng.standard_normal((b, cin))}
  low = {"x", "scale", "shift"}  # the model's compute dtype; parameters stay float32
  ops = {k: jnp.asarray(v, dtype if k in low else jnp.float32) for k, v in ops.items()}
  keep = jnp.asarray(rng.random((b, h, w, cin)) < KEEP_PROB)
  g = jnp.asarray(rng.standard_normal((b, h, w, cout)), dtype)
  return ops, keep, g


@functools.lru_cache(maxsize=None)
def _value_and_vjp(num_groups, dropout):
  def run(ops, keep, g):
    f = lambda *a: norm_act_conv(*a, keep if dropout else None, num_groups=num_groups,  # noqa: E731
                                 keep_prob=KEEP_PROB, impl="xla")
    out, vjp = jax.vjp(f, *(ops[k] for k in NAMES))
    return out, dict(zip(NAMES, vjp(g)))
  return jax.jit(run)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("dropout", [False, True])
def test_forward_and_gradients_match_float64(dtype, dropout):
  ops, keep, g = _operands(2, 5, 6, 8, 4, dtype)
  out, grads = _value_and_vjp(4, dropout)(ops, keep, g)
  np_ops = [np.asarray(ops[k], np.float64) for k in NAMES]
  mask = np.asarray(keep) if dropout else None
  kw = dict(num_groups=4, keep_prob=KEEP_PROB)
  assert out.dtype == dtype and out.shape == (2, 5, 6, 4)
  assert _rel(out, norm_act_conv_reference(*np_ops, mask, **kw)) <= TOL[dtype]
  want = norm_act_conv_vjp_reference(*np_ops, mask, np.asarray(g, np.float64), **kw)
  for k in NAMES:
    assert grads[k].dtype == ops[k].dtype and grads[k].shape == ops[k].shape, k
    tol = BF16_BIAS_TOL if (k, dtype) == ("bias", jnp.bfloat16) else TOL[dtype]
    assert _rel(grads[k], want[k]) <= tol, (k, _rel(grads[k], want[k]))


def test_keeps_x_and_a_packed_mask_only():
  ops, keep, _ = _operands(2, 8, 8, 16, 16, jnp.float32)
  f = lambda *a: norm_act_conv(*a, keep, num_groups=4, keep_prob=KEEP_PROB)  # noqa: E731
  _, vjp = jax.vjp(f, *(ops[k] for k in NAMES))
  big = [(r.shape, r.dtype) for r in jax.tree.leaves(vjp)
         if r.size >= keep.size // 8 and r.shape != ops["kernel"].shape]
  assert big == [(ops["x"].shape, jnp.float32), ((keep.size // 8,), jnp.uint8)]


def test_recomputation_stays_in_the_backward_pass():
  # A chain of layers: had XLA merged the recomputation into the forward pass (as it does
  # through jax.checkpoint's barriers on the CPU), every layer's activation would be alive
  # at the turn, as with the plain composition.
  ops, _, _ = _operands(4, 16, 16, 16, 16, jnp.float32)
  params = [ops[k] for k in NAMES[1:]]

  def plain(x, gn_scale, gn_bias, kernel, bias, scale, shift):
    b, h, w, c = x.shape
    xg = x.reshape(b, h * w, 4, c // 4)
    xn = ((xg - xg.mean((1, 3), keepdims=True))
          / jnp.sqrt(xg.var((1, 3), keepdims=True) + 1e-6)).reshape(x.shape)
    z = ((xn * gn_scale[None, None, None] + gn_bias[None, None, None])
         * (1 + scale[:, None, None]) + shift[:, None, None])
    y = jax.lax.conv_general_dilated(jax.nn.silu(z), kernel, (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + bias[None, None, None]

  def temp(layer):
    def loss(x):
      for _ in range(6):
        x = layer(x, *params)
      return jnp.sum(x * x)
    compiled = jax.jit(jax.grad(loss)).lower(ops["x"]).compile()
    return compiled.memory_analysis().temp_size_in_bytes

  fused = temp(lambda x, *p: norm_act_conv(x, *p, num_groups=4, impl="xla"))
  unfused = temp(plain)
  assert fused < 0.5 * unfused, (fused, unfused)  # 0.32 at this commit


@pytest.mark.parametrize("shape", [(2, 3, 4), (5,), (1, 9)])
def test_pack_bits_round_trip(shape):
  mask = jnp.asarray(np.random.default_rng(0).random(shape) < 0.5)
  packed = pack_bits(mask)
  assert packed.dtype == jnp.uint8 and packed.shape == (-(-mask.size // 8),)
  np.testing.assert_array_equal(unpack_bits(packed, shape), mask)


def test_bad_mask():
  ops, keep, _ = _operands(2, 4, 4, 8, 4, jnp.float32)
  with pytest.raises(ValueError, match="bool mask"):
    norm_act_conv(*(ops[k] for k in NAMES), keep.astype(jnp.float32), num_groups=4)
