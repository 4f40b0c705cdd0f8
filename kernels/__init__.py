"""The convolution core, imported as ``genjax.kernels``.

Every convolution of every genjax model goes through :func:`conv2d`, so the
implementation behind it can change without touching the models.
"""

from genjax.kernels.conv import conv2d

__all__ = ["conv2d"]
