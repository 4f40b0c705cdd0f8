"""Winograd F(4x4, 3x3) in JAX (genjax.kernels.conv_winograd_jax) against float64 NumPy:
the tile algorithm exact in float64, then forward and both gradients in float32 and
bfloat16 on odd sizes, batch 1, every padding mode, and the fallback for what it does
not cover."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax import lax

from genjax.kernels import conv, conv_winograd_jax, padding
from genjax.kernels.conv_onednn import explicit_padding
from genjax.kernels.conv_reference import conv2d_reference

# Relative L2 error vs float64. float32: the transforms mix magnitudes (measured 0.8-3e-6
# on these cases and 1.7-3.3e-6 at the CIFAR shapes); bfloat16: the operands' rounding
# (computation is float32).
TOL = {jnp.float32: 1e-5, jnp.bfloat16: 1e-2}

CASES = [  # (B, H, W, Cin, Cout, k, stride, padding)
    (2, 7, 9, 3, 5, 3, 1, "SAME"),          # odd sizes: partial tiles
    (1, 4, 4, 16, 8, 3, 1, "SAME"),         # batch 1, one tile
    (2, 9, 6, 5, 7, 3, 1, "CIRCULAR_W"),
    (1, 5, 8, 3, 4, 3, 1, "SPHERE"),
    (2, 13, 10, 6, 3, 3, 1, "SPHERE"),
]


def _rel(a, b):
  return float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b))


def _data(shape, seed=0):
  b, h, w, ci, co, k, *_ = shape
  rng = np.random.default_rng(seed)
  return rng.standard_normal((b, h, w, ci)), rng.standard_normal((k, k, ci, co)) / k


def _reference_vjp(x, w, g, mode):
  """float64 (y, dx, dw) by jax's autodiff of explicit padding and lax's VALID
  convolution; y is checked against the NumPy reference, so the gradients are of the
  right function."""
  def f(x, w):
    xp = padding.pad(x, 1, 1, mode)
    return lax.conv_general_dilated(xp, w, (1, 1), "VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
  with jax.enable_x64():
    y, vjp = jax.vjp(f, jnp.asarray(x, jnp.float64), jnp.asarray(w, jnp.float64))
    dx, dw = vjp(jnp.asarray(g, jnp.float64))
    assert _rel(y, conv2d_reference(x, w, padding=mode)) <= 1e-13
    return np.asarray(y), np.asarray(dx), np.asarray(dw)


@functools.partial(jax.jit, static_argnames=("padding",))
def _forward_and_vjp(x, w, g, *, padding):
  f = functools.partial(conv_winograd_jax.conv2d_winograd_jax, stride=1, pad_mode=padding)
  y, vjp = jax.vjp(f, x, w)
  return (y, *vjp(g))


def test_tile_algorithm_exact_in_float64():
  """The transforms (matrices and tiling) are exact: float64 forward to 1e-13."""
  x, w = _data(CASES[0])
  xe, pads, out_hw = explicit_padding(jnp.asarray(x, jnp.float32), 3, 3, 1, "SAME")
  with jax.enable_x64():
    y = conv_winograd_jax._forward(jnp.asarray(x), jnp.asarray(w), pads, out_hw)
    assert y.dtype == jnp.float64
    assert _rel(y, conv2d_reference(x, w)) <= 1e-13


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("shape", CASES, ids=["x".join(map(str, s)) for s in CASES])
def test_forward_and_gradients_match_float64(shape, dtype):
  *_, padding = shape
  x, w = _data(shape)
  g = np.random.default_rng(1).standard_normal((*x.shape[:3], w.shape[-1]))
  y_ref, dx_ref, dw_ref = _reference_vjp(x, w, g, padding)
  with jax.default_matmul_precision("highest"):
    y, dx, dw = _forward_and_vjp(jnp.asarray(x, dtype), jnp.asarray(w, dtype),
                                 jnp.asarray(g, dtype), padding=padding)
  assert y.dtype == dx.dtype == dw.dtype == dtype
  assert _rel(y, y_ref) <= TOL[dtype]
  assert _rel(dx, dx_ref) <= TOL[dtype]
  assert _rel(dw, dw_ref) <= TOL[dtype]


def test_winograd_error_is_not_the_direct_one():
  """The Winograd path really runs: its float32 error differs from XLA's direct one."""
  x, w = (jnp.asarray(a, jnp.float32) for a in _data((2, 8, 8, 16, 16, 3, 1, "")))
  ref = conv2d_reference(x, w)
  wino = conv.conv2d(x, w, impl="winograd_jax")
  direct = conv.conv2d(x, w, impl="xla")
  assert _rel(wino, ref) > 2 * _rel(direct, ref)


@pytest.mark.parametrize("k, stride", [(1, 1), (3, 2)])
def test_uncovered_convolutions_fall_back_to_xla(k, stride):
  assert not conv_winograd_jax.covers((1, 8, 8, 4), (k, k, 4, 4), stride)
  x, w = (jnp.asarray(a, jnp.float32) for a in _data((1, 8, 8, 4, 4, k, stride, "")))
  np.testing.assert_array_equal(conv.conv2d(x, w, stride=stride, impl="winograd_jax"),
                                conv.conv2d(x, w, stride=stride, impl="xla"))
