"""The convolution core, imported as ``genjax.kernels``.

Every convolution of every genjax model goes through :func:`conv2d`, so the
implementation behind it can change without touching the models.
"""

from genjax.kernels.conv import conv2d
from genjax.kernels.fused_resblock import fused_conv3x3
from genjax.kernels.group_norm import group_norm
from genjax.kernels.group_norm_silu import group_norm_silu
from genjax.kernels.norm_act_conv import norm_act_conv

__all__ = ["conv2d", "fused_conv3x3", "group_norm", "group_norm_silu", "norm_act_conv"]
