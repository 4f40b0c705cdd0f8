"""Multi-scale sliced Wasserstein distance (Karras et al. 2018, "Progressive Growing of
GANs", appendix D.1).

Each image is split into a Laplacian pyramid, from full resolution down to
`min_resolution` (16 in the paper), halving each level. From every level, 128 random 7x7
neighbourhoods per image become descriptors (7 * 7 * C numbers); each set's descriptors
are normalized per channel (mean and std over all its descriptors and positions of that
level). The SWD between the real and the fake descriptors of a level is the mean over
4 x 128 = 512 random unit directions of the 1-D Wasserstein-1 distance between the
projections (sorted and matched). Results are reported x 1e3 as in the paper, per level
(finest first) and averaged over levels. The fine levels measure detail and noise, the
coarse ones the large-scale layout.

Memory: descriptors stay on the host, N x 49 C float32 per level and set (N = images x
128, capped at `max_descriptors`).
"""

import dataclasses
import functools
from typing import Iterable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)  # the paper's 5x5 Gaussian, separable, / 16 per axis


@dataclasses.dataclass(frozen=True)
class SWDConfig:
  patch_size: int = 7
  patches_per_image: int = 128
  min_resolution: int = 16         # the coarsest pyramid level is >= this
  num_projections: int = 128       # directions per repeat
  num_repeats: int = 4             # 4 x 128 = 512 directions in all
  max_descriptors: int = 16384 * 128   # per level and set (the paper's 16384 images)


class SWDResult(NamedTuple):
  per_level: tuple[float, ...]     # x 1e3, finest level first
  resolutions: tuple[tuple[int, int], ...]   # (H, W) of each level
  average: float                   # x 1e3


def num_levels(height: int, width: int, config: SWDConfig = SWDConfig()) -> int:
  """Pyramid depth: halve while both sides stay even and >= 2 * min_resolution."""
  if min(height, width) < config.patch_size:
    raise ValueError(f"swd: images {height}x{width} are smaller than the "
                     f"{config.patch_size}x{config.patch_size} patches")
  levels = 1
  while height % 2 == 0 and width % 2 == 0 and min(height, width) // 2 >= config.min_resolution:
    height, width, levels = height // 2, width // 2, levels + 1
  return levels


def _blur(x: jax.Array, gain: float) -> jax.Array:
  """Separable 5x5 binomial filter with mirror padding (scipy 'mirror' = numpy 'reflect'),
  scaled by gain per axis. x: [B, H, W, C] -> same shape."""
  c = x.shape[-1]
  taps = jnp.asarray(_BINOMIAL, jnp.float32) * (gain / 16.0)
  x = jnp.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
  conv = functools.partial(jax.lax.conv_general_dilated, window_strides=(1, 1), padding="VALID",
                           dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=c,
                           precision=jax.lax.Precision.HIGHEST)
  x = conv(x, jnp.tile(taps.reshape(5, 1, 1, 1), (1, 1, 1, c)))
  return conv(x, jnp.tile(taps.reshape(1, 5, 1, 1), (1, 1, 1, c)))


def pyr_down(x: jax.Array) -> jax.Array:
  """[B, H, W, C] -> [B, H/2, W/2, C]: blur, keep even pixels."""
  return _blur(x, 1.0)[:, ::2, ::2]


def pyr_up(x: jax.Array) -> jax.Array:
  """[B, H, W, C] -> [B, 2H, 2W, C]: zeros between pixels, blur with gain 4."""
  b, h, w, c = x.shape
  up = jnp.zeros((b, 2 * h, 2 * w, c), x.dtype).at[:, ::2, ::2].set(x)
  return _blur(up, 2.0)


def laplacian_pyramid(images: jax.Array, levels: int) -> list[jax.Array]:
  """images: [B, H, W, C] -> `levels` arrays, [B, H / 2^l, W / 2^l, C]: band-pass
  residuals, then the coarsest Gaussian level."""
  pyramid = [images]
  for _ in range(1, levels):
    pyramid.append(pyr_down(pyramid[-1]))
    pyramid[-2] = pyramid[-2] - pyr_up(pyramid[-1])
  return pyramid


def extract_patches(level: jax.Array, key: jax.Array, *, patches_per_image: int,
                    patch_size: int) -> jax.Array:
  """Random patch_size^2 neighbourhoods, uniform over positions.
  level: [B, H, W, C] -> [B * patches_per_image, p, p, C]."""
  b, h, w, c = level.shape
  ky, kx = jax.random.split(key)
  ys = jax.random.randint(ky, (b, patches_per_image), 0, h - patch_size + 1)
  xs = jax.random.randint(kx, (b, patches_per_image), 0, w - patch_size + 1)
  cut = lambda img, y, x: jax.lax.dynamic_slice(img, (y, x, 0), (patch_size, patch_size, c))
  patches = jax.vmap(jax.vmap(cut, in_axes=(None, 0, 0)))(level, ys, xs)
  return patches.reshape(b * patches_per_image, patch_size, patch_size, c)


@functools.partial(jax.jit, static_argnames=("config", "levels"))
def batch_descriptors(images: jax.Array, key: jax.Array, *, config: SWDConfig,
                      levels: int) -> tuple[jax.Array, ...]:
  """Raw descriptors of one batch. images: [B, H, W, C] -> per level [B * P, p, p, C]."""
  pyramid = laplacian_pyramid(images.astype(jnp.float32), levels)
  keys = jax.random.split(key, levels)
  return tuple(extract_patches(lvl, k, patches_per_image=config.patches_per_image,
                               patch_size=config.patch_size)
               for lvl, k in zip(pyramid, keys))


def normalize_descriptors(desc) -> jax.Array:
  """Per-channel standardization over all descriptors and positions of one set.
  desc: [N, p, p, C] -> [N, p * p * C]."""
  desc = jnp.asarray(desc, jnp.float32)
  mean = jnp.mean(desc, axis=(0, 1, 2), keepdims=True)
  std = jnp.std(desc, axis=(0, 1, 2), keepdims=True)
  return ((desc - mean) / jnp.maximum(std, 1e-8)).reshape(desc.shape[0], -1)


def sort_columns(x: jax.Array) -> jax.Array:
  """jnp.sort(x, axis=0) for float32 without NaNs, through int32 keys.

  Why: XLA's CPU sort with the float comparator (a total order that places NaNs) is ~3.5x
  slower than an integer sort; flipping the magnitude bits of negative floats makes their
  int32 bit patterns sort in float order (the map is its own inverse).
  """
  flip = lambda b: b ^ ((b >> 31) & 0x7FFFFFFF)
  keys = flip(jax.lax.bitcast_convert_type(x.astype(jnp.float32), jnp.int32))
  return jax.lax.bitcast_convert_type(flip(jax.lax.sort(keys, dimension=0, is_stable=False)),
                                      jnp.float32)


@functools.partial(jax.jit, static_argnames=("num_projections", "num_repeats"))
def sliced_wasserstein(a: jax.Array, b: jax.Array, key: jax.Array, *, num_projections: int = 128,
                       num_repeats: int = 4) -> jax.Array:
  """Mean over random unit directions of W1 between the 1-D projections of a and b.
  a, b: [N, D] (equal N) -> scalar."""
  def repeat(k):
    dirs = jax.random.normal(k, (a.shape[1], num_projections), jnp.float32)
    dirs = dirs / jnp.linalg.norm(dirs, axis=0, keepdims=True)
    project = lambda x: sort_columns(jnp.matmul(x, dirs, precision=jax.lax.Precision.HIGHEST))
    return jnp.mean(jnp.abs(project(a) - project(b)))
  return jnp.mean(jax.lax.map(repeat, jax.random.split(key, num_repeats)))


def _batches(images) -> Iterable:
  """An array [N, H, W, C] as chunks of 64 images, or the caller's iterable of batches."""
  if hasattr(images, "shape") and getattr(images, "ndim", 0) == 4:
    return (images[i:i + 64] for i in range(0, images.shape[0], 64))
  return images


def collect_descriptors(images, key: jax.Array, config: SWDConfig = SWDConfig()
                        ) -> tuple[list[np.ndarray], tuple[int, int]]:
  """Raw descriptors per level (host float32, [N, p, p, C]) from an array [N, H, W, C] or
  an iterable of [B, H, W, C] batches; stops at config.max_descriptors per level.
  Batch i uses fold_in(key, i). Returns (descriptors, (H, W))."""
  per_level, shape, count = None, None, 0
  for i, batch in enumerate(_batches(images)):
    batch = jnp.asarray(batch)
    if batch.ndim != 4:
      raise ValueError(f"swd: batches must be [B, H, W, C], got shape {batch.shape}")
    if shape is None:
      shape = batch.shape[1:]
      levels = num_levels(shape[0], shape[1], config)
      per_level = [[] for _ in range(levels)]
    elif batch.shape[1:] != shape:
      raise ValueError(f"swd: batch {i} has images {batch.shape[1:]}, earlier ones {shape}")
    desc = batch_descriptors(batch, jax.random.fold_in(key, i), config=config, levels=levels)
    for store, d in zip(per_level, desc):
      store.append(np.asarray(d))
    count += desc[0].shape[0]
    if count >= config.max_descriptors:
      break
  if per_level is None:
    raise ValueError("swd: no images")
  return [np.concatenate(d)[:config.max_descriptors] for d in per_level], shape[:2]


def swd_from_descriptors(real: list[np.ndarray], fake: list[np.ndarray], key: jax.Array,
                         config: SWDConfig = SWDConfig()) -> list[float]:
  """SWD x 1e3 per level from raw descriptors (collect_descriptors). The larger set is cut
  to the size of the smaller (sorted matching needs equal counts)."""
  if len(real) != len(fake):
    raise ValueError(f"swd: {len(real)} real levels vs {len(fake)} fake levels; "
                     "images of different sizes?")
  out = []
  for level, (r, f) in enumerate(zip(real, fake)):
    n = min(r.shape[0], f.shape[0])
    d = sliced_wasserstein(normalize_descriptors(r[:n]), normalize_descriptors(f[:n]),
                           jax.random.fold_in(key, level), num_projections=config.num_projections,
                           num_repeats=config.num_repeats)
    out.append(float(d) * 1e3)
  return out


def swd(real_images, fake_images, key: jax.Array, config: SWDConfig = SWDConfig()) -> SWDResult:
  """Multi-scale SWD between two image sets (any value range; the descriptors are
  standardized). Each set: an array [N, H, W, C] or an iterable of [B, H, W, C] batches.
  `key` picks the patches (independently per set) and the projection directions."""
  k_real, k_fake, k_proj = (jax.random.fold_in(key, i) for i in range(3))
  real, real_hw = collect_descriptors(real_images, k_real, config)
  fake, fake_hw = collect_descriptors(fake_images, k_fake, config)
  if real_hw != fake_hw:
    raise ValueError(f"swd: real images are {real_hw}, fake images {fake_hw}")
  per_level = swd_from_descriptors(real, fake, k_proj, config)
  h, w = real_hw
  resolutions = tuple((h >> l, w >> l) for l in range(len(per_level)))
  return SWDResult(tuple(per_level), resolutions, float(np.mean(per_level)))
