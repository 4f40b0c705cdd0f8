"""The one entry point for 2-D convolutions in genjax (NHWC, HWIO)."""

import jax
from jax import lax


def conv2d(x: jax.Array, w: jax.Array, *, stride: int = 1, padding: str = "SAME",
           precision=None) -> jax.Array:
  """2-D convolution.

  Args:
    x: [B, H, W, C_in] input.
    w: [kh, kw, C_in, C_out] kernel (kh, kw odd).
    stride: 1 or 2, the same along both axes.
    padding: "SAME" (zeros) or "CIRCULAR_W" (wraps along the width, zeros
      along the height: longitude of an equirectangular image).
  Returns:
    [B, ceil(H / stride), ceil(W / stride), C_out] in the dtype of x.
  """
  kh, kw = w.shape[:2]
  ph, pw = (kh - 1) // 2, (kw - 1) // 2
  if padding == "CIRCULAR_W":
    if pw:
      x = jnp_wrap_width(x, pw)
    pads = [(ph, ph), (0, 0)]
  elif padding == "SAME":
    pads = [(ph, ph), (pw, pw)]
  else:
    raise ValueError(f"conv2d: padding must be 'SAME' or 'CIRCULAR_W', got {padding!r}")
  return lax.conv_general_dilated(
      x, w.astype(x.dtype), window_strides=(stride, stride), padding=pads,
      dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=precision)


def jnp_wrap_width(x: jax.Array, pad: int) -> jax.Array:
  """[B, H, W, C] -> [B, H, W + 2 pad, C], wrapping columns around."""
  import jax.numpy as jnp
  return jnp.concatenate([x[:, :, -pad:], x, x[:, :, :pad]], axis=2)
