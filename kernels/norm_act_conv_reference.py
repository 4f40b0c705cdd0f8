"""A float64 NumPy reference for norm_act_conv and its gradients (tests only).

    y = conv3x3(dropout(SiLU(GroupNorm(x) * (1 + scale) + shift))) + bias

Built from group_norm_silu's reference and fused_resblock's reference convolution and
its hand-written gradient (stride 1, 3x3), independent of JAX's autodiff.
"""

import numpy as np

from genjax.kernels.conv_reference import conv2d_reference
from genjax.kernels.fused_resblock_reference import conv3x3_vjp_reference
from genjax.kernels.group_norm_silu_reference import group_norm_silu_reference, \
    group_norm_silu_vjp_reference


def _dropped(a, keep, keep_prob):
  return a if keep is None else np.where(keep, a / keep_prob, 0.0)


def norm_act_conv_reference(x, gn_scale, gn_bias, kernel, bias, scale, shift, keep=None, *,
                            num_groups: int, keep_prob: float = 1.0, padding: str = "SAME",
                            epsilon: float = 1e-6) -> np.ndarray:
  """x [B, H, W, Cin], kernel [3, 3, Cin, Cout] -> float64 [B, H, W, Cout]."""
  a = _dropped(group_norm_silu_reference(x, gn_scale, gn_bias, scale, shift, num_groups,
                                         epsilon), keep, keep_prob)
  return conv2d_reference(a, np.asarray(kernel, np.float64), padding=padding) + np.asarray(
      bias, np.float64)


def norm_act_conv_vjp_reference(x, gn_scale, gn_bias, kernel, bias, scale, shift, keep, g, *,
                                num_groups: int, keep_prob: float = 1.0,
                                padding: str = "SAME", epsilon: float = 1e-6) -> dict:
  """Gradients of sum(y * g) by operand name (x, gn_scale, gn_bias, kernel, bias, scale,
  shift), float64."""
  del bias  # the output is affine in it
  g = np.asarray(g, np.float64)
  a = _dropped(group_norm_silu_reference(x, gn_scale, gn_bias, scale, shift, num_groups,
                                         epsilon), keep, keep_prob)
  da, dk = conv3x3_vjp_reference(a, np.asarray(kernel, np.float64), g, padding)
  grads = group_norm_silu_vjp_reference(x, gn_scale, gn_bias, scale, shift,
                                        _dropped(da, keep, keep_prob), num_groups, epsilon)
  return {**grads, "kernel": dk, "bias": g.sum(axis=(0, 1, 2))}
