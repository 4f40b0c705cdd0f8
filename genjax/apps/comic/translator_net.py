"""The translator's network: a small fully convolutional generator, conditioned by FiLM.

No normalization over pixels (no batch, instance, layer or group norm): an output pixel
depends only on the input within receptive_radius() pixels and the knobs, so a tile whose
offset is a multiple of align() gives exactly the crop of the whole frame away from its
border (translator_tiles.translate_photo tiles large photos that way, without blending).

Architecture (Shi et al. 2016 sub-pixel convolutions at both ends, so no convolution
runs at full resolution): space-to-depth by `patch` -> 3x3 conv -> stride-2 convs to
each further level -> residual blocks at the coarsest level -> per level a 3x3 conv to
4x channels and depth-to-space, plus the encoder skip -> a 3x3 head to patch^2 outputs
per layer channel -> depth-to-space. Every convolution goes through genjax.kernels.conv2d.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.apps.comic.translator_config import TranslatorConfig, TranslatorError
from genjax.models.layers import Conv


def space_to_depth(x: jax.Array, r: int) -> jax.Array:
  """[B, H, W, C] -> [B, H/r, W/r, r*r*C] (H, W divisible by r)."""
  b, h, w, c = x.shape
  x = x.reshape(b, h // r, r, w // r, r, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h // r, w // r, r * r * c)


def depth_to_space(x: jax.Array, r: int) -> jax.Array:
  """[B, H, W, r*r*C] -> [B, H*r, W*r, C], the inverse of space_to_depth."""
  b, h, w, c = x.shape
  x = x.reshape(b, h, w, r, r, c // (r * r)).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h * r, w * r, c // (r * r))


class FiLM(nn.Module):
  """Feature-wise affine modulation from the knob vector (Perez et al. 2018).

  x [B, H, W, C] * (1 + gamma(cond)) + beta(cond), cond [B, K]. Starts as the identity.
  Per image and per channel only: no statistic over pixels, so tiles stay exact.
  """
  features: int

  @nn.compact
  def __call__(self, x, cond):
    gb = nn.Dense(2 * self.features, kernel_init=nn.initializers.zeros)(cond)
    gamma, beta = gb[:, None, None, :self.features], gb[:, None, None, self.features:]
    return x * (1.0 + gamma) + beta


class ResBlock(nn.Module):
  features: int
  conv_impl: str | None = None

  @nn.compact
  def __call__(self, x, cond):
    h = Conv(self.features, conv_impl=self.conv_impl)(nn.relu(x))
    h = FiLM(self.features)(h, cond)
    h = Conv(self.features, zero_init=True, conv_impl=self.conv_impl)(nn.relu(h))
    return x + h


class Generator(nn.Module):
  """images [B, H, W, 3] in [0, 1], cond [B, K] in [-1, 1] -> logits [B, H, W, out_channels].

  H and W must be multiples of config.align() (translate pads to them).
  """
  config: TranslatorConfig

  @nn.compact
  def __call__(self, images: jax.Array, cond: jax.Array) -> jax.Array:
    cfg, impl = self.config, self.config.conv_impl
    ch, p = cfg.channels, cfg.patch
    b, h, w, _ = images.shape
    if h % cfg.align() or w % cfg.align():
      raise TranslatorError(f"generator input {h}x{w} must be a multiple of {cfg.align()}")
    x = space_to_depth(images * 2.0 - 1.0, p)
    hid = nn.relu(FiLM(ch[0])(Conv(ch[0], conv_impl=impl)(x), cond))
    skips = [hid]
    for c in ch[1:]:
      hid = nn.relu(FiLM(c)(Conv(c, stride=2, conv_impl=impl)(hid), cond))
      skips.append(hid)
    for _ in range(cfg.num_res_blocks):
      hid = ResBlock(ch[-1], conv_impl=impl)(hid, cond)
    for level in reversed(range(len(ch) - 1)):
      up = depth_to_space(Conv(4 * ch[level], conv_impl=impl)(nn.relu(hid)), 2)
      hid = FiLM(ch[level])(up + skips[level], cond)
    # The input beside the features: sub-pixel detail (thin lines) at no full-res cost.
    out = Conv(p * p * cfg.out_channels, conv_impl=impl)(
        jnp.concatenate([nn.relu(hid), x], axis=-1))
    return depth_to_space(out, p)
