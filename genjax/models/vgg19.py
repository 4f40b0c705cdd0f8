"""VGG19 features (Simonyan & Zisserman 2015) in Flax Linen, weights from a local .npz file.

Architecture: the `features` part of torchvision.models.vgg19 (configuration "E", no batch
norm): 16 3x3 convs (padding 1, bias) each followed by ReLU, and a 2x2 stride-2 max pool after
each of the five blocks. The classifier is not ported: perceptual content and style losses
(Gatys et al. 2016; Johnson et al. 2016; White-box Cartoonization, Wang & Yu 2020) use
feature maps only. Layers are named as in those papers: convB_I / reluB_I is the I-th conv of
block B (conv4_2 is torchvision's features[21], relu4_2 its features[22]).

Input: images [B, H, W, 3] (NHWC), RGB in [0, 1]. With normalize=True (the default) they are
ImageNet-normalised (`normalize`: (x - mean) / std per channel) as torchvision's weights
expect; set normalize=False to feed already-normalised images. The network runs only up to
the deepest tapped layer, so a relu4_2 content loss never touches block 5.

Output: {layer name: [B, H / 2^(B-1), W / 2^(B-1), C]} for the requested `taps`
(C = 64, 128, 256, 512, 512 for blocks 1..5).

Weights file (.npz, float32, keys "convB_I/kernel" [3, 3, in, out] (torch [out, in, 3, 3]
transposed) and "convB_I/bias" [out], all 16 convs): made from torchvision's published
`vgg19-dcbb9e9d.pth` by `python -m genjax.models.convert_vgg19 vgg19-dcbb9e9d.pth vgg19.npz`.
Nothing here downloads anything.
"""

import functools
import os
import zipfile
from typing import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from genjax import files

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Output channels of each block's convs (torchvision cfg "E").
BLOCKS = ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512),
          (512, 512, 512, 512))
CONVS = tuple(f"conv{b + 1}_{i + 1}" for b, block in enumerate(BLOCKS) for i in range(len(block)))
LAYERS = tuple(f"{kind}{c[4:]}" for c in CONVS for kind in ("conv", "relu")) + tuple(
    f"pool{b + 1}" for b in range(len(BLOCKS)))
# The taps of the perceptual losses: content at relu4_2 (Gatys et al.), style at reluB_1.
CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


class VGG19WeightsError(ValueError):
  """A weights file or state dict that does not fit VGG19's features."""


def normalize(images: jax.Array) -> jax.Array:
  """RGB in [0, 1], [..., 3] -> ImageNet-normalised float32 (torchvision's transforms)."""
  shape = (1,) * (images.ndim - 1) + (3,)
  mean = jnp.asarray(IMAGENET_MEAN, jnp.float32).reshape(shape)
  std = jnp.asarray(IMAGENET_STD, jnp.float32).reshape(shape)
  return (images.astype(jnp.float32) - mean) / std


def check_taps(taps: Sequence[str]) -> tuple[str, ...]:
  taps = tuple(taps)
  bad = [t for t in taps if t not in LAYERS]
  if bad or not taps:
    raise ValueError(f"VGG19 taps {bad or taps!r} are not layers; valid: {', '.join(LAYERS)}")
  return taps


def convs_needed(taps: Sequence[str]) -> tuple[str, ...]:
  """The convs that run to compute `taps` (conv1_1 up to the deepest one's block)."""
  def depth(layer):
    if layer.startswith("pool"):
      b = int(layer[4:])
      return CONVS.index(f"conv{b}_{len(BLOCKS[b - 1])}")
    return CONVS.index("conv" + layer[4:])
  return CONVS[:max(depth(t) for t in check_taps(taps)) + 1]


class VGG19(nn.Module):
  """torchvision vgg19().features up to the deepest of `taps`.
  images [B, H, W, 3] -> {tap: [B, h, w, C]} (see the module docstring)."""
  taps: tuple[str, ...] = (CONTENT_LAYER,) + STYLE_LAYERS
  normalize: bool = True

  @nn.compact
  def __call__(self, images: jax.Array) -> dict[str, jax.Array]:
    if images.ndim != 4 or images.shape[-1] != 3:
      raise ValueError(f"VGG19: images must be [B, H, W, 3], got shape {images.shape}")
    needed = convs_needed(self.taps)
    x = normalize(images) if self.normalize else images.astype(jnp.float32)
    out = {}
    for b, block in enumerate(BLOCKS):
      for i, features in enumerate(block):
        name = f"{b + 1}_{i + 1}"
        if f"conv{name}" not in needed:
          return {t: out[t] for t in self.taps}
        x = nn.Conv(features, (3, 3), padding=((1, 1), (1, 1)), name=f"conv{name}",
                    precision=jax.lax.Precision.HIGHEST)(x)
        out[f"conv{name}"] = x
        x = nn.relu(x)
        out[f"relu{name}"] = x
      x = nn.max_pool(x, (2, 2), strides=(2, 2))   # floor, as torch's MaxPool2d(2, 2)
      out[f"pool{b + 1}"] = x
    return {t: out[t] for t in self.taps}


# ---------------------------------------------------------------------------------------------
# Weights.

@functools.cache
def expected_shapes() -> dict[str, tuple[int, ...]]:
  """Every key of the weights file ("conv1_1/kernel", ...) -> its shape (32 arrays)."""
  shapes, cin = {}, 3
  for b, block in enumerate(BLOCKS):
    for i, cout in enumerate(block):
      shapes[f"conv{b + 1}_{i + 1}/kernel"] = (3, 3, cin, cout)
      shapes[f"conv{b + 1}_{i + 1}/bias"] = (cout,)
      cin = cout
  return shapes


def _listed(keys, limit: int = 20) -> str:
  keys = sorted(keys)
  return ", ".join(keys[:limit]) + (f", ... and {len(keys) - limit} more"
                                    if len(keys) > limit else "")


def check_weights(flat: Mapping[str, np.ndarray], source: str = "weights") -> None:
  """Raises VGG19WeightsError naming `source` and listing the missing and unexpected keys and
  the arrays of the wrong shape (expected vs found)."""
  expected = expected_shapes()
  missing = sorted(set(expected) - set(flat))
  unexpected = sorted(set(flat) - set(expected))
  wrong = sorted(k for k in set(expected) & set(flat) if tuple(np.shape(flat[k])) != expected[k])
  if not (missing or unexpected or wrong):
    return
  parts = [f"{source} do not fit VGG19's features ({len(expected)} arrays expected, "
           f"{len(flat)} found):"]
  if missing:
    parts.append(f"  missing ({len(missing)}): {_listed(missing)}")
  if unexpected:
    parts.append(f"  unexpected ({len(unexpected)}): {_listed(unexpected)}")
    if any("." in k for k in unexpected):
      parts.append("  (keys with dots look like a PyTorch state dict: convert it with "
                   "python -m genjax.models.convert_vgg19)")
  if wrong:
    parts.append(f"  wrong shape ({len(wrong)}): " + _listed(
        f"{k} expected {expected[k]}, found {tuple(np.shape(flat[k]))}" for k in wrong))
  raise VGG19WeightsError("\n".join(parts))


def params_from_flat(flat: Mapping[str, np.ndarray], source: str = "weights", *,
                     taps: Sequence[str] | None = None) -> dict:
  """Checked flat arrays -> the Flax params tree (float32), only the convs `taps` need (all
  16 without taps): the jitted loss then carries no unused block-5 weights."""
  check_weights(flat, source)
  keep = set(convs_needed(taps)) if taps is not None else set(CONVS)
  return traverse_util.unflatten_dict(
      {k: jnp.asarray(v, jnp.float32) for k, v in flat.items() if k.split("/")[0] in keep},
      sep="/")


def save_npz(path: str | os.PathLike, flat_or_params: Mapping) -> None:
  """Writes a weights file from flat arrays or a params tree (checked first), atomically."""
  nested = any(isinstance(v, Mapping) for v in flat_or_params.values())
  flat = ({k: np.asarray(v, np.float32) for k, v in
           traverse_util.flatten_dict(dict(flat_or_params), sep="/").items()} if nested else
          {k: np.asarray(v, np.float32) for k, v in flat_or_params.items()})
  check_weights(flat, f"arrays for {os.fspath(path)!r}")
  with files.atomic_write(path) as f:  # exactly `path` (np.savez(path) would add .npz)
    np.savez(f, **flat)


def _existing(path: str | os.PathLike) -> str:
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"VGG19 weights file {path!r} not found (make one from "
                            "vgg19-dcbb9e9d.pth with python -m genjax.models.convert_vgg19)")
  return path


def _not_npz(path: str, e: Exception) -> VGG19WeightsError:
  return VGG19WeightsError(f"{path!r} is not a .npz weights file ({e}); a PyTorch .pth must "
                           "first go through python -m genjax.models.convert_vgg19")


def check_npz(path: str | os.PathLike) -> None:
  """Checks a weights file as load_npz does, reading only the arrays' .npy headers (names,
  shapes), not their data: cheap enough to run before a run folder is made."""
  path = _existing(path)
  readers = {(1, 0): np.lib.format.read_array_header_1_0,
             (2, 0): np.lib.format.read_array_header_2_0}
  shapes = {}
  try:
    with zipfile.ZipFile(path) as z:
      for name in z.namelist():
        with z.open(name) as f:
          version = np.lib.format.read_magic(f)
          if version not in readers:
            raise ValueError(f"{name}: .npy format version {version}")
          shape, _, dtype = readers[version](f)
        shapes[name.removesuffix(".npy")] = jax.ShapeDtypeStruct(shape, dtype)
  except (ValueError, OSError, zipfile.BadZipFile) as e:
    raise _not_npz(path, e) from None
  check_weights(shapes, f"arrays in {path!r}")


def load_npz(path: str | os.PathLike, *, taps: Sequence[str] | None = None) -> dict:
  """The params tree of a weights file (see params_from_flat); FileNotFoundError or
  VGG19WeightsError naming the file."""
  path = _existing(path)
  try:
    with np.load(path, allow_pickle=False) as data:
      flat = {k: data[k] for k in data.files}
  except (ValueError, OSError, zipfile.BadZipFile) as e:
    raise _not_npz(path, e) from None
  return params_from_flat(flat, f"arrays in {path!r}", taps=taps)


def init_params(key: jax.Array, *, taps: Sequence[str] | None = None) -> dict:
  """Random weights drawn as torchvision initialises vgg19(weights=None): kaiming normal
  (fan_out, ReLU gain) kernels, zero biases. For experiments without a weights file only:
  random features measure texture statistics but carry no ImageNet semantics."""
  params = {}
  keep = set(convs_needed(taps)) if taps is not None else set(CONVS)
  for i, (k, shape) in enumerate(s for s in expected_shapes().items() if s[0].endswith("kernel")):
    conv = k.split("/")[0]
    if conv not in keep:
      continue
    fan_out = shape[0] * shape[1] * shape[3]
    kernel = jax.random.normal(jax.random.fold_in(key, i), shape) * np.sqrt(2.0 / fan_out)
    params[conv] = {"kernel": kernel, "bias": jnp.zeros(shape[3:], jnp.float32)}
  return params
