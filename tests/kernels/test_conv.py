"""conv2d against a float64 NumPy reference: forward, input gradient, weight gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.kernels import conv2d
from genjax.kernels.conv_reference import conv2d_reference, pad_reference
from genjax.kernels.padding import pad

TOL = {jnp.float32: 1e-5, jnp.bfloat16: 1e-2}

SHAPES = [  # (B, H, W, Cin, Cout, k, stride, padding)
    (2, 7, 9, 3, 5, 3, 1, "SAME"),
    (1, 8, 6, 12, 10, 3, 2, "SAME"),
    (2, 6, 8, 5, 7, 3, 1, "CIRCULAR_W"),
    (1, 4, 8, 3, 4, 3, 1, "SPHERE"),
    (2, 8, 8, 6, 6, 3, 2, "SPHERE"),
    (3, 5, 7, 9, 11, 1, 1, "SAME"),
]


def _rel(a, b):
  return float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b))


def _data(shape, seed=0):
  b, h, w, ci, co, k, *_ = shape
  rng = np.random.default_rng(seed)
  return rng.standard_normal((b, h, w, ci)), rng.standard_normal((k, k, ci, co)) / k


def _reference_grads(x, w, g, stride, padding):
  """Input and weight gradients of <conv(x, w), g> in float64 by the chain rule on taps."""
  k = w.shape[0]
  p = (k - 1) // 2
  xp = pad_reference(x, p, p, padding)
  ho, wo = g.shape[1:3]
  dxp = np.zeros_like(xp)
  dw = np.zeros_like(w)
  for i in range(k):
    for j in range(k):
      sl = (slice(None), slice(i, i + stride * (ho - 1) + 1, stride),
            slice(j, j + stride * (wo - 1) + 1, stride))
      dw[i, j] = np.einsum("bhwc,bhwd->cd", xp[sl], g)
      dxp[sl] += g @ w[i, j].T
  # Fold the padded gradient back onto x through the padding map (pad is linear:
  # its transpose sums the gradient of every copy of a pixel).
  probe = np.arange(x.size, dtype=np.float64).reshape(x.shape)
  idx = pad_reference(probe, p, p, padding)
  dx = np.zeros(x.size)
  mask = np.ones_like(x)
  valid = pad_reference(mask, p, p, padding) > 0
  np.add.at(dx, idx[valid].astype(np.int64), dxp[valid])
  return dx.reshape(x.shape), dw


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_forward_and_gradients_match_float64(shape, dtype):
  *_, stride, padding = shape
  x, w = _data(shape)
  y_ref = conv2d_reference(x, w, stride=stride, padding=padding)
  g = np.random.default_rng(1).standard_normal(y_ref.shape)

  def f(x, w):
    return conv2d(x, w, stride=stride, padding=padding)

  with jax.default_matmul_precision("highest"):
    y, vjp = jax.vjp(f, jnp.asarray(x, dtype), jnp.asarray(w, dtype))
    dx, dw = vjp(jnp.asarray(g, dtype))
  dx_ref, dw_ref = _reference_grads(x, w, g, stride, padding)
  # bf16 is judged against the unrounded float64 inputs: its input rounding is in the 1e-2.
  assert y.dtype == dtype
  assert _rel(y, y_ref) <= TOL[dtype]
  assert _rel(dx, dx_ref) <= TOL[dtype]
  assert _rel(dw, dw_ref) <= TOL[dtype]


def test_circular_equals_explicit_wrap():
  x, w = _data((2, 6, 8, 4, 3, 3, 1, ""))
  wrapped = np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 0)), mode="wrap")
  ref = conv2d_reference(wrapped, w, padding="SAME")[:, :, 1:-1]
  with jax.default_matmul_precision("highest"):
    out = conv2d(jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32), padding="CIRCULAR_W")
  assert _rel(out, ref) <= 1e-5


def test_sphere_padding_is_the_pole_neighbour():
  x = np.arange(2 * 4 * 6 * 1, dtype=np.float32).reshape(2, 4, 6, 1)
  p = np.asarray(pad(jnp.asarray(x), 1, 1, "SPHERE"))
  np.testing.assert_array_equal(p, pad_reference(x, 1, 1, "SPHERE"))
  # Above row 0 at longitude column c sits row 0 at column c + W/2 (across the pole).
  np.testing.assert_array_equal(p[:, 0, 1:-1], np.roll(x[:, 0], 3, axis=1))
  np.testing.assert_array_equal(p[:, -1, 1:-1], np.roll(x[:, -1], 3, axis=1))
  # And the corners wrap in longitude too.
  np.testing.assert_array_equal(p[:, 0, 0], p[:, 0, -2])


@pytest.mark.parametrize("kwargs, message", [
    ({"stride": 3}, "stride"), ({"padding": "REFLECT"}, "padding"), ({"impl": "cuda9"}, "unknown"),
])
def test_bad_arguments(kwargs, message):
  x, w = jnp.zeros((1, 4, 4, 2)), jnp.zeros((3, 3, 2, 2))
  with pytest.raises(ValueError, match=message):
    conv2d(x, w, **kwargs)
