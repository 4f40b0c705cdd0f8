"""Improved precision and recall (Kynkäänniemi et al. 2019).

The support of each feature set is estimated as the union of balls around its points,
each with the radius to the point's k-th nearest neighbour within the set (k = 3 in the
paper). Precision = the fraction of fake samples inside the real support; recall = the
fraction of real samples inside the fake support. The paper uses VGG-16 fc2 features; any
extractor's features work here.

Distances are formed block by block (`block_size` rows against the whole other set), so
memory is O(block_size * n) rather than O(n^2).
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class PrecisionRecall(NamedTuple):
  precision: float
  recall: float


def pairwise_sq_distances(a: jax.Array, b: jax.Array) -> jax.Array:
  """||a_i - b_j||^2 for a: [n, d], b: [m, d] -> [n, m] (clipped at 0 against round-off)."""
  aa = jnp.sum(a * a, axis=-1)[:, None]
  bb = jnp.sum(b * b, axis=-1)[None, :]
  ab = jnp.matmul(a, b.T, precision=jax.lax.Precision.HIGHEST)
  return jnp.maximum(aa + bb - 2.0 * ab, 0.0)


def _row_blocks(x, block_size):
  """x: [n, d] -> [num_blocks, block_size, d], zero-padded at the end."""
  n = x.shape[0]
  num_blocks = -(-n // block_size)
  x = jnp.pad(x, ((0, num_blocks * block_size - n), (0, 0)))
  return x.reshape(num_blocks, block_size, x.shape[1])


@functools.partial(jax.jit, static_argnames=("k", "block_size"))
def knn_radii(x: jax.Array, *, k: int = 3, block_size: int = 1024) -> jax.Array:
  """Squared distance from each x_i to its k-th nearest other point in x. x: [n, d] -> [n].

  The point itself is the 0-th neighbour (distance 0), as in the paper's code.
  """
  def block(rows):
    neg_d, _ = jax.lax.top_k(-pairwise_sq_distances(rows, x), k + 1)
    return -neg_d[:, k]
  return jax.lax.map(block, _row_blocks(x, block_size)).reshape(-1)[:x.shape[0]]


@functools.partial(jax.jit, static_argnames=("block_size",))
def in_support(query: jax.Array, ref: jax.Array, ref_radii: jax.Array, *,
               block_size: int = 1024) -> jax.Array:
  """Whether each query point lies in some ball (ref_j, ref_radii_j). [q, d] -> [q] bool."""
  def block(rows):
    return jnp.any(pairwise_sq_distances(rows, ref) <= ref_radii[None, :], axis=1)
  return jax.lax.map(block, _row_blocks(query, block_size)).reshape(-1)[:query.shape[0]]


def precision_recall(real_feats, fake_feats, *, k: int = 3,
                     block_size: int = 1024) -> PrecisionRecall:
  """Improved precision and recall of fake_feats [m, d] against real_feats [n, d] (arrays,
  or FeatureStats: their kept .features)."""
  real = jnp.asarray(getattr(real_feats, "features", real_feats), jnp.float32)
  fake = jnp.asarray(getattr(fake_feats, "features", fake_feats), jnp.float32)
  if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
    raise ValueError(f"precision_recall: features must be [n, d] and [m, d], got {real.shape} "
                     f"and {fake.shape}")
  if min(real.shape[0], fake.shape[0]) <= k:
    raise ValueError(f"precision_recall: need more than k={k} features per set, got "
                     f"{real.shape[0]} and {fake.shape[0]}")
  real_r = knn_radii(real, k=k, block_size=block_size)
  fake_r = knn_radii(fake, k=k, block_size=block_size)
  precision = np.mean(np.asarray(in_support(fake, real, real_r, block_size=block_size)))
  recall = np.mean(np.asarray(in_support(real, fake, fake_r, block_size=block_size)))
  return PrecisionRecall(float(precision), float(recall))
