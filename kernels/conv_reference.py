"""A float64 NumPy reference for conv2d, direct over the kernel taps (tests and benchmarks only)."""

import numpy as np


def pad_reference(x: np.ndarray, ph: int, pw: int, mode: str) -> np.ndarray:
  """The padding modes of kernels/padding.py, written independently as an index map."""
  b, h, w, c = x.shape
  out = np.zeros((b, h + 2 * ph, w + 2 * pw, c), x.dtype)
  for i in range(-ph, h + ph):
    for j in range(-pw, w + pw):
      if mode == "SAME":
        if 0 <= i < h and 0 <= j < w:
          out[:, i + ph, j + pw] = x[:, i, j]
      elif mode == "CIRCULAR_W":
        if 0 <= i < h:
          out[:, i + ph, j + pw] = x[:, i, j % w]
      elif 0 <= i < h:        # SPHERE
        out[:, i + ph, j + pw] = x[:, i, j % w]
      else:                   # across the pole: mirrored row, half-way round in longitude
        row = -i - 1 if i < 0 else 2 * h - 1 - i
        out[:, i + ph, j + pw] = x[:, row, (j + w // 2) % w]
  return out


def conv2d_reference(x, w, *, stride: int = 1, padding: str = "SAME") -> np.ndarray:
  """x [B, H, W, Cin], w [kh, kw, Cin, Cout] -> float64 [B, H', W', Cout]."""
  x = np.asarray(x, np.float64)
  w = np.asarray(w, np.float64)
  kh, kw = w.shape[:2]
  xp = pad_reference(x, (kh - 1) // 2, (kw - 1) // 2, padding)
  ho = (xp.shape[1] - kh) // stride + 1
  wo = (xp.shape[2] - kw) // stride + 1
  out = np.zeros((x.shape[0], ho, wo, w.shape[3]))
  for i in range(kh):
    for j in range(kw):
      patch = xp[:, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride]
      out += patch @ w[i, j]
  return out
