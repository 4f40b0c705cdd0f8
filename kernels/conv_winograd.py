"""Winograd F(4x4, 3x3) convolution by oneDNN, for the CPU (3x3, stride 1).

Winograd's minimal filtering computes each 4x4 output tile of a 3x3 convolution from a
6x6 input tile with 36 multiplications per channel pair instead of 144: 4x fewer in
theory. oneDNN's implementation (jit_wino_4x3, AVX-512) runs its transforms and the
batched products in blocked nChw16c layout; the handlers in kernels/conv_onednn.cc copy
the NHWC activations into that layout and back on each call, and the backward handler
computes both gradients from one copy of each operand. On the project's 2-core CPU this
ran the three passes 1.5-2.5x faster than oneDNN's direct convolution, copies included
(benchmarks/README.md).

The price is accuracy: the transforms mix values of different magnitude, and the
float32 result is further from the exact convolution than a direct one (relative error
about 1e-6 to 1e-5 against 1e-7; tests/kernels/test_conv_winograd.py bounds it, and
`python -m benchmarks conv` reports it per shape). Shapes Winograd does not cover
(1x1, stride 2, channel counts that are not multiples of 16) go to oneDNN's direct
convolution: this implementation meets the whole conv2d contract. Wrap-around padding
is made explicit first, as in conv_onednn.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from genjax.kernels import onednn_build
from genjax.kernels.conv_onednn import conv2d_onednn, explicit_padding

_F32 = jnp.float32
# oneDNN's Winograd runs on 16-channel blocks (nChw16c).
CHANNEL_BLOCK = 16


def covers(x_shape, w_shape, stride: int) -> bool:
  """Whether Winograd computes this convolution (else oneDNN's direct convolution does)."""
  kh, kw, ci, co = w_shape
  return (kh, kw, stride) == (3, 3, 1) and ci % CHANNEL_BLOCK == 0 and co % CHANNEL_BLOCK == 0


def _attrs(pads):
  return dict(stride_h=np.int64(1), stride_w=np.int64(1), pad_top=np.int64(pads[0]),
              pad_left=np.int64(pads[1]))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv(xe, w, pads, out_hw):
  """float32 xe [B, He, We, Cin], w [3, 3, Cin, Cout] -> float32 [B, H', W', Cout]: the
  stride-1 convolution of xe zero-padded by `pads` at the top and left."""
  out = jax.ShapeDtypeStruct((xe.shape[0], *out_hw, w.shape[-1]), _F32)
  return jax.ffi.ffi_call("genjax_onednn_winograd_fwd", out, vmap_method="sequential")(
      xe, w, **_attrs(pads))


def _conv_fwd(xe, w, pads, out_hw):
  return _conv(xe, w, pads, out_hw), (xe, w)


def _conv_bwd(pads, out_hw, residuals, g):
  xe, w = residuals
  shapes = (jax.ShapeDtypeStruct(xe.shape, _F32), jax.ShapeDtypeStruct(w.shape, _F32))
  dxe, dw = jax.ffi.ffi_call("genjax_onednn_winograd_bwd", shapes, vmap_method="sequential")(
      xe, w, g, **_attrs(pads))
  return dxe, dw


_conv.defvjp(_conv_fwd, _conv_bwd)


def conv2d_winograd(x: jax.Array, w: jax.Array, *, stride: int, pad_mode: str) -> jax.Array:
  """x [B, H, W, Cin], w [kh, kw, Cin, Cout] -> [B, H', W', Cout] in x's dtype.

  Same contract as genjax.kernels.conv2d (float32 computation). Raises
  onednn_build.OneDnnUnavailable (with the reason) where oneDNN cannot be built."""
  if not covers(x.shape, w.shape, stride):
    return conv2d_onednn(x, w, stride=stride, pad_mode=pad_mode)
  onednn_build.require()
  xe, pads, out_hw = explicit_padding(x.astype(_F32), 3, 3, 1, pad_mode)
  return _conv(xe, w.astype(_F32), pads, out_hw).astype(x.dtype)
