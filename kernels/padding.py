"""Border handling for 3x3 (and larger) convolutions, as explicit padding of NHWC arrays.

Modes:
  "SAME"       zeros on every side.
  "CIRCULAR_W" wraps along the width (longitude of an equirectangular image), zeros
               along the height.
  "SPHERE"     wraps along the width; above row 0 (and below row H-1) continue across
               the pole: padding row -1 - i is row i rolled by W / 2 (the point on the
               other side of the pole), so the image is treated as a sphere.
"""

import jax
import jax.numpy as jnp

MODES = ("SAME", "CIRCULAR_W", "SPHERE")

Padding = tuple[tuple[int, int], tuple[int, int]]


def pad(x: jax.Array, ph: int, pw: int, mode: str) -> jax.Array:
  """[B, H, W, C] -> [B, H + 2 ph, W + 2 pw, C] padded as `mode` says."""
  if mode not in MODES:
    raise ValueError(f"conv2d: padding must be one of {MODES}, got {mode!r}")
  if mode == "SAME":
    return jnp.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
  w = x.shape[2]
  if pw > w:
    raise ValueError(f"conv2d: circular padding of {pw} columns needs width >= {pw}, got {w}")
  if ph and mode == "SPHERE":
    if w % 2:
      raise ValueError(f"conv2d: SPHERE padding needs an even width, got {w}")
    if ph > x.shape[1]:
      raise ValueError(f"conv2d: SPHERE padding of {ph} rows needs height >= {ph}, "
                       f"got {x.shape[1]}")
    top = jnp.roll(x[:, :ph][:, ::-1], w // 2, axis=2)
    bottom = jnp.roll(x[:, x.shape[1] - ph:][:, ::-1], w // 2, axis=2)
    x = jnp.concatenate([top, x, bottom], axis=1)
  elif ph:
    x = jnp.pad(x, ((0, 0), (ph, ph), (0, 0), (0, 0)))
  if pw:  # after the pole rows, so the corners wrap too
    x = jnp.concatenate([x[:, :, w - pw:], x, x[:, :, :pw]], axis=2)
  return x


def conv_operand(x: jax.Array, ph: int, pw: int, mode: str) -> tuple[jax.Array, Padding]:
  """Splits `pad(x, ph, pw, mode)` into explicit padding and the conv's own zero padding.

  Returns (xe, padding) such that a convolution of xe with window padding `padding`
  sees `pad(x, ph, pw, mode)`, except for extra zero rows at the bottom that only
  output rows past H' read (callers crop the output to H', W').

  Why: XLA's CPU convolution (YNNPACK fusions, jax 0.10) runs 2-4x slower, forward and
  weight gradient alike, when a 3x3 window has all-zero ("VALID") padding than with any
  nonzero padding; zeros are therefore left to the convolution, and where nothing is
  zero (SPHERE) one zero row is added at the bottom whose outputs are cropped. Not for
  ph = pw = 0 (1x1 kernels): there the extra row makes the backward pass 20x slower,
  and VALID is fast.
  """
  if mode == "SAME":
    padding = ((ph, ph), (pw, pw))
  elif mode == "CIRCULAR_W":
    x = pad(x, 0, pw, mode)
    padding = ((ph, ph), (0, 0))
  else:
    x = pad(x, ph, pw, mode)
    padding = ((0, 0), (0, 0))
  if padding == ((0, 0), (0, 0)) and (ph or pw):
    padding = ((0, 1), (0, 0))
  return x, padding
