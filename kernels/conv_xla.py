"""XLA's convolution (cuDNN on GPU, oneDNN/Eigen on CPU): the baseline implementation."""

import jax
import jax.numpy as jnp
from jax import lax

from genjax.kernels import padding


def conv2d_xla(x: jax.Array, w: jax.Array, *, stride: int, pad_mode: str) -> jax.Array:
  """x [B, H, W, Cin], w [kh, kw, Cin, Cout] -> [B, H', W', Cout], float32 accumulation."""
  kh, kw = w.shape[:2]
  xp = padding.pad(x, (kh - 1) // 2, (kw - 1) // 2, pad_mode)
  y = lax.conv_general_dilated(
      xp, w.astype(x.dtype), window_strides=(stride, stride), padding="VALID",
      dimension_numbers=("NHWC", "HWIO", "NHWC"),
      preferred_element_type=jnp.float32)
  return y.astype(x.dtype)
