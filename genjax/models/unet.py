"""A UNet of the ADM / DDPM++ family (Dhariwal & Nichol 2021; Song et al. 2021).

Residual blocks with GroupNorm, SiLU, 3x3 convolutions and a scale-shift noise
embedding; self-attention at chosen resolutions; optional class conditioning
(with a null class for classifier-free guidance) and image conditioning
(extra input channels); padding that wraps around longitude, or the whole sphere.
"""

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from genjax.models.attention import dot_product_attention
from genjax.models.layers import Conv, GroupNorm, conv_padding, group_count, \
    norm_act_conv_layer, timestep_embedding


@dataclasses.dataclass(frozen=True)
class UNetConfig:
  base_channels: int = 64
  channel_mult: tuple[int, ...] = (1, 2, 2)
  num_res_blocks: int = 2
  attn_resolutions: tuple[int, ...] = (16,)   # feature-map heights with self-attention
  num_heads: int = 4
  dropout: float = 0.1
  num_classes: int = 0                        # > 0: labels 0..n-1, and n = the null class
  cond_channels: int = 0                      # extra input channels (e.g. masked image + mask)
  padding: str = "zeros"                      # "zeros" | "circular_w" | "sphere"
  out_channels: int = 3
  remat: bool = False                         # recompute residual blocks in the backward pass
  dtype: Any = jnp.float32                    # compute dtype; parameters stay float32
  conv_impl: str | None = None

  @classmethod
  def from_config(cls, cfg, *, dtype=jnp.float32, conv_impl=None) -> "UNetConfig":
    conv_padding(cfg.padding)  # validates the name
    return cls(base_channels=cfg.base_channels, channel_mult=tuple(cfg.channel_mult),
               num_res_blocks=cfg.num_res_blocks, attn_resolutions=tuple(cfg.attn_resolutions),
               num_heads=cfg.num_heads, dropout=cfg.dropout, num_classes=cfg.num_classes,
               cond_channels=cfg.cond_channels, padding=cfg.padding,
               out_channels=cfg.out_channels, remat=cfg.get("remat", False), dtype=dtype,
               conv_impl=conv_impl)


class ResBlock(nn.Module):
  """GN-SiLU-conv, scale-shift by the embedding, GN-SiLU-dropout-conv, skip; / sqrt(2).

  Each GN-SiLU(-dropout)-conv is one NormActConv (only its input is kept for the backward
  pass); parameters and dropout masks are named and drawn as the unfused layers'
  (GroupNorm_0, Conv_0, Dense_0, GroupNorm_1, Dropout_0, Conv_1, Conv_2)."""
  features: int
  cfg: UNetConfig
  deterministic: bool = True

  @nn.compact
  def __call__(self, x, emb):
    c, pad = self.cfg, conv_padding(self.cfg.padding)
    nac = lambda h, *ss, gn, conv, **kw: norm_act_conv_layer(  # noqa: E731
        h, *ss, features=self.features, padding=pad, dtype=c.dtype, conv_impl=c.conv_impl, gn_name=gn,
        conv_name=conv, **kw)
    h = nac(x, gn="GroupNorm_0", conv="Conv_0", num_groups=group_count(x.shape[-1]))
    scale, shift = jnp.split(nn.Dense(2 * self.features, dtype=c.dtype)(nn.silu(emb)), 2, -1)
    h = nac(h, scale, shift, gn="GroupNorm_1", conv="Conv_1", zero_init=True,
            num_groups=group_count(self.features), dropout=c.dropout,
            deterministic=self.deterministic)
    if x.shape[-1] != self.features:
      x = Conv(self.features, kernel_size=1, padding=pad, dtype=c.dtype,
               conv_impl=c.conv_impl, name="Conv_2")(x)
    return (x + h) * (2 ** -0.5)


class Attention(nn.Module):
  """Multi-head self-attention over all H * W positions (so it sees across the wrap)."""
  cfg: UNetConfig

  @nn.compact
  def __call__(self, x):
    b, h, w, ch = x.shape
    heads = self.cfg.num_heads
    if ch % heads:
      raise ValueError(f"attention: {ch} channels are not divisible by num_heads={heads}")
    y = GroupNorm(group_count(ch), dtype=self.cfg.dtype)(x).reshape(b, h * w, ch)
    qkv = nn.Dense(3 * ch, dtype=self.cfg.dtype)(y).reshape(b, h * w, 3, heads, ch // heads)
    out = dot_product_attention(qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2])
    out = nn.Dense(ch, dtype=self.cfg.dtype, kernel_init=nn.initializers.zeros)(
        out.reshape(b, h * w, ch))
    return x + out.reshape(b, h, w, ch)


class UNet(nn.Module):
  config: UNetConfig

  @nn.compact
  def __call__(self, x, c_noise, *, y=None, cond=None, train: bool = False):
    """x: [B, H, W, 3], c_noise: [B] noise level, y: int32 [B] labels, cond: [B, H, W, cond_channels].

    Returns [B, H, W, out_channels] float32.
    """
    c = self.config
    levels = len(c.channel_mult)
    factor = 2 ** (levels - 1)
    if x.shape[1] % factor or x.shape[2] % factor:
      raise ValueError(f"UNet: image size {x.shape[1]}x{x.shape[2]} must be divisible by "
                       f"{factor} (2 ** (len(channel_mult) - 1))")
    if c.cond_channels:
      if cond is None or cond.shape[-1] != c.cond_channels:
        raise ValueError(f"UNet: expects cond with {c.cond_channels} channels, got "
                         f"{None if cond is None else cond.shape}")
      x = jnp.concatenate([x, cond.astype(x.dtype)], axis=-1)
    pad = conv_padding(c.padding)
    ch0 = c.base_channels
    emb = timestep_embedding(c_noise, ch0)
    emb = nn.Dense(4 * ch0, dtype=c.dtype)(emb)
    emb = nn.Dense(4 * ch0, dtype=c.dtype)(nn.silu(emb))
    if c.num_classes:
      if y is None:
        y = jnp.full((x.shape[0],), c.num_classes, jnp.int32)  # null class: unconditional
      emb = emb + nn.Embed(c.num_classes + 1, 4 * ch0, dtype=c.dtype)(y)

    # Explicit names keep the parameter tree the same with and without remat.
    block_cls = nn.remat(ResBlock) if c.remat else ResBlock
    block = lambda f, name: block_cls(f, c, deterministic=not train, name=name)
    h = Conv(ch0, padding=pad, dtype=c.dtype, conv_impl=c.conv_impl)(x.astype(c.dtype))
    skips = [h]
    for level, mult in enumerate(c.channel_mult):
      for i in range(c.num_res_blocks):
        h = block(ch0 * mult, f"down_{level}_{i}")(h, emb)
        if h.shape[1] in c.attn_resolutions:
          h = Attention(c)(h)
        skips.append(h)
      if level != levels - 1:
        h = Conv(h.shape[-1], stride=2, padding=pad, dtype=c.dtype, conv_impl=c.conv_impl)(h)
        skips.append(h)

    h = block(h.shape[-1], "mid_0")(h, emb)
    h = Attention(c)(h)
    h = block(h.shape[-1], "mid_1")(h, emb)

    for level, mult in reversed(list(enumerate(c.channel_mult))):
      for i in range(c.num_res_blocks + 1):
        h = block(ch0 * mult, f"up_{level}_{i}")(jnp.concatenate([h, skips.pop()], axis=-1), emb)
        if h.shape[1] in c.attn_resolutions:
          h = Attention(c)(h)
      if level:
        h = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)  # nearest-neighbour x2
        h = Conv(h.shape[-1], padding=pad, dtype=c.dtype, conv_impl=c.conv_impl)(h)

    # After the stem's Conv_0 and the 2 (levels - 1) resampling convolutions.
    h = norm_act_conv_layer(h, features=c.out_channels, num_groups=group_count(h.shape[-1]),
                            gn_name="GroupNorm_0", conv_name=f"Conv_{2 * levels - 1}",
                            padding=pad, zero_init=True, dtype=c.dtype, conv_impl=c.conv_impl)
    return h.astype(jnp.float32)
