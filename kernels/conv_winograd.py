"""Winograd F(4x4, 3x3) convolution by oneDNN, for the CPU (3x3, stride 1).

Winograd's minimal filtering computes each 4x4 output tile of a 3x3 convolution from a
6x6 input tile with 36 multiplications per channel pair instead of 144: 4x fewer in
theory. oneDNN's implementation (jit_wino_4x3, AVX-512) runs its transforms and batched
products on blocked nChw16c activations; the handlers in kernels/conv_onednn.cc copy the
NHWC activations into that layout and back on each call, and the backward handler
computes both gradients from one copy of each operand. The copies and oneDNN's
scratchpads live in a workspace that XLA allocates as an extra result of each call, so
XLA's buffer assignment shares that memory with other temporaries (and counts it in
the program's memory_analysis). On the project's 2-core CPU this ran the CIFAR UNet's
3x3 convolutions 1.3-2x faster than oneDNN's direct convolution and PyTorch, forward +
backward, copies included (benchmarks/README.md).

The price is accuracy: the transforms mix values of different magnitudes. The float32
forward pass measured 0.5-1.1e-6 from the float64 convolution, against 2-6e-7 for the
direct ones (`python -m benchmarks conv` reports it per shape); the tests hold it, and
both gradients, to the conv core's 1e-5. Convolutions Winograd does not cover (1x1,
stride 2, channel counts that are not multiples of 16, shapes oneDNN has no Winograd
kernel for) go to oneDNN's direct convolution, so this implementation meets the whole
conv2d contract. Wrap-around padding is made explicit first, as in conv_onednn.
"""

import ctypes
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
  """Whether Winograd may compute this convolution: 3x3, stride 1, whole channel blocks
  (else oneDNN's direct convolution does; so it does where oneDNN has no Winograd
  kernel for the shape, see workspace_bytes)."""
  kh, kw, ci, co = w_shape
  return (kh, kw, stride) == (3, 3, 1) and ci % CHANNEL_BLOCK == 0 and co % CHANNEL_BLOCK == 0


@functools.cache
def workspace_bytes(backward: bool, xe_shape, w_shape, out_shape, pads) -> int:
  """Bytes of the workspace a Winograd call carves its buffers from (blocked copies of
  the activations and weights, oneDNN's scratchpad), or -1 where oneDNN has no Winograd
  kernel for the convolution. Shapes are the forward convolution's: xe [B, He, We, Cin]
  (explicitly padded input), w [3, 3, Cin, Cout], out [B, H', W', Cout]."""
  dims = [(ctypes.c_int64 * 4)(*shape) for shape in (xe_shape, w_shape, out_shape)]
  fn = onednn_build.library().genjax_onednn_winograd_workspace_bytes
  fn.restype = ctypes.c_int64
  return int(fn(ctypes.c_int64(int(backward)), *dims, ctypes.c_int64(pads[0]),
                ctypes.c_int64(pads[1])))


def _attrs(pads):
  return dict(stride_h=np.int64(1), stride_w=np.int64(1), pad_top=np.int64(pads[0]),
              pad_left=np.int64(pads[1]))


def _workspace(backward: bool, xe, w, out_shape, pads) -> jax.ShapeDtypeStruct:
  nbytes = workspace_bytes(backward, xe.shape, w.shape, out_shape, pads)
  return jax.ShapeDtypeStruct((nbytes,), jnp.uint8)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv(xe, w, pads, out_hw):
  """float32 xe [B, He, We, Cin], w [3, 3, Cin, Cout] -> float32 [B, H', W', Cout]: the
  stride-1 convolution of xe zero-padded by `pads` at the top and left. The workspace
  is a result XLA allocates and the program drops."""
  out = jax.ShapeDtypeStruct((xe.shape[0], *out_hw, w.shape[-1]), _F32)
  shapes = (out, _workspace(False, xe, w, out.shape, pads))
  y, _ = jax.ffi.ffi_call("genjax_onednn_winograd_fwd", shapes, vmap_method="sequential")(
      xe, w, **_attrs(pads))
  return y


def _conv_fwd(xe, w, pads, out_hw):
  return _conv(xe, w, pads, out_hw), (xe, w)


def _conv_bwd(pads, out_hw, residuals, g):
  xe, w = residuals
  shapes = (jax.ShapeDtypeStruct(xe.shape, _F32), jax.ShapeDtypeStruct(w.shape, _F32),
            _workspace(True, xe, w, g.shape, pads))
  dxe, dw, _ = jax.ffi.ffi_call("genjax_onednn_winograd_bwd", shapes,
                                vmap_method="sequential")(xe, w, g, **_attrs(pads))
  return dxe, dw


_conv.defvjp(_conv_fwd, _conv_bwd)


def conv2d_winograd(x: jax.Array, w: jax.Array, *, stride: int, pad_mode: str) -> jax.Array:
  """x [B, H, W, Cin], w [kh, kw, Cin, Cout] -> [B, H', W', Cout] in x's dtype.

  Same contract as genjax.kernels.conv2d (float32 computation). Raises
  onednn_build.OneDnnUnavailable (with the reason) where oneDNN cannot be built."""
  if covers(x.shape, w.shape, stride):
    onednn_build.require()
    xe, pads, out_hw = explicit_padding(x.astype(_F32), 3, 3, 1, pad_mode)
    out_shape = (x.shape[0], *out_hw, w.shape[-1])
    if min(workspace_bytes(b, xe.shape, w.shape, out_shape, pads) for b in (False, True)) > 0:
      return _conv(xe, w.astype(_F32), pads, out_hw).astype(x.dtype)
  return conv2d_onednn(x, w, stride=stride, pad_mode=pad_mode)
