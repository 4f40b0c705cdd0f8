"""Feature extractors by name, and streaming feature statistics for FID / KID / P&R.

"inception" is the FID network (needs weights=<path to .npz>, see inception.py); "pixels"
and "random_conv" need no weights at all: they make the metric code runnable in tests and
on machines without the Inception file, but their numbers are not comparable to
published FIDs (use them to compare runs against each other only).
"""

import dataclasses
import functools
import os
from typing import Callable, Iterable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from genjax import files
from genjax.metrics import frechet, inception
from genjax.naming import lookup


@dataclasses.dataclass(frozen=True)
class Extractor:
  """images [N, H, W, C] (C = 3, or 1 tiled to 3) -> features [N, D] float32 NumPy.

  `apply` is jitted and always sees [batch_size, H, W, 3]: the last partial chunk is
  zero-padded, so a stream of batches compiles once per image size.
  """
  name: str
  apply: Callable[[jax.Array], jax.Array]
  batch_size: int = 64

  def __call__(self, images) -> np.ndarray:
    x = jnp.asarray(images)
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
      raise ValueError(f"{self.name} features: images must be [N, H, W, 3] (or 1 channel), "
                       f"got shape {x.shape}")
    if x.shape[-1] == 1:
      x = jnp.tile(x, (1, 1, 1, 3))
    n, out = x.shape[0], []
    for i in range(0, n, self.batch_size):
      chunk = x[i:i + self.batch_size]
      pad = self.batch_size - chunk.shape[0]
      chunk = jnp.pad(chunk, ((0, pad), (0, 0), (0, 0), (0, 0)))
      out.append(np.asarray(self.apply(chunk), np.float32)[:self.batch_size - pad])
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def _to_unit_range(x, value_range):
  """[lo, hi] -> [-1, 1], float32."""
  lo, hi = value_range
  return (x.astype(jnp.float32) - lo) * (2.0 / (hi - lo)) - 1.0


def inception_extractor(weights: str | os.PathLike | None = None, *,
                        value_range: tuple[float, float] = (-1.0, 1.0),
                        batch_size: int = 64) -> Extractor:
  """FID Inception pool3 features [N, 2048]; images in value_range, resized to 299."""
  if weights is None:
    raise ValueError("feature extractor 'inception' needs weights=<path to the .npz made by "
                     "python -m genjax.metrics.convert_inception>")
  module, variables = inception.inception_from_npz(weights, value_range=value_range)
  apply = jax.jit(module.apply)   # variables as an argument, not baked-in constants
  return Extractor("inception", functools.partial(apply, variables), batch_size)


def pixels_extractor(*, size: int = 8, value_range: tuple[float, float] = (-1.0, 1.0),
                     batch_size: int = 64) -> Extractor:
  """Images resized to size x size (antialiased linear), flattened: [N, size * size * 3]."""
  @jax.jit
  def apply(x):
    x = _to_unit_range(x, value_range)
    x = jax.image.resize(x, (x.shape[0], size, size, x.shape[3]), "linear", antialias=True)
    return x.reshape(x.shape[0], -1)
  return Extractor("pixels", apply, batch_size)


def random_conv_extractor(*, seed: int = 0, width: int = 32,
                          value_range: tuple[float, float] = (-1.0, 1.0),
                          batch_size: int = 64) -> Extractor:
  """A fixed random two-layer conv net (He-initialized from `seed`, stride 2, ReLU);
  features are the per-channel mean and std of its output: [N, 4 * width]."""
  k1, k2 = jax.random.split(jax.random.key(seed))
  w1 = jax.random.normal(k1, (3, 3, 3, width)) * np.sqrt(2.0 / 27)
  w2 = jax.random.normal(k2, (3, 3, width, 2 * width)) * np.sqrt(2.0 / (9 * width))
  conv = functools.partial(jax.lax.conv_general_dilated, window_strides=(2, 2), padding="SAME",
                           dimension_numbers=("NHWC", "HWIO", "NHWC"))

  @jax.jit
  def apply(x):
    h = jax.nn.relu(conv(_to_unit_range(x, value_range), w1))
    h = jax.nn.relu(conv(h, w2))
    return jnp.concatenate([jnp.mean(h, axis=(1, 2)), jnp.std(h, axis=(1, 2))], axis=-1)
  return Extractor("random_conv", apply, batch_size)


EXTRACTORS: dict[str, Callable[..., Extractor]] = {
    "inception": inception_extractor,
    "pixels": pixels_extractor,
    "random_conv": random_conv_extractor,
}


def get_extractor(name: str, **kwargs) -> Extractor:
  """EXTRACTORS[name](**kwargs); "inception" needs weights=<path>."""
  return lookup(EXTRACTORS, name, "feature extractor")(**kwargs)


class FeatureStats(NamedTuple):
  mu: np.ndarray         # [D] float64
  sigma: np.ndarray      # [D, D] float64, unbiased (np.cov)
  features: np.ndarray   # [min(N, max_features), D] float32: the first features seen


def _batches(images) -> Iterable:
  if hasattr(images, "shape") and getattr(images, "ndim", 0) == 4:
    return [images]   # one array: the extractor chunks it
  return images


def compute_stats(images_iter, extractor: Extractor, *,
                  max_features: int = 10_000) -> FeatureStats:
  """Streams images through `extractor`: float64 mean and covariance over all of them,
  and the first `max_features` features kept for KID and precision/recall (shuffle the
  data, or pass a random order, if the stream is sorted).

  images_iter: an iterable of [B, H, W, C] batches, or one array [N, H, W, C].
  """
  moments, kept, n_kept = None, [], 0
  for batch in _batches(images_iter):
    feats = extractor(batch)
    if moments is None:
      moments = frechet.moments_init(feats.shape[1])
    moments = frechet.moments_update(moments, feats)
    if n_kept < max_features:
      kept.append(feats[:max_features - n_kept])
      n_kept += kept[-1].shape[0]
  if moments is None:
    raise ValueError("compute_stats: no images")
  mu, sigma = frechet.moments_finalize(moments)
  return FeatureStats(mu, sigma, np.concatenate(kept))


def save_stats(path: str | os.PathLike, stats: FeatureStats) -> None:
  """Writes mu, sigma and features to an .npz (e.g. to reuse the real-data statistics)."""
  with files.atomic_write(path) as f:  # exactly `path` (np.savez(path) would add .npz)
    np.savez(f, mu=stats.mu, sigma=stats.sigma, features=stats.features)


def load_stats(path: str | os.PathLike) -> FeatureStats:
  with np.load(path, allow_pickle=False) as data:
    missing = {"mu", "sigma", "features"} - set(data.files)
    if missing:
      raise ValueError(f"{os.fspath(path)!r} is not a feature-stats file: no "
                       f"{', '.join(sorted(missing))}")
    return FeatureStats(data["mu"], data["sigma"], data["features"])
