"""Winograd F(4x4, 3x3) in JAX (genjax.kernels.conv_winograd_jax): the tile algorithm exact
in float64 (whole batch and in chunks), XLA's gradients bit for bit, and the Winograd path
really running. Forward and both gradients against float64 NumPy in float32 and bfloat16,
on odd sizes, batch 1 and every padding mode, are tests/kernels/test_conv.py's cases (it
runs every IMPLEMENTATIONS entry); the dispatcher's forward-only rule is in
test_conv_dispatch.py."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.kernels import conv, conv_winograd_jax
from genjax.kernels.conv_onednn import explicit_padding
from genjax.kernels.conv_reference import conv2d_reference


def _rel(a, b):
  return float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b))


def _data(b, h, w, ci, co, seed=0):
  rng = np.random.default_rng(seed)
  return rng.standard_normal((b, h, w, ci)), rng.standard_normal((3, 3, ci, co)) / 3


@pytest.mark.parametrize("mode, chunk_bytes", [("SAME", 8 << 20), ("SPHERE", 1)],
                         ids=["SAME-whole-batch", "SPHERE-chunks-of-1"])
def test_tile_algorithm_exact_in_float64(mode, chunk_bytes, monkeypatch):
  """The transform matrices, tiling, cropping and the loop over batch chunks are exact:
  the float64 forward is the float64 convolution to 1e-13 (odd sizes: partial tiles)."""
  monkeypatch.setattr(conv_winograd_jax, "CHUNK_BYTES", chunk_bytes)
  x, w = _data(3, 7, 10, 3, 5)
  with jax.enable_x64():
    xe, pads, out_hw = explicit_padding(jnp.asarray(x), 3, 3, 1, mode)
    y = jax.jit(conv_winograd_jax.forward, static_argnums=(2, 3))(xe, jnp.asarray(w), pads,
                                                                  out_hw)
    assert y.dtype == jnp.float64
    assert _rel(y, conv2d_reference(x, w, padding=mode)) <= 1e-13


def test_batch_chunk_divides_the_batch_within_the_bound():
  per_image = 36 * 64 * 192 * 4                       # 32x32 image (64 tiles), 128 -> 64
  bound = conv_winograd_jax.CHUNK_BYTES // per_image  # 4 with 8 MiB
  assert conv_winograd_jax.batch_chunk(16, 64, 192) == 4 == bound
  assert conv_winograd_jax.batch_chunk(15, 64, 192) == 3   # largest divisor <= 4
  assert conv_winograd_jax.batch_chunk(7, 64, 192) == 1
  assert conv_winograd_jax.batch_chunk(2, 4, 32) == 2      # small: the whole batch
  assert conv_winograd_jax.batch_chunk(1, 10**6, 10**3) == 1


@functools.partial(jax.jit, static_argnames=("impl", "padding"))
def _forward_and_vjp(x, w, g, *, impl, padding):
  y, vjp = jax.vjp(functools.partial(conv.conv2d, padding=padding, impl=impl), x, w)
  return (y, *vjp(g))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["float32", "bfloat16"])
def test_gradients_are_xlas_and_the_forward_is_winograds(dtype):
  """The backward pass is the "xla" implementation's, bit for bit; the forward pass is
  Winograd's (its float32 error differs from the direct convolution's) within the conv
  core's tolerance of float64."""
  x, w = _data(2, 9, 8, 16, 16)
  g = np.random.default_rng(1).standard_normal((2, 9, 8, 16))
  args = [jnp.asarray(a, dtype) for a in (x, w, g)]
  wino = _forward_and_vjp(*args, impl="winograd_jax", padding="CIRCULAR_W")
  xla = _forward_and_vjp(*args, impl="xla", padding="CIRCULAR_W")
  np.testing.assert_array_equal(wino[1], xla[1])
  np.testing.assert_array_equal(wino[2], xla[2])
  ref = conv2d_reference(x, w, padding="CIRCULAR_W")
  assert _rel(wino[0], ref) <= {jnp.float32: 1e-5, jnp.bfloat16: 1e-2}[dtype]
  if dtype == jnp.float32:
    assert _rel(wino[0], ref) > 2 * _rel(xla[0], ref)


@pytest.mark.parametrize("k, stride", [(1, 1), (3, 2)])
def test_uncovered_convolutions_are_xlas(k, stride):
  assert not conv_winograd_jax.covers((1, 8, 8, 4), (k, k, 4, 4), stride)
  x, w = _data(1, 8, 8, 4, 4)
  x, w = jnp.asarray(x, jnp.float32), jnp.asarray(w[:k, :k], jnp.float32)
  np.testing.assert_array_equal(conv.conv2d(x, w, stride=stride, impl="winograd_jax"),
                                conv.conv2d(x, w, stride=stride, impl="xla"))


def test_preferred_only_where_it_measured_faster():
  preferred = conv_winograd_jax.preferred
  assert preferred((16, 32, 32, 64), (3, 3, 64, 64), 1)
  assert preferred((16, 8, 8, 256), (3, 3, 256, 128), 1)
  assert not preferred((16, 32, 32, 64), (3, 3, 64, 64), 2)    # stride 2
  assert not preferred((16, 32, 32, 64), (1, 1, 64, 64), 1)    # 1x1
  assert not preferred((16, 4, 4, 128), (3, 3, 128, 128), 1)   # one tile
  assert not preferred((16, 32, 32, 3), (3, 3, 3, 64), 1)      # RGB in
  assert not preferred((16, 32, 32, 64), (3, 3, 64, 3), 1)     # RGB out
