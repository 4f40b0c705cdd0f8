"""Convolution by oneDNN (PyTorch's CPU convolution library), for the CPU.

On the project's 2-core AVX-512 CPU, XLA:CPU (jax 0.10, genjax's flags) runs the 3x3
convolutions of benchmarks/README.md at 320-380 GFLOP/s forward + backward, oneDNN at
400-450 (as PyTorch, which uses it): its brgemm kernels run near the cores' float32 peak
(about 470 GFLOP/s) in the forward pass. Here the three passes are
oneDNN primitives called as XLA FFI custom calls (kernels/conv_onednn.cc, compiled on
first use: genjax.kernels.onednn_build), inside the same compiled program as the rest
of the model:

  forward          oneDNN forward convolution, activations NHWC as given;
  input gradient   stride 1: the forward primitive again, on the output gradient with
                   the kernel flipped and its channels swapped (a transposed stride-1
                   convolution is a convolution; oneDNN's backward-data kernels measured
                   slower than its forward ones); stride 2: oneDNN backward-data;
  weight gradient  oneDNN backward-weights.

Zero padding is left to oneDNN; the wrap-around modes are padded explicitly first
(genjax.kernels.padding), and the gradient flows back through that padding by jax's
autodiff. Computation and accumulation are float32 (bfloat16 operands are converted).

Custom calls are opaque to XLA's sharding: operands sharded over devices are gathered
onto each device first (correct, not parallel), so the autotune leaves this
implementation out of multi-device processes (genjax.kernels.conv.autotune_candidates);
pods run on GPU/TPU, where it is never considered. Not exportable with jax.export (the
custom call is not in a serialized program's allowed list): the exported sampler has
symbolic shapes, for which the dispatcher always uses "xla".
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from genjax.kernels import onednn_build, padding

_F32 = jnp.float32


def _ffi(target: str, out_shape, a: jax.Array, b: jax.Array, stride: int,
         pads: tuple[int, int], **attrs) -> jax.Array:
  call = jax.ffi.ffi_call(target, jax.ShapeDtypeStruct(tuple(out_shape), _F32),
                          vmap_method="sequential")
  return call(a, b, stride_h=np.int64(stride), stride_w=np.int64(stride),
              pad_top=np.int64(pads[0]), pad_left=np.int64(pads[1]),
              **{k: np.int64(v) for k, v in attrs.items()})


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv(xe, w, stride, pads, out_hw):
  """float32 xe [B, He, We, Cin], w [kh, kw, Cin, Cout] -> float32 [B, H', W', Cout]:
  the convolution of xe zero-padded by `pads` at the top and left (and as much as
  out_hw needs at the bottom and right)."""
  return _ffi("genjax_onednn_conv_fwd", (xe.shape[0], *out_hw, w.shape[-1]), xe, w, stride,
              pads, flip=0)


def _conv_fwd(xe, w, stride, pads, out_hw):
  return _conv(xe, w, stride, pads, out_hw), (xe, w)


def _conv_bwd(stride, pads, out_hw, residuals, g):
  xe, w = residuals
  kh, kw = w.shape[:2]
  if stride == 1:
    # flip=1: the kernel flipped and its channels swapped while oneDNN reorders it.
    dxe = _ffi("genjax_onednn_conv_fwd", xe.shape, g, w, 1,
               (kh - 1 - pads[0], kw - 1 - pads[1]), flip=1)
  else:
    dxe = _ffi("genjax_onednn_conv_bwd_data", xe.shape, g, w, stride, pads)
  dw = _ffi("genjax_onednn_conv_bwd_weights", w.shape, xe, g, stride, pads)
  return dxe, dw


_conv.defvjp(_conv_fwd, _conv_bwd)


def explicit_padding(x: jax.Array, kh: int, kw: int, stride: int, mode: str):
  """(xe, pads, (H', W')): x with the wrap-around padding of `mode` made explicit and
  cropped to the rows and columns the output reads, and the zero padding left to
  oneDNN at the top and left."""
  ph, pw = (kh - 1) // 2, (kw - 1) // 2
  if mode == "SAME":
    xe, pads = x, (ph, pw)
  elif mode == "CIRCULAR_W":
    xe, pads = padding.pad(x, 0, pw, mode), (ph, 0)
  else:
    xe, pads = padding.pad(x, ph, pw, mode), (0, 0)
  ho, wo = (x.shape[1] - 1) // stride + 1, (x.shape[2] - 1) // stride + 1
  # oneDNN takes no negative bottom / right padding: drop what a stride skips.
  rows, cols = (ho - 1) * stride + kh - pads[0], (wo - 1) * stride + kw - pads[1]
  return xe[:, :rows, :cols], pads, (ho, wo)


def conv2d_onednn(x: jax.Array, w: jax.Array, *, stride: int, pad_mode: str) -> jax.Array:
  """x [B, H, W, Cin], w [kh, kw, Cin, Cout] -> [B, H', W', Cout] in x's dtype.

  Same contract as genjax.kernels.conv2d (float32 accumulation). Raises
  onednn_build.OneDnnUnavailable (with the reason) where oneDNN cannot be built."""
  onednn_build.require()
  kh, kw = w.shape[:2]
  xe, pads, out_hw = explicit_padding(x.astype(_F32), kh, kw, stride, pad_mode)
  return _conv(xe, w.astype(_F32), stride, pads, out_hw).astype(x.dtype)
