"""Linen layers shared by genjax models; every convolution goes through genjax.kernels.conv2d."""

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.kernels import conv2d, group_norm

# Model padding names -> conv-core padding modes.
PADDINGS = {"zeros": "SAME", "circular_w": "CIRCULAR_W", "sphere": "SPHERE"}


def conv_padding(name: str) -> str:
  if name not in PADDINGS:
    raise ValueError(f"unknown model.padding {name!r}; valid: {', '.join(PADDINGS)}")
  return PADDINGS[name]


class Conv(nn.Module):
  """k x k convolution with bias through the conv core. x: [B, H, W, Cin] -> [B, H', W', features]."""
  features: int
  kernel_size: int = 3
  stride: int = 1
  padding: str = "SAME"         # a conv-core mode: SAME, CIRCULAR_W, SPHERE
  zero_init: bool = False       # last layer of a residual branch: starts as the identity
  dtype: Any = jnp.float32
  conv_impl: str | None = None

  @nn.compact
  def __call__(self, x):
    k = self.kernel_size
    init = nn.initializers.zeros if self.zero_init else nn.initializers.variance_scaling(
        1.0, "fan_avg", "uniform")
    kernel = self.param("kernel", init, (k, k, x.shape[-1], self.features), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
    y = conv2d(x.astype(self.dtype), kernel.astype(self.dtype), stride=self.stride,
               padding=self.padding, impl=self.conv_impl)
    return y + bias.astype(self.dtype)[None, None, None, :]


class GroupNorm(nn.Module):
  """flax.linen.GroupNorm's parameters ("scale", "bias": [C]) and result, through
  genjax.kernels.group_norm (statistics laid out for XLA:CPU, two-pass variance).
  x: [B, H, W, C] -> [B, H, W, C] in `dtype`."""
  num_groups: int
  epsilon: float = 1e-6
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    if x.ndim != 4 or c % self.num_groups:
      raise ValueError(f"GroupNorm: x {x.shape} is not [B,H,W,C] with C divisible by "
                       f"num_groups={self.num_groups}")
    scale = self.param("scale", nn.initializers.ones, (c,), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (c,), jnp.float32)
    y = group_norm(x, scale, bias, num_groups=self.num_groups, epsilon=self.epsilon)
    return y.astype(self.dtype)


def group_count(channels: int, max_groups: int = 32) -> int:
  """The largest group count <= max_groups that divides `channels`."""
  return max(g for g in range(1, max_groups + 1) if channels % g == 0)


def timestep_embedding(c_noise: jax.Array, dim: int, max_period: float = 10_000.0) -> jax.Array:
  """Sinusoidal embedding (Vaswani et al. 2017; DDPM). c_noise: [B] -> [B, dim] float32."""
  half = dim // 2
  freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
  args = c_noise.astype(jnp.float32)[:, None] * freqs[None, :]
  return jnp.concatenate([jnp.cos(args), jnp.sin(args)], axis=-1)
