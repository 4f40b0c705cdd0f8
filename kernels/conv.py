"""`conv2d`: the one entry point for the 2-D convolutions of every genjax model (NHWC, HWIO)."""

import jax

from genjax.kernels.conv_taps import conv2d_taps
from genjax.kernels.conv_xla import conv2d_xla
from genjax.kernels.padding import MODES

# name -> fn(x, w, *, stride, pad_mode) -> y; every entry meets the contract of conv2d.
IMPLEMENTATIONS = {"xla": conv2d_xla, "taps": conv2d_taps}


def conv2d(x: jax.Array, w: jax.Array, *, stride: int = 1, padding: str = "SAME",
           impl: str | None = None) -> jax.Array:
  """2-D convolution with odd square kernels (1x1, 3x3), stride 1 or 2.

  Args:
    x: [B, H, W, C_in], float32 or bfloat16.
    w: [kh, kw, C_in, C_out]; cast to x's dtype. Accumulation is float32.
    stride: 1 or 2. With stride 2 the padding is (k - 1) / 2 on every side, as
      PyTorch's padding=1 for 3x3: even H, W give H / 2, W / 2.
    padding: "SAME", "CIRCULAR_W" or "SPHERE" (see genjax.kernels.padding).
    impl: an IMPLEMENTATIONS name; None or "auto" picks the default.
  Returns:
    [B, H', W', C_out] in x's dtype.
  """
  if x.ndim != 4 or w.ndim != 4 or x.shape[-1] != w.shape[2]:
    raise ValueError(f"conv2d: x {x.shape} and w {w.shape} are not [B,H,W,Cin] and "
                     f"[kh,kw,Cin,Cout] with matching Cin")
  if w.shape[0] % 2 == 0 or w.shape[1] % 2 == 0:
    raise ValueError(f"conv2d: kernel size must be odd, got {w.shape[:2]}")
  if stride not in (1, 2):
    raise ValueError(f"conv2d: stride must be 1 or 2, got {stride}")
  if padding not in MODES:
    raise ValueError(f"conv2d: padding must be one of {MODES}, got {padding!r}")
  name = "xla" if impl in (None, "auto") else impl
  if name not in IMPLEMENTATIONS:
    raise ValueError(f"conv2d: unknown implementation {name!r}; valid: "
                     f"{', '.join(['auto', *IMPLEMENTATIONS])}")
  return IMPLEMENTATIONS[name](x, w, stride=stride, pad_mode=padding)
