"""A float64 NumPy reference for group_norm_silu and its gradients (tests only).

    out = SiLU(GroupNorm(x) * (1 + scale) + shift)

The gradients follow the chain rule step by step (SiLU', the scale / shift product, the
GroupNorm affine, then the normalization's backward over each (sample, group)),
independent of JAX's autodiff and of the kernel's folded form.
"""

import numpy as np

from genjax.kernels.fused_resblock_reference import group_norm_reference


def _f64(a):
  return np.asarray(a, np.float64)


def group_norm_silu_reference(x, gn_scale, gn_bias, scale, shift, num_groups: int,
                              epsilon: float = 1e-6) -> np.ndarray:
  """x [B, H, W, C]; gn_scale, gn_bias [C]; scale, shift [B, C] -> float64 [B, H, W, C]."""
  y, _, _ = group_norm_reference(x, gn_scale, gn_bias, num_groups, epsilon)
  z = y * (1 + _f64(scale))[:, None, None, :] + _f64(shift)[:, None, None, :]
  return z / (1 + np.exp(-z))


def group_norm_silu_vjp_reference(x, gn_scale, gn_bias, scale, shift, g, num_groups: int,
                                  epsilon: float = 1e-6) -> dict:
  """Gradients of sum(out * g) with respect to every operand, float64, by name."""
  x, g = _f64(x), _f64(g)
  b, h, w, c = x.shape
  y, xhat, rstd = group_norm_reference(x, gn_scale, gn_bias, num_groups, epsilon)
  s1 = (1 + _f64(scale))[:, None, None, :]
  z = y * s1 + _f64(shift)[:, None, None, :]
  sig = 1 / (1 + np.exp(-z))
  dz = g * (sig + z * sig * (1 - sig))                     # d/dz z * sigmoid(z)
  dy = dz * s1
  dxhat = dy * _f64(gn_scale)
  # Normalization backward per (sample, group): dx = rstd (dxhat - E[dxhat] - xhat E[dxhat xhat]).
  gshape = (b, h * w, num_groups, c // num_groups)
  dxh, xh = dxhat.reshape(gshape), xhat.reshape(gshape)
  dx = rstd[:, None, :, None] * (dxh - dxh.mean(axis=(1, 3), keepdims=True)
                                 - xh * (dxh * xh).mean(axis=(1, 3), keepdims=True))
  return {"x": dx.reshape(x.shape), "gn_scale": (dy * xhat).sum(axis=(0, 1, 2)),
          "gn_bias": dy.sum(axis=(0, 1, 2)), "scale": (dz * y).sum(axis=(1, 2)),
          "shift": dz.sum(axis=(1, 2))}
