"""Depth Anything V2 (Yang et al. 2024, arXiv:2406.09414) in Flax Linen: relative inverse depth.

A DINOv2 ViT (Oquab et al. 2023, arXiv:2304.07193; patch 14, layer scale, no registers) whose
hidden states after four blocks feed a DPT head (Ranftl et al. 2021, arXiv:2103.13413): each is
reassembled into a feature map (1x1 projection, then x4 / x2 transposed conv, identity, or a
stride-2 3x3 conv), brought to `features` channels by a 3x3 conv, and fused coarse to fine by
residual blocks with bilinear upsampling (align_corners=True); the head upsamples to the input
size and ends in ReLU. The output is relative inverse depth (disparity, larger = nearer, scale
and shift unknown), as the reference produces.

The architecture follows transformers' `DepthAnythingForDepthEstimation` with its `Dinov2Backbone`
(the test `tests/models/test_depth_anything.py` checks the port against it). Every resampling
reproduces PyTorch's: the position embeddings are resized bicubically (A = -0.75, half-pixel,
clamped borders, `F.interpolate(mode="bicubic", align_corners=False)` to the patch grid, as
transformers does), the fusion and head upsampling is `F.interpolate(mode="bilinear",
align_corners=True)`. Both are gathers with weights computed in NumPy from the static shapes.
The original repository's DINOv2 resizes the position embeddings with `scale_factor=(h + 0.1) /
37`, which samples them a few hundredths of a patch apart from transformers' `size=(h, w)`; set
`pos_interp_offset=0.1` to reproduce that instead.

Input: `pixels` [B, H, W, 3] float32, ImageNet-normalised RGB (`normalize` maps [0, 1] RGB), H and
W multiples of 14. Output [B, H, W] float32. Whole-photo inference (resize to the network size
keeping the aspect, and back) is `predict_depth`.

Weights file (.npz, flat keys joined with "/", see `check_params`): made from a published
checkpoint by `python -m genjax.models.convert_depth_anything IN OUT.npz --variant small`.
"""

import dataclasses
import functools
import json
import math
import os
import zipfile
from typing import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from genjax import files
from genjax.kernels import conv2d

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_SIZE = 518            # the reference's inference size (shorter side), 37 patches
_CONFIG_KEY = "config"        # the .npz entry holding the config as JSON text


@dataclasses.dataclass(frozen=True)
class DepthAnythingConfig:
  """The architecture of one Depth Anything V2 variant (hashable: a static jit argument).

  out_indices: the blocks whose outputs feed the head, 1-based (transformers' `out_indices`;
    the original repository's `intermediate_layer_idx` + 1).
  image_size: the pretraining size; the position embeddings are its (image_size / patch_size)^2
    grid and are resized for other inputs.
  features / out_channels: DPT `features` (transformers' fusion_hidden_size) and `out_channels`
    (neck_hidden_sizes), one per out index; reassemble_factors likewise.
  max_depth: the relative head's ReLU output is multiplied by it (1 in the released models).
  pos_interp_offset: 0.0 resizes the position embeddings as transformers does, 0.1 as the
    original repository's DINOv2 (see the module docstring).
  """
  hidden_size: int = 384
  num_layers: int = 12
  num_heads: int = 6
  mlp_ratio: int = 4
  out_indices: tuple[int, ...] = (3, 6, 9, 12)
  patch_size: int = 14
  image_size: int = 518
  features: int = 64
  out_channels: tuple[int, ...] = (48, 96, 192, 384)
  reassemble_factors: tuple[float, ...] = (4, 2, 1, 0.5)
  head_hidden_size: int = 32
  layer_norm_eps: float = 1e-6
  max_depth: float = 1.0
  pos_interp_offset: float = 0.0

  def __post_init__(self):
    n = len(self.out_indices)
    if not (len(self.out_channels) == len(self.reassemble_factors) == n):
      raise ValueError(f"DepthAnythingConfig: out_indices {self.out_indices}, out_channels "
                       f"{self.out_channels} and reassemble_factors {self.reassemble_factors} "
                       "must have the same length")
    if not all(1 <= i <= self.num_layers for i in self.out_indices):
      raise ValueError(f"DepthAnythingConfig: out_indices {self.out_indices} must lie in "
                       f"1..num_layers={self.num_layers}")
    if self.hidden_size % self.num_heads:
      raise ValueError(f"DepthAnythingConfig: hidden_size={self.hidden_size} is not divisible "
                       f"by num_heads={self.num_heads}")
    if any(f not in (4, 2, 1, 0.5) for f in self.reassemble_factors):
      raise ValueError(f"DepthAnythingConfig: reassemble_factors {self.reassemble_factors} "
                       "must each be 4, 2, 1 or 0.5")
    if self.image_size % self.patch_size:
      raise ValueError(f"DepthAnythingConfig: image_size={self.image_size} is not a multiple "
                       f"of patch_size={self.patch_size}")

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self))

  @classmethod
  def from_json(cls, text: str) -> "DepthAnythingConfig":
    d = json.loads(text)
    unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
      raise ValueError(f"DepthAnythingConfig: unknown fields {unknown}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


# The released Depth Anything V2 relative-depth models (the original repository's model_configs
# and intermediate_layer_idx; transformers' Depth-Anything-V2-{Small,Base,Large}-hf configs).
VARIANTS = {
    "small": DepthAnythingConfig(),
    "base": DepthAnythingConfig(hidden_size=768, num_layers=12, num_heads=12, features=128,
                                out_channels=(96, 192, 384, 768)),
    "large": DepthAnythingConfig(hidden_size=1024, num_layers=24, num_heads=16,
                                 out_indices=(5, 12, 18, 24), features=256,
                                 out_channels=(256, 512, 1024, 1024)),
}


def variant(name: str) -> DepthAnythingConfig:
  if name not in VARIANTS:
    raise ValueError(f"unknown Depth Anything variant {name!r}; valid: {', '.join(VARIANTS)}")
  return VARIANTS[name]


# ---------------------------------------------------------------------------------------------
# PyTorch's resampling, as gathers with NumPy weights (shapes are static).

def _cubic_weights(t: np.ndarray, a: float = -0.75) -> np.ndarray:
  """t [N] in [0, 1] -> the 4 weights [N, 4] of taps floor-1 .. floor+2 (PyTorch's
  get_cubic_upsample_coefficients, Keys' kernel with A = -0.75)."""
  far = lambda x: ((a * x - 5 * a) * x + 8 * a) * x - 4 * a    # 1 <= |x| < 2
  near = lambda x: ((a + 2) * x - (a + 3)) * x * x + 1         # |x| < 1
  return np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=-1)


def resize_taps(n_in: int, n_out: int, mode: str, *, align_corners: bool = False,
                scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Indices [n_out, K] (int32) and weights [n_out, K] (float32) of torch F.interpolate along one
  axis: mode "linear" (K=2) or "cubic" (K=4, align_corners=False only). scale: the input/output
  ratio when torch is given `scale_factor` (then 1 / scale_factor) instead of a size.

  The coordinates are computed in float32 as PyTorch's CPU kernels do (area_pixel_compute_scale,
  guard_index_and_lambda), so the sampling points match to the last bit.
  """
  f32 = np.float32
  dst = np.arange(n_out, dtype=f32)
  if align_corners:
    if mode != "linear":
      raise ValueError("resize_taps: align_corners=True is implemented for linear only")
    ratio = f32(n_in - 1) / f32(n_out - 1) if n_out > 1 else f32(0)
    src = ratio * dst
  else:
    ratio = f32(scale) if scale is not None else f32(n_in) / f32(n_out)
    src = ratio * (dst + f32(0.5)) - f32(0.5)
    if mode == "linear":
      src = np.maximum(src, f32(0))      # linear clamps below 0; cubic keeps negative positions
  i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
  t = np.clip(src - i0.astype(f32), f32(0), f32(1))
  if n_in == n_out and scale is None:    # PyTorch copies when the size is unchanged
    i0, t = np.arange(n_out), np.zeros(n_out, f32)
  if mode == "linear":
    idx = np.stack([i0, np.minimum(i0 + 1, n_in - 1)], axis=-1)
    w = np.stack([1 - t, t], axis=-1)
  elif mode == "cubic":
    idx = np.clip(i0[:, None] + np.arange(-1, 3)[None, :], 0, n_in - 1)
    w = _cubic_weights(t.astype(f32)).astype(f32)
  else:
    raise ValueError(f"resize_taps: unknown mode {mode!r}; valid: linear, cubic")
  return idx.astype(np.int32), w.astype(f32)


def _resample_axis(x: jax.Array, axis: int, idx: np.ndarray, w: np.ndarray) -> jax.Array:
  """x resampled along `axis` with taps idx, w [n_out, K]: sum_k w[o, k] * x[idx[o, k]]."""
  x = jnp.moveaxis(x, axis, 0)
  out = 0.0
  for k in range(idx.shape[1]):
    wk = jnp.asarray(w[:, k], x.dtype).reshape((-1,) + (1,) * (x.ndim - 1))
    out = out + wk * jnp.take(x, jnp.asarray(idx[:, k]), axis=0)
  return jnp.moveaxis(out, 0, axis)


def resize_bilinear_align_corners(x: jax.Array, height: int, width: int) -> jax.Array:
  """[B, H, W, C] -> [B, height, width, C]: F.interpolate(mode="bilinear", align_corners=True)
  (width first, then height, as PyTorch's kernel sums)."""
  x = _resample_axis(x, 2, *resize_taps(x.shape[2], width, "linear", align_corners=True))
  return _resample_axis(x, 1, *resize_taps(x.shape[1], height, "linear", align_corners=True))


def resize_bilinear(x: jax.Array, height: int, width: int) -> jax.Array:
  """[B, H, W, C] -> [B, height, width, C]: F.interpolate(mode="bilinear", align_corners=False)
  (no antialiasing)."""
  x = _resample_axis(x, 2, *resize_taps(x.shape[2], width, "linear"))
  return _resample_axis(x, 1, *resize_taps(x.shape[1], height, "linear"))


def resize_bicubic(x: jax.Array, height: int, width: int, *,
                   scales: tuple[float, float] | None = None) -> jax.Array:
  """[B, H, W, C] -> [B, height, width, C]: F.interpolate(mode="bicubic", align_corners=False)
  (A = -0.75, borders clamped, no antialiasing; cv2.INTER_CUBIC's kernel). scales: the
  (height, width) input/output ratios when torch is given scale_factor."""
  sh, sw = scales if scales is not None else (None, None)
  x = _resample_axis(x, 2, *resize_taps(x.shape[2], width, "cubic", scale=sw))
  return _resample_axis(x, 1, *resize_taps(x.shape[1], height, "cubic", scale=sh))


# ---------------------------------------------------------------------------------------------
# The network.

class _Conv(nn.Module):
  """k x k conv (k = 1 or 3, padding (k - 1) / 2, as the reference's) through the conv core.
  x: [B, H, W, Cin] -> [B, ceil(H / stride), ceil(W / stride), features]."""
  features: int
  kernel_size: int = 3
  stride: int = 1
  use_bias: bool = True
  conv_impl: str | None = None

  @nn.compact
  def __call__(self, x):
    k = self.kernel_size
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (k, k, x.shape[-1], self.features), jnp.float32)
    y = conv2d(x, kernel, stride=self.stride, padding="SAME", impl=self.conv_impl)
    if self.use_bias:
      bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
      y = y + bias[None, None, None, :]
    return y


def _layer_norm(eps: float, name: str) -> nn.LayerNorm:
  # Two-pass variance, as torch: DINOv2's hidden states have large-norm tokens where
  # E[x^2] - E[x]^2 loses digits.
  return nn.LayerNorm(epsilon=eps, use_fast_variance=False, name=name)


def position_grid(config: DepthAnythingConfig, grid_h: int, grid_w: int,
                  pos: jax.Array) -> jax.Array:
  """The position embeddings [1, 1 + g*g, D] for a grid_h x grid_w patch grid:
  [1, 1 + grid_h * grid_w, D] (class token first, patches row-major)."""
  g = config.image_size // config.patch_size
  if (grid_h, grid_w) == (g, g):
    return pos   # both references skip the resize at the pretraining size
  d = pos.shape[-1]
  patch = pos[:, 1:].reshape(1, g, g, d)
  off = config.pos_interp_offset
  scales = None if off == 0 else (g / (grid_h + off), g / (grid_w + off))
  patch = resize_bicubic(patch, grid_h, grid_w, scales=scales)
  return jnp.concatenate([pos[:, :1], patch.reshape(1, grid_h * grid_w, d)], axis=1)


class Embeddings(nn.Module):
  """Patch embedding (14x14 stride-14 conv, as a matrix product), class token, position
  embeddings. pixels [B, H, W, 3] -> tokens [B, 1 + (H/14)(W/14), D]."""
  config: DepthAnythingConfig

  @nn.compact
  def __call__(self, pixels):
    c = self.config
    p, d = c.patch_size, c.hidden_size
    b, h, w, ch = pixels.shape
    gh, gw = h // p, w // p
    g = c.image_size // p
    kernel = self.param("patch_kernel", nn.initializers.lecun_normal(), (p, p, ch, d),
                        jnp.float32)
    bias = self.param("patch_bias", nn.initializers.zeros, (d,), jnp.float32)
    cls = self.param("cls_token", nn.initializers.normal(0.02), (1, 1, d), jnp.float32)
    pos = self.param("position_embeddings", nn.initializers.normal(0.02), (1, 1 + g * g, d),
                     jnp.float32)
    patches = pixels.reshape(b, gh, p, gw, p, ch)
    x = jnp.einsum("bhpwqc,pqcd->bhwd", patches, kernel) + bias[None, None, None, :]
    x = jnp.concatenate([jnp.broadcast_to(cls, (b, 1, d)), x.reshape(b, gh * gw, d)], axis=1)
    return x + position_grid(c, gh, gw, pos)


class Attention(nn.Module):
  """Multi-head self-attention, softmax(q k^T / sqrt(head_dim)) v. x: [B, T, D] -> [B, T, D]."""
  num_heads: int

  @nn.compact
  def __call__(self, x):
    b, t, d = x.shape
    hd = d // self.num_heads
    split = lambda y: y.reshape(b, t, self.num_heads, hd)
    q = split(nn.Dense(d, name="q_proj")(x))
    k = split(nn.Dense(d, name="k_proj")(x))
    v = split(nn.Dense(d, name="v_proj")(x))
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) * (hd ** -0.5)
    probs = jax.nn.softmax(logits, axis=-1)
    out = jnp.einsum("bhqk,bkhd->bqhd", probs, v).reshape(b, t, d)
    return nn.Dense(d, name="o_proj")(out)


class Block(nn.Module):
  """Pre-norm ViT block with layer scale: x + g1 * attn(ln1(x)), then + g2 * mlp(ln2(x)).
  x: [B, T, D] -> [B, T, D]."""
  config: DepthAnythingConfig

  @nn.compact
  def __call__(self, x):
    c = self.config
    d = c.hidden_size
    gamma = lambda name: self.param(name, nn.initializers.ones, (d,), jnp.float32)[None, None, :]
    h = Attention(c.num_heads, name="attention")(_layer_norm(c.layer_norm_eps, "norm1")(x))
    x = x + h * gamma("layer_scale1")
    h = _layer_norm(c.layer_norm_eps, "norm2")(x)
    h = nn.Dense(d * c.mlp_ratio, name="fc1")(h)
    h = nn.Dense(d, name="fc2")(nn.gelu(h, approximate=False))
    return x + h * gamma("layer_scale2")


class Backbone(nn.Module):
  """DINOv2: pixels [B, H, W, 3] -> the layer-normed hidden states after the out_indices blocks,
  each [B, (H/14)(W/14), D] (class token dropped)."""
  config: DepthAnythingConfig

  @nn.compact
  def __call__(self, pixels):
    c = self.config
    x = Embeddings(c, name="embeddings")(pixels)
    norm = _layer_norm(c.layer_norm_eps, "layernorm")
    outs = []
    for i in range(c.num_layers):
      x = Block(c, name=f"layer_{i}")(x)
      if i + 1 in c.out_indices:
        outs.append(norm(x)[:, 1:])
    return outs


class Reassemble(nn.Module):
  """Tokens [B, h*w, D] -> a feature map [B, h*f, w*f, channels] (f = factor; 0.5 -> ceil(h/2)):
  1x1 projection, then a transposed conv with kernel = stride = f, identity, or a 3x3 stride-2
  conv."""
  channels: int
  factor: float
  grid: tuple[int, int]
  conv_impl: str | None = None

  @nn.compact
  def __call__(self, tokens):
    b = tokens.shape[0]
    x = tokens.reshape(b, *self.grid, tokens.shape[-1])
    x = _Conv(self.channels, 1, conv_impl=self.conv_impl, name="projection")(x)
    if self.factor > 1:
      f, c = int(self.factor), self.channels
      # Kernel = stride: every input pixel writes its own f x f block (no overlap).
      kernel = self.param("resize_kernel", nn.initializers.lecun_normal(), (f, f, c, c),
                          jnp.float32)
      bias = self.param("resize_bias", nn.initializers.zeros, (c,), jnp.float32)
      h, w = self.grid
      x = jnp.einsum("bhwi,pqio->bhpwqo", x, kernel).reshape(b, h * f, w * f, c)
      x = x + bias[None, None, None, :]
    elif self.factor < 1:
      x = _Conv(self.channels, 3, stride=2, conv_impl=self.conv_impl, name="resize")(x)
    return x


class ResidualUnit(nn.Module):
  """Pre-activation residual unit: x + conv2(relu(conv1(relu(x)))). [B, H, W, F] -> same."""
  conv_impl: str | None = None

  @nn.compact
  def __call__(self, x):
    f = x.shape[-1]
    h = _Conv(f, 3, conv_impl=self.conv_impl, name="convolution1")(nn.relu(x))
    h = _Conv(f, 3, conv_impl=self.conv_impl, name="convolution2")(nn.relu(h))
    return x + h


class Fusion(nn.Module):
  """DPT feature fusion: (x [+ unit1(skip)]) -> unit2 -> bilinear (align_corners) to `size`
  (or x2) -> 1x1 projection. x, skip: [B, H, W, F] -> [B, size..., F]."""
  conv_impl: str | None = None

  @nn.compact
  def __call__(self, x, skip=None, size=None):
    if skip is not None:
      if skip.shape != x.shape:   # never with the DPT sizes; kept as the reference has it
        skip = resize_bilinear(skip, x.shape[1], x.shape[2])
      x = x + ResidualUnit(self.conv_impl, name="residual_layer1")(skip)
    x = ResidualUnit(self.conv_impl, name="residual_layer2")(x)
    size = size or (2 * x.shape[1], 2 * x.shape[2])
    x = resize_bilinear_align_corners(x, *size)
    return _Conv(x.shape[-1], 1, conv_impl=self.conv_impl, name="projection")(x)


class DepthAnything(nn.Module):
  """pixels [B, H, W, 3] (ImageNet-normalised, H and W multiples of patch_size) -> relative
  inverse depth [B, H, W] float32 (>= 0). conv_impl: the conv core's implementation name
  (None: its dispatcher)."""
  config: DepthAnythingConfig
  conv_impl: str | None = None

  @nn.compact
  def __call__(self, pixels):
    c = self.config
    p = c.patch_size
    if pixels.ndim != 4 or pixels.shape[-1] != 3:
      raise ValueError(f"DepthAnything: pixels must be [B, H, W, 3], got shape {pixels.shape}")
    b, h, w, _ = pixels.shape
    if h % p or w % p:
      raise ValueError(f"DepthAnything: height {h} and width {w} must be multiples of {p}")
    grid = (h // p, w // p)
    hidden = Backbone(c, name="backbone")(pixels.astype(jnp.float32))
    feats = []
    for i, (tokens, ch, f) in enumerate(zip(hidden, c.out_channels, c.reassemble_factors)):
      x = Reassemble(ch, f, grid, self.conv_impl, name=f"reassemble_{i}")(tokens)
      feats.append(_Conv(c.features, 3, use_bias=False, conv_impl=self.conv_impl,
                         name=f"neck_conv_{i}")(x))
    # Coarsest first; each fusion output is resized to the next (finer) map, the last x2.
    feats = feats[::-1]
    x = None
    for i, feat in enumerate(feats):
      size = feats[i + 1].shape[1:3] if i + 1 < len(feats) else None
      fusion = Fusion(self.conv_impl, name=f"fusion_{i}")
      x = fusion(feat, size=size) if x is None else fusion(x, feat, size=size)
    x = _Conv(c.features // 2, 3, conv_impl=self.conv_impl, name="head_conv1")(x)
    x = resize_bilinear_align_corners(x, h, w)
    x = nn.relu(_Conv(c.head_hidden_size, 3, conv_impl=self.conv_impl, name="head_conv2")(x))
    x = nn.relu(_Conv(1, 1, conv_impl=self.conv_impl, name="head_conv3")(x))
    return x[..., 0] * c.max_depth


# ---------------------------------------------------------------------------------------------
# Weights.

class DepthAnythingWeightsError(ValueError):
  """A weights file or state dict that does not fit the configured network."""


@functools.cache
def expected_shapes(config: DepthAnythingConfig) -> dict[str, tuple[int, ...]]:
  """Every flat key ("backbone/layer_0/attention/q_proj/kernel", ...) -> its shape."""
  p = config.patch_size
  shapes = jax.eval_shape(DepthAnything(config).init, jax.random.key(0),
                          jax.ShapeDtypeStruct((1, 2 * p, 2 * p, 3), jnp.float32))
  flat = traverse_util.flatten_dict(shapes["params"], sep="/")
  return {k: tuple(v.shape) for k, v in sorted(flat.items())}


def _listed(keys, limit: int = 30) -> str:
  keys = sorted(keys)
  more = f", ... and {len(keys) - limit} more" if len(keys) > limit else ""
  return ", ".join(keys[:limit]) + more


def check_params(flat: Mapping[str, np.ndarray], config: DepthAnythingConfig,
                 source: str = "weights") -> None:
  """Raises DepthAnythingWeightsError listing the missing and unexpected keys and the arrays of
  the wrong shape (expected vs found). flat: key -> array."""
  expected = expected_shapes(config)
  missing = sorted(set(expected) - set(flat))
  unexpected = sorted(set(flat) - set(expected))
  wrong = sorted(k for k in set(expected) & set(flat) if tuple(np.shape(flat[k])) != expected[k])
  if not (missing or unexpected or wrong):
    return
  parts = [f"{source} do not fit Depth Anything V2 with {config} ({len(expected)} arrays "
           f"expected, {len(flat)} found):"]
  if missing:
    parts.append(f"  missing ({len(missing)}): {_listed(missing)}")
  if unexpected:
    parts.append(f"  unexpected ({len(unexpected)}): {_listed(unexpected)}")
  if wrong:
    parts.append(f"  wrong shape ({len(wrong)}): " + _listed(
        f"{k} expected {expected[k]}, found {tuple(np.shape(flat[k]))}" for k in wrong))
  raise DepthAnythingWeightsError("\n".join(parts))


def params_from_flat(flat: Mapping[str, np.ndarray], config: DepthAnythingConfig,
                     source: str = "weights") -> dict:
  """Checked flat arrays -> the Flax params tree (float32 jax arrays)."""
  check_params(flat, config, source)
  return traverse_util.unflatten_dict(
      {k: jnp.asarray(v, jnp.float32) for k, v in flat.items()}, sep="/")


def flatten_params(params: Mapping) -> dict[str, np.ndarray]:
  return {k: np.asarray(v, np.float32)
          for k, v in traverse_util.flatten_dict(dict(params), sep="/").items()}


def save_npz(path, flat_or_params: Mapping, config: DepthAnythingConfig) -> None:
  """Writes the weights (flat arrays or a params tree, checked first) and the config (as JSON
  text under "config") to `path` atomically."""
  nested = any(isinstance(v, Mapping) for v in flat_or_params.values())
  flat = flatten_params(flat_or_params) if nested else {
      k: np.asarray(v, np.float32) for k, v in flat_or_params.items()}
  check_params(flat, config, f"arrays for {os.fspath(path)}")
  with files.atomic_write(path, "wb") as f:
    np.savez(f, **flat, **{_CONFIG_KEY: np.array(config.to_json())})


def load_npz(path) -> tuple[dict, DepthAnythingConfig]:
  """(params, config) from a weights file written by save_npz; DepthAnythingWeightsError names
  the file when it is not one or does not fit its config."""
  name = os.fspath(path)
  if not os.path.isfile(name):
    raise FileNotFoundError(f"Depth Anything weights file {name!r} not found (make one with "
                            "python -m genjax.models.convert_depth_anything)")
  try:
    with np.load(name, allow_pickle=False) as data:
      flat = {k: data[k] for k in data.files}
  except (ValueError, OSError, zipfile.BadZipFile) as e:
    raise DepthAnythingWeightsError(
        f"{name!r} is not a .npz weights file ({e}); a PyTorch checkpoint must first go "
        "through python -m genjax.models.convert_depth_anything") from None
  if _CONFIG_KEY not in flat:
    raise DepthAnythingWeightsError(f"{name!r} has no {_CONFIG_KEY!r} entry: not written by "
                                    "genjax.models.convert_depth_anything")
  try:
    config = DepthAnythingConfig.from_json(str(flat.pop(_CONFIG_KEY)))
  except (ValueError, TypeError) as e:
    raise DepthAnythingWeightsError(f"{name!r}: bad {_CONFIG_KEY!r} entry ({e})") from None
  return params_from_flat(flat, config, f"arrays in {name!r}"), config


# ---------------------------------------------------------------------------------------------
# Whole-photo inference.

def normalize(images: jax.Array) -> jax.Array:
  """RGB in [0, 1], [..., 3] -> ImageNet-normalised float32 (the reference's NormalizeImage)."""
  shape = (1,) * (images.ndim - 1) + (3,)
  mean = jnp.asarray(IMAGENET_MEAN, jnp.float32).reshape(shape)
  std = jnp.asarray(IMAGENET_STD, jnp.float32).reshape(shape)
  return (images.astype(jnp.float32) - mean) / std


def network_size(height: int, width: int, size: int = DEFAULT_SIZE,
                 multiple: int = 14) -> tuple[int, int]:
  """The reference's resize (keep_aspect_ratio, resize_method="lower_bound", ensure_multiple_of
  14): the shorter side becomes `size`, the longer the nearest multiple of 14 to its scaled
  length (not below `size`)."""
  if size % multiple or size <= 0:
    raise ValueError(f"predict size {size} must be a positive multiple of {multiple}")
  scale = max(size / height, size / width)

  def fit(x):
    y = round(x / multiple) * multiple
    return y if y >= size else math.ceil(x / multiple) * multiple
  return fit(scale * height), fit(scale * width)


@functools.partial(jax.jit, static_argnames=("config", "size", "conv_impl"))
def _predict(params, image, *, config, size, conv_impl):
  h, w = image.shape[:2]
  nh, nw = network_size(h, w, size, config.patch_size)
  x = resize_bicubic(normalize(image)[None], nh, nw)
  depth = DepthAnything(config, conv_impl).apply({"params": params}, x)
  return resize_bilinear_align_corners(depth[..., None], h, w)[0, ..., 0]


def predict_depth(params, image, *, config: DepthAnythingConfig, size: int = DEFAULT_SIZE,
                  conv_impl: str | None = None) -> jax.Array:
  """Relative inverse depth of one photo, as the reference's infer_image: [H, W] float32.

  image: [H, W, 3] RGB, uint8 (0..255) or float in [0, 1]. It is resized bicubically (the
  reference's cv2.INTER_CUBIC kernel, no antialiasing) so that its shorter side is `size` (a
  multiple of 14, 518 as the models were trained) and the longer a multiple of 14 keeping the
  aspect; the prediction is resized back bilinearly (align_corners=True). Compiled once per
  (image shape, config, size): uint8 is scaled to float32 before the compiled function.
  """
  image = np.asarray(image)
  if image.ndim != 3 or image.shape[-1] != 3:
    raise ValueError(f"predict_depth: image must be [H, W, 3], got shape {image.shape}")
  x = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
  return _predict(params, x, config=config, size=size, conv_impl=conv_impl)
