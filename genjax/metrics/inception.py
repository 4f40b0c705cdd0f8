"""The FID Inception-v3 network in Flax Linen, with weights from a local .npz file.

Architecture: torchvision's Inception3 as patched by pytorch-fid (`fid_inception_v3`) to
match the TensorFlow graph of the original FID code (Heusel et al. 2017), weights
pt_inception-2015-12-05: the InceptionA/C/E blocks average-pool without counting padded
pixels (FIDInceptionA, FIDInceptionC, FIDInceptionE_1) and the last block max-pools in its
pool branch (FIDInceptionE_2). Every conv is BasicConv2d: conv without bias, BatchNorm
(eps 1e-3, inference statistics), ReLU. The output is the 2048-d pool3 feature (global
average of Mixed_7c); there is no classifier head.

Input: images [B, H, W, 3] (NHWC) with values in `value_range` ((-1, 1) by default, the
genjax convention; (0, 255) for uint8 pixels; (0, 1) is pytorch-fid's input). They are
mapped linearly to [-1, 1] and resized bilinearly to 299x299 with half-pixel centers and no
antialiasing, as pytorch-fid does (F.interpolate(..., mode="bilinear",
align_corners=False)); the linear map and the resize commute. Set resize=None to feed
another size; the network accepts any H, W >= 75 (the stride-2 steps then leave 1x1 at
Mixed_7c), but FID is only comparable to published numbers at 299.

Weights file (.npz, one float32 array per parameter, keys joined with "/"):

    <layer>/conv/kernel   [kh, kw, in, out]   (torch conv.weight [out, in, kh, kw] transposed)
    <layer>/bn/scale      [out]               (torch bn.weight)
    <layer>/bn/bias       [out]               (torch bn.bias)
    <layer>/bn/mean       [out]               (torch bn.running_mean)
    <layer>/bn/var        [out]               (torch bn.running_var)

for the 94 layers Conv2d_1a_3x3, Conv2d_2a_3x3, Conv2d_2b_3x3, Conv2d_3b_1x1,
Conv2d_4a_3x3 and Mixed_{5b,5c,5d,6a,6b,6c,6d,6e,7a,7b,7c}/<branch>, the branch names
those of torchvision (e.g. Mixed_6b/branch7x7dbl_3/conv/kernel [1, 7, 128, 128]); the
complete list with shapes is expected_shapes(). Make it from pytorch-fid's weights with
`python -m genjax.metrics.convert_inception pt_inception-2015-12-05-6726825d.pth out.npz`
(see convert_inception.py); nothing here downloads anything.
"""

import functools
import os
import zipfile
from typing import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from genjax import files

FEATURE_DIM = 2048
INPUT_SIZE = 299
MIN_INPUT_SIZE = 75
_STATS = ("mean", "var")   # leaf names that live in the batch_stats collection


class BasicConv2d(nn.Module):
  """conv (no bias) -> BatchNorm(eps=1e-3, running statistics) -> ReLU.
  x: [B, H, W, Cin] -> [B, H', W', features]."""
  features: int
  kernel_size: tuple[int, int] = (1, 1)
  strides: int = 1
  padding: tuple[int, int] = (0, 0)   # (rows, cols) on each side, as torch's padding=

  @nn.compact
  def __call__(self, x):
    ph, pw = self.padding
    x = nn.Conv(self.features, self.kernel_size, strides=self.strides,
                padding=((ph, ph), (pw, pw)), use_bias=False, name="conv")(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
    return nn.relu(x)


def pool_3x3_same(x: jax.Array, kind: str) -> jax.Array:
  """3x3, stride 1, padding 1. "avg" divides by the number of real pixels in the window
  (count_include_pad=False, the FID variants); "max" ignores the padding."""
  if kind == "avg":
    return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=False)
  if kind == "max":
    return nn.max_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)))
  raise ValueError(f"unknown pool kind {kind!r}; valid: avg, max")


def _max_pool_3x3_s2(x):
  return nn.max_pool(x, (3, 3), (2, 2))


class InceptionA(nn.Module):
  """FIDInceptionA: -> 64 + 64 + 96 + pool_features channels."""
  pool_features: int

  @nn.compact
  def __call__(self, x):
    c = lambda name, f, k, p=(0, 0): BasicConv2d(f, k, padding=p, name=name)
    b1 = c("branch1x1", 64, (1, 1))(x)
    b5 = c("branch5x5_2", 64, (5, 5), (2, 2))(c("branch5x5_1", 48, (1, 1))(x))
    b3 = c("branch3x3dbl_1", 64, (1, 1))(x)
    b3 = c("branch3x3dbl_3", 96, (3, 3), (1, 1))(c("branch3x3dbl_2", 96, (3, 3), (1, 1))(b3))
    bp = c("branch_pool", self.pool_features, (1, 1))(pool_3x3_same(x, "avg"))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  """torchvision InceptionB (Mixed_6a), stride 2: -> 384 + 96 + Cin channels."""

  @nn.compact
  def __call__(self, x):
    c = lambda name, f, k, s=1, p=(0, 0): BasicConv2d(f, k, s, p, name=name)
    b3 = c("branch3x3", 384, (3, 3), 2)(x)
    bd = c("branch3x3dbl_2", 96, (3, 3), 1, (1, 1))(c("branch3x3dbl_1", 64, (1, 1))(x))
    bd = c("branch3x3dbl_3", 96, (3, 3), 2)(bd)
    return jnp.concatenate([b3, bd, _max_pool_3x3_s2(x)], axis=-1)


class InceptionC(nn.Module):
  """FIDInceptionC (factorized 7x7): -> 4 x 192 channels."""
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    c = lambda name, f, k, p=(0, 0): BasicConv2d(f, k, padding=p, name=name)
    row = lambda name, f: c(name, f, (1, 7), (0, 3))   # 1x7: mixes along width
    col = lambda name, f: c(name, f, (7, 1), (3, 0))   # 7x1: mixes along height
    b1 = c("branch1x1", 192, (1, 1))(x)
    b7 = c("branch7x7_1", c7, (1, 1))(x)
    b7 = col("branch7x7_3", 192)(row("branch7x7_2", c7)(b7))
    bd = c("branch7x7dbl_1", c7, (1, 1))(x)
    bd = row("branch7x7dbl_3", c7)(col("branch7x7dbl_2", c7)(bd))
    bd = row("branch7x7dbl_5", 192)(col("branch7x7dbl_4", c7)(bd))
    bp = c("branch_pool", 192, (1, 1))(pool_3x3_same(x, "avg"))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  """torchvision InceptionD (Mixed_7a), stride 2: -> 320 + 192 + Cin channels."""

  @nn.compact
  def __call__(self, x):
    c = lambda name, f, k, s=1, p=(0, 0): BasicConv2d(f, k, s, p, name=name)
    b3 = c("branch3x3_2", 320, (3, 3), 2)(c("branch3x3_1", 192, (1, 1))(x))
    b7 = c("branch7x7x3_1", 192, (1, 1))(x)
    b7 = c("branch7x7x3_2", 192, (1, 7), 1, (0, 3))(b7)
    b7 = c("branch7x7x3_3", 192, (7, 1), 1, (3, 0))(b7)
    b7 = c("branch7x7x3_4", 192, (3, 3), 2)(b7)
    return jnp.concatenate([b3, b7, _max_pool_3x3_s2(x)], axis=-1)


class InceptionE(nn.Module):
  """FIDInceptionE_1 (pool="avg", Mixed_7b) / FIDInceptionE_2 (pool="max", Mixed_7c):
  -> 320 + 768 + 768 + 192 = 2048 channels."""
  pool: str

  @nn.compact
  def __call__(self, x):
    c = lambda name, f, k, p=(0, 0): BasicConv2d(f, k, padding=p, name=name)
    b1 = c("branch1x1", 320, (1, 1))(x)
    b3 = c("branch3x3_1", 384, (1, 1))(x)
    b3 = jnp.concatenate([c("branch3x3_2a", 384, (1, 3), (0, 1))(b3),
                          c("branch3x3_2b", 384, (3, 1), (1, 0))(b3)], axis=-1)
    bd = c("branch3x3dbl_2", 384, (3, 3), (1, 1))(c("branch3x3dbl_1", 448, (1, 1))(x))
    bd = jnp.concatenate([c("branch3x3dbl_3a", 384, (1, 3), (0, 1))(bd),
                          c("branch3x3dbl_3b", 384, (3, 1), (1, 0))(bd)], axis=-1)
    bp = c("branch_pool", 192, (1, 1))(pool_3x3_same(x, self.pool))
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


# The mixed blocks in order, as pytorch-fid's fid_inception_v3 builds them.
MIXED_BLOCKS = (
    ("Mixed_5b", InceptionA, {"pool_features": 32}),
    ("Mixed_5c", InceptionA, {"pool_features": 64}),
    ("Mixed_5d", InceptionA, {"pool_features": 64}),
    ("Mixed_6a", InceptionB, {}),
    ("Mixed_6b", InceptionC, {"channels_7x7": 128}),
    ("Mixed_6c", InceptionC, {"channels_7x7": 160}),
    ("Mixed_6d", InceptionC, {"channels_7x7": 160}),
    ("Mixed_6e", InceptionC, {"channels_7x7": 192}),
    ("Mixed_7a", InceptionD, {}),
    ("Mixed_7b", InceptionE, {"pool": "avg"}),
    ("Mixed_7c", InceptionE, {"pool": "max"}),
)


def resize_bilinear(x: jax.Array, height: int, width: int) -> jax.Array:
  """[B, H, W, C] -> [B, height, width, C]: torch F.interpolate(mode="bilinear",
  align_corners=False) semantics (half-pixel centers, edge clamp, no antialias)."""
  return jax.image.resize(x, (x.shape[0], height, width, x.shape[3]), "bilinear",
                          antialias=False)


def preprocess(images: jax.Array, value_range: tuple[float, float] = (-1.0, 1.0),
               resize: int | None = INPUT_SIZE) -> jax.Array:
  """[B, H, W, 3] in value_range -> [B, resize, resize, 3] float32 in [-1, 1]."""
  lo, hi = value_range
  x = (images.astype(jnp.float32) - lo) * (2.0 / (hi - lo)) - 1.0
  return x if resize is None else resize_bilinear(x, resize, resize)


class InceptionV3(nn.Module):
  """images: [B, H, W, 3] in value_range -> pool3 features [B, 2048] float32."""
  value_range: tuple[float, float] = (-1.0, 1.0)
  resize: int | None = INPUT_SIZE

  @nn.compact
  def __call__(self, images):
    if images.ndim != 4 or images.shape[-1] != 3:
      raise ValueError(f"InceptionV3: images must be [B, H, W, 3], got shape {images.shape}")
    x = preprocess(images, self.value_range, self.resize)
    if min(x.shape[1:3]) < MIN_INPUT_SIZE:
      raise ValueError(f"InceptionV3: input {x.shape[1]}x{x.shape[2]} is smaller than "
                       f"{MIN_INPUT_SIZE}x{MIN_INPUT_SIZE}")
    x = BasicConv2d(32, (3, 3), 2, name="Conv2d_1a_3x3")(x)
    x = BasicConv2d(32, (3, 3), name="Conv2d_2a_3x3")(x)
    x = BasicConv2d(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)
    x = _max_pool_3x3_s2(x)
    x = BasicConv2d(80, (1, 1), name="Conv2d_3b_1x1")(x)
    x = BasicConv2d(192, (3, 3), name="Conv2d_4a_3x3")(x)
    x = _max_pool_3x3_s2(x)
    for name, block, kwargs in MIXED_BLOCKS:
      x = block(name=name, **kwargs)(x)
    return jnp.mean(x, axis=(1, 2))


class InceptionWeightsError(ValueError):
  """A weights file that does not fit InceptionV3 (lists the mismatched layers)."""


@functools.cache
def _expected_shapes() -> tuple[tuple[str, tuple[int, ...]], ...]:
  shapes = jax.eval_shape(InceptionV3(resize=None).init, jax.random.key(0),
                          jax.ShapeDtypeStruct((1, MIN_INPUT_SIZE, MIN_INPUT_SIZE, 3),
                                               jnp.float32))
  flat = {}
  for collection in ("params", "batch_stats"):
    for path, leaf in traverse_util.flatten_dict(shapes[collection], sep="/").items():
      flat[path] = tuple(leaf.shape)
  return tuple(sorted(flat.items()))


def expected_shapes() -> dict[str, tuple[int, ...]]:
  """Every key of the weights file -> its shape (470 arrays, 94 layers)."""
  return dict(_expected_shapes())


def _layer(key: str) -> str:
  """"Mixed_5b/branch1x1/conv/kernel" -> "Mixed_5b/branch1x1"."""
  return key.rsplit("/", 2)[0]


def _grouped(keys, detail=lambda k: k.rsplit("/", 2)[1] + "/" + k.rsplit("/", 1)[1],
             limit=40) -> str:
  by_layer: dict[str, list[str]] = {}
  for k in sorted(keys):
    by_layer.setdefault(_layer(k), []).append(detail(k))
  lines = [f"    {layer}: {', '.join(items)}" for layer, items in by_layer.items()]
  if len(lines) > limit:
    lines = lines[:limit] + [f"    ... and {len(lines) - limit} more layers"]
  return "\n".join(lines)


def check_weights(flat: Mapping[str, np.ndarray], source: str = "weights") -> None:
  """Raises InceptionWeightsError listing, by layer, the missing keys, the unexpected keys
  and the arrays of the wrong shape (expected vs found). flat: key -> array."""
  expected = expected_shapes()
  missing = sorted(set(expected) - set(flat))
  unexpected = sorted(set(flat) - set(expected))
  wrong = sorted(k for k in set(expected) & set(flat) if tuple(np.shape(flat[k])) != expected[k])
  if not (missing or unexpected or wrong):
    return
  parts = [f"{source} do not fit the FID InceptionV3 ({len(expected)} arrays expected, "
           f"{len(flat)} found):"]
  if missing:
    parts.append(f"  missing ({len(missing)} arrays):\n" + _grouped(missing))
  if unexpected:
    parts.append(f"  unexpected ({len(unexpected)} arrays):\n" + _grouped(unexpected, str))
  if wrong:
    shape_of = lambda k: (f"{k.rsplit('/', 2)[1]}/{k.rsplit('/', 1)[1]} expected "
                          f"{expected[k]}, found {tuple(np.shape(flat[k]))}")
    parts.append(f"  wrong shape ({len(wrong)} arrays):\n" + _grouped(wrong, shape_of))
  if unexpected and any("." in k for k in unexpected):
    parts.append("  (keys with dots look like a PyTorch state dict: convert it with "
                 "python -m genjax.metrics.convert_inception)")
  raise InceptionWeightsError("\n".join(parts))


def variables_from_flat(flat: Mapping[str, np.ndarray], source: str = "weights") -> dict:
  """Checked flat arrays -> Flax variables {"params": ..., "batch_stats": ...} (float32)."""
  check_weights(flat, source)
  collections = {"params": {}, "batch_stats": {}}
  for k, v in flat.items():
    collection = "batch_stats" if k.rsplit("/", 1)[1] in _STATS else "params"
    collections[collection][k] = jnp.asarray(v, jnp.float32)
  return {c: traverse_util.unflatten_dict(d, sep="/") for c, d in collections.items()}


def flatten_variables(variables: Mapping) -> dict[str, np.ndarray]:
  """Flax variables -> the flat key -> float32 array dict of the weights file."""
  flat = {}
  for collection in ("params", "batch_stats"):
    for path, leaf in traverse_util.flatten_dict(dict(variables[collection]), sep="/").items():
      flat[path] = np.asarray(leaf, np.float32)
  return flat


def save_npz(path: str | os.PathLike, flat_or_variables: Mapping) -> None:
  """Writes a weights file from flat arrays or Flax variables (checked first)."""
  flat = (flatten_variables(flat_or_variables) if "params" in flat_or_variables
          else {k: np.asarray(v, np.float32) for k, v in flat_or_variables.items()})
  check_weights(flat, f"arrays for {os.fspath(path)}")
  with files.atomic_write(path) as f:  # exactly `path` (np.savez(path) would add .npz)
    np.savez(f, **flat)


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """The arrays of a weights file, unchecked."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"Inception weights file {path!r} not found (make one with "
                            "python -m genjax.metrics.convert_inception)")
  try:
    with np.load(path, allow_pickle=False) as data:
      return {k: data[k] for k in data.files}
  except (ValueError, OSError, zipfile.BadZipFile) as e:
    raise InceptionWeightsError(f"{path!r} is not a .npz weights file ({e}); a PyTorch .pth "
                                "must first go through python -m genjax.metrics."
                                "convert_inception") from None


def inception_from_npz(path: str | os.PathLike, *, value_range: tuple[float, float] = (-1.0, 1.0),
                       resize: int | None = INPUT_SIZE) -> tuple[InceptionV3, dict]:
  """(module, variables) from a weights file; InceptionWeightsError if any key or shape is
  off. Features: module.apply(variables, images) -> [B, 2048]."""
  flat = load_npz(path)
  variables = variables_from_flat(flat, f"arrays in {os.fspath(path)!r}")
  return InceptionV3(value_range=tuple(value_range), resize=resize), variables
