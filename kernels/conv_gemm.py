"""Convolution as kh matrix products over a column im2col (K = kw * Cin), for the CPU.

    x3 = concat_j x_pad[:, :, j::s][:, :, :W']            # [B, H + 2p, W', kw * Cin]
    y  = sum_i x3[:, i::s][:, :H'] @ w[i].reshape(kw * Cin, Cout)

XLA's CPU backend sends float32 convolutions to YNNPACK but bfloat16 ones to its
generic (Eigen) convolution, which runs bfloat16 no faster than float32; YNNPACK's
bfloat16 matrix products (AVX512-BF16) run at about twice the float32 rate. With
Cin >= 256 this formulation measured up to 2x XLA's bfloat16 convolution (see
benchmarks/conv.py); with fewer channels the kw-fold copy of x costs more than it
saves, and the autotune table keeps XLA there. Only kw shifted copies are made (not
the kh * kw of a full im2col), and the float32 partial sums are added by XLA's fusion.

Custom VJP: the input gradient is the transpose of this same linear map (products
with w[i]^T, then the slices and the padding folded back), the weight gradient is
the tap-wise one of genjax.kernels.conv_taps. Accumulation is float32 throughout.
"""


import jax
import jax.numpy as jnp
from jax import lax

from genjax.kernels import conv_taps, padding

_F32 = jnp.float32


def _strided(x: jax.Array, axis: int, start: int, count: int, stride: int) -> jax.Array:
  """x[start : start + stride * (count - 1) + 1 : stride] along `axis`."""
  limit = list(x.shape)
  limit[axis] = start + stride * (count - 1) + 1
  begin = [0] * x.ndim
  begin[axis] = start
  strides = [1] * x.ndim
  strides[axis] = stride
  return lax.slice(x, begin, limit, strides)


def _forward(x: jax.Array, w: jax.Array, stride: int, mode: str) -> jax.Array:
  """float32 [B, H', W', Cout] for x [B, H, W, Cin], w [kh, kw, Cin, Cout] (x's dtype)."""
  kh, kw, cin, cout = w.shape
  b, h, wd, _ = x.shape
  ho, wo = (h - 1) // stride + 1, (wd - 1) // stride + 1
  xp = padding.pad(x, (kh - 1) // 2, (kw - 1) // 2, mode)
  x3 = jnp.concatenate([_strided(xp, 2, j, wo, stride) for j in range(kw)], axis=-1)
  y = None
  for i in range(kh):
    rows = _strided(x3, 1, i, ho, stride).reshape(-1, kw * cin)
    part = lax.dot_general(rows, w[i].reshape(kw * cin, cout), (((1,), (0,)), ((), ())),
                           preferred_element_type=_F32)
    y = part if y is None else y + part
  return y.reshape(b, ho, wo, cout)


_conv = conv_taps.with_tapwise_weight_grad(_forward)


def conv2d_gemm(x: jax.Array, w: jax.Array, *, stride: int, pad_mode: str) -> jax.Array:
  """x [B, H, W, Cin], w [kh, kw, Cin, Cout] -> [B, H', W', Cout] in x's dtype.

  Same contract as genjax.kernels.conv2d (float32 accumulation)."""
  return _conv(x, w.astype(x.dtype), stride, pad_mode)
