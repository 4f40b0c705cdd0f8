"""Convolution for the CPU whose weight gradient is computed as one matrix product per tap.

XLA computes the weight gradient of a convolution as another convolution whose
"kernel" is the whole output gradient; on the CPU (YNNPACK, jax 0.10) that runs at
about 60% of the matrix-product rate, while the forward pass and the input gradient
run at about 100%. Here it is restructured (custom VJP): for each kernel tap (i, j),

    dw[i, j] = x_pad[:, i::s, j::s][:, :H', :W'].reshape(-1, Cin)^T @ g.reshape(-1, Cout)

i.e. kh*kw matrix products with the long B*H'*W' dimension contracted. They are
computed transposed, dw[i, j]^T = g^T @ x_tap, with g^T materialized once: YNNPACK
takes only row-major, untransposed operands and XLA's fallback for the other layouts
is about half as fast. The taps are a `lax.scan`, so one shifted copy of x exists at a
time. The forward pass and the input gradient are XLA's convolution and its
transpose. A 1x1 convolution is a single matrix product in all three.
"""

import functools

import jax
import jax.numpy as jnp
from jax import lax

from genjax.kernels import conv_xla, padding

_F32 = jnp.float32


def _dot(a: jax.Array, b: jax.Array) -> jax.Array:
  """[M, K] @ [K, N] with float32 accumulation and result."""
  return lax.dot_general(a, b, (((1,), (0,)), ((), ())), preferred_element_type=_F32)


def _subsample(x: jax.Array, stride: int) -> jax.Array:
  return x if stride == 1 else x[:, ::stride, ::stride]


def _forward(x: jax.Array, w: jax.Array, stride: int, mode: str) -> jax.Array:
  """float32 [B, H', W', Cout]."""
  if w.shape[:2] == (1, 1):
    xs = _subsample(x, stride)
    return _dot(xs.reshape(-1, x.shape[-1]), w[0, 0]).reshape(*xs.shape[:3], w.shape[-1])
  return conv_xla.conv_lax(x, w, stride=stride, pad_mode=mode)


def weight_grad(x: jax.Array, g: jax.Array, kh: int, kw: int, stride: int,
                 mode: str) -> jax.Array:
  """float32 [kh, kw, Cin, Cout] from x [B, H, W, Cin] and g [B, H', W', Cout]: the
  weight gradient of conv2d(x, w, stride, mode) for the output cotangent g."""
  b, ho, wo, cout = g.shape
  cin = x.shape[-1]
  # The barrier keeps XLA from folding the transpose back into the dot as a
  # leading-dimension contraction, the slow layout this transpose exists to avoid.
  gt = lax.optimization_barrier(g.reshape(-1, cout).T)  # [Cout, B*H'*W']
  xp = padding.pad(x, (kh - 1) // 2, (kw - 1) // 2, mode)
  if (kh, kw) == (1, 1):
    return _dot(gt, _subsample(xp, stride).reshape(-1, cin)).T[None, None]
  # A loop over the taps, so that one shifted copy of x exists at a time (unrolled,
  # XLA makes all kh*kw copies first: 9x the memory of x).
  span = (b, stride * (ho - 1) + 1, stride * (wo - 1) + 1, cin)

  def tap(_, ij):
    xs = _subsample(lax.dynamic_slice(xp, (0, ij[0], ij[1], 0), span), stride)
    return None, _dot(gt, xs.reshape(-1, cin))  # [Cout, Cin]

  offsets = jnp.array([(i, j) for i in range(kh) for j in range(kw)], jnp.int32)
  _, taps = lax.scan(tap, None, offsets)
  return taps.reshape(kh, kw, cout, cin).transpose(0, 1, 3, 2)


def with_tapwise_weight_grad(forward):
  """`conv(x, w, stride, mode)` in x's dtype, computed by `forward(x, w, stride, mode)`
  (float32, linear in x), with a custom VJP: the input gradient is the transpose of
  `forward`, the weight gradient is `weight_grad`. Shared by the taps and gemm paths."""

  @functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
  def conv(x, w, stride, mode):
    return forward(x, w, stride, mode).astype(x.dtype)

  def conv_fwd(x, w, stride, mode):
    # Residuals are the unpadded inputs: the padding is cheap to redo and would
    # otherwise be stored for the backward pass.
    return conv(x, w, stride, mode), (x, w)

  def conv_bwd(stride, mode, residuals, g):
    x, w = residuals
    kh, kw = w.shape[:2]
    # Input gradient: the transpose of the (linear in x) forward, e.g. XLA's own
    # transposed convolution plus the transpose of any explicit padding.
    (dx,) = jax.linear_transpose(lambda x_: forward(x_, w, stride, mode), x)(g.astype(_F32))
    dw = weight_grad(x, g, kh, kw, stride, mode)
    return dx.astype(x.dtype), dw.astype(w.dtype)

  conv.defvjp(conv_fwd, conv_bwd)
  return conv


_conv = with_tapwise_weight_grad(_forward)


def conv2d_taps(x: jax.Array, w: jax.Array, *, stride: int, pad_mode: str) -> jax.Array:
  """x [B, H, W, Cin], w [kh, kw, Cin, Cout] -> [B, H', W', Cout] in x's dtype.

  Same contract as genjax.kernels.conv2d (float32 accumulation). The forward pass is
  the "xla" implementation's (a matrix product for 1x1 kernels); the weight gradient
  is tap-wise."""
  return _conv(x, w.astype(x.dtype), stride, pad_mode)
