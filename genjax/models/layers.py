"""Linen layers shared by genjax models; every convolution goes through genjax.kernels.conv2d."""

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.kernels import conv2d, group_norm, norm_act_conv
from genjax.kernels.bernoulli import bernoulli

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
    kernel, bias = _conv_params(self, x.shape[-1])
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
    scale, bias = _group_norm_params(self, c)
    y = group_norm(x, scale, bias, num_groups=self.num_groups, epsilon=self.epsilon)
    return y.astype(self.dtype)


def _conv_params(module: nn.Module, in_features: int):
  """Conv's parameters ("kernel" [k, k, Cin, features], "bias" [features], float32)."""
  k = module.kernel_size
  init = nn.initializers.zeros if module.zero_init else nn.initializers.variance_scaling(
      1.0, "fan_avg", "uniform")
  kernel = module.param("kernel", init, (k, k, in_features, module.features), jnp.float32)
  return kernel, module.param("bias", nn.initializers.zeros, (module.features,), jnp.float32)


def _group_norm_params(module: nn.Module, channels: int):
  """GroupNorm's parameters ("scale", "bias": [channels], float32)."""
  return (module.param("scale", nn.initializers.ones, (channels,), jnp.float32),
          module.param("bias", nn.initializers.zeros, (channels,), jnp.float32))


def norm_act_conv_layer(x: jax.Array, scale: jax.Array | None = None,
                        shift: jax.Array | None = None, *, features: int, num_groups: int,
                        gn_name: str, conv_name: str, dropout: float = 0.0,
                        deterministic: bool = True, dropout_name: str = "Dropout_0",
                        padding: str = "SAME", zero_init: bool = False, dtype: Any = jnp.float32,
                        conv_impl: str | None = None, epsilon: float = 1e-6) -> jax.Array:
  """conv(dropout(SiLU(GroupNorm(x) * (1 + scale) + shift))) + bias through
  genjax.kernels.norm_act_conv, which keeps only x for the backward pass.

  Call it inside a compact module: its parameters are that module's children named as the
  unfused layers' (`gn_name`: GroupNorm's "scale", "bias"; `conv_name`: Conv's "kernel",
  "bias"), and the dropout key is drawn in child `dropout_name` as flax.linen.Dropout draws
  it there, so parameter trees, initial values and dropout masks are those of GroupNorm ->
  silu -> (scale, shift) -> Dropout -> Conv.
  x: [B, H, W, Cin]; scale, shift: [B, Cin] or None -> [B, H, W, features] in `dtype`.
  """
  cin = x.shape[-1]
  gn_scale, gn_bias = _GroupNormParams(cin, name=gn_name)()
  kernel, bias = _ConvParams(features, cin, zero_init=zero_init, name=conv_name)()
  keep = None
  if dropout and not deterministic:
    keep = _DropoutMask(dropout, name=dropout_name)(x.shape)
  return norm_act_conv(x, gn_scale, gn_bias, kernel, bias, scale, shift, keep,
                       num_groups=num_groups, epsilon=epsilon, keep_prob=1.0 - dropout,
                       padding=padding, impl=conv_impl, dtype=dtype)


class _GroupNormParams(nn.Module):
  channels: int

  @nn.compact
  def __call__(self):
    return _group_norm_params(self, self.channels)


class _ConvParams(nn.Module):
  features: int
  in_features: int
  kernel_size: int = 3
  zero_init: bool = False

  @nn.compact
  def __call__(self):
    return _conv_params(self, self.in_features)


class _DropoutMask(nn.Module):
  """flax.linen.Dropout's keep mask (same key, same draw): bool [shape]."""
  rate: float

  @nn.compact
  def __call__(self, shape):
    # jax.random.bernoulli's bits, in one fusion instead of a loop (genjax.kernels.bernoulli)
    return bernoulli(self.make_rng("dropout"), 1.0 - self.rate, shape)


def group_count(channels: int, max_groups: int = 32) -> int:
  """The largest group count <= max_groups that divides `channels`."""
  return max(g for g in range(1, max_groups + 1) if channels % g == 0)


def timestep_embedding(c_noise: jax.Array, dim: int, max_period: float = 10_000.0) -> jax.Array:
  """Sinusoidal embedding (Vaswani et al. 2017; DDPM). c_noise: [B] -> [B, dim] float32."""
  half = dim // 2
  freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
  args = c_noise.astype(jnp.float32)[:, None] * freqs[None, :]
  return jnp.concatenate([jnp.cos(args), jnp.sin(args)], axis=-1)
