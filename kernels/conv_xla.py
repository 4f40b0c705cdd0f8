"""XLA's convolution (cuDNN on GPU, YNNPACK/Eigen on CPU): the baseline implementation."""

import jax
import jax.numpy as jnp
from jax import lax

from genjax.kernels import padding

DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")


def output_size(h: int, w: int, stride: int) -> tuple[int, int]:
  """H', W' of an odd-kernel conv padded by (k - 1) / 2 on every side."""
  return (h - 1) // stride + 1, (w - 1) // stride + 1


def conv_lax(x: jax.Array, w: jax.Array, *, stride: int, pad_mode: str) -> jax.Array:
  """The convolution as one lax op: x [B, H, W, Cin], w [kh, kw, Cin, Cout] (x's dtype)
  -> float32 [B, H', W', Cout]. Shared by the implementations that use XLA's forward."""
  kh, kw = w.shape[:2]
  xe, pads = padding.conv_operand(x, (kh - 1) // 2, (kw - 1) // 2, pad_mode)
  y = lax.conv_general_dilated(xe, w, window_strides=(stride, stride), padding=pads,
                               dimension_numbers=DIMENSION_NUMBERS,
                               preferred_element_type=jnp.float32)
  ho, wo = output_size(x.shape[1], x.shape[2], stride)
  return y[:, :ho, :wo]


def conv2d_xla(x: jax.Array, w: jax.Array, *, stride: int, pad_mode: str) -> jax.Array:
  """x [B, H, W, Cin], w [kh, kw, Cin, Cout] -> [B, H', W', Cout], float32 accumulation.

  Gradients are XLA's own transposes of the convolution."""
  return conv_lax(x, w.astype(x.dtype), stride=stride, pad_mode=pad_mode).astype(x.dtype)
