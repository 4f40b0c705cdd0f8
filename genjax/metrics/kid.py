"""Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs").

KID is the squared MMD between feature sets under the cubic polynomial kernel
k(x, y) = (x.y / d + 1)^3, estimated without bias and averaged over random subsets
(the standard protocol: 100 subsets of 1000 features, or of min(n_real, n_fake) when
fewer). Unlike FID its estimator is unbiased, so two samples of one distribution give
0 in expectation (single subsets may be negative).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np


def polynomial_kernel(x: jax.Array, y: jax.Array) -> jax.Array:
  """(x y^T / d + 1)^3. x: [n, d], y: [m, d] -> [n, m]."""
  d = x.shape[-1]
  return (jnp.matmul(x, y.T, precision=jax.lax.Precision.HIGHEST) / d + 1.0) ** 3


def mmd2_unbiased(x: jax.Array, y: jax.Array) -> jax.Array:
  """Unbiased MMD^2 estimate (Gretton et al. 2012, eq. 3) under polynomial_kernel.

  x: [m, d], y: [n, d] -> scalar. The within-set means leave out the diagonal k(x_i, x_i).
  """
  m, n = x.shape[0], y.shape[0]
  kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
  sum_xx = (jnp.sum(kxx) - jnp.trace(kxx)) / (m * (m - 1))
  sum_yy = (jnp.sum(kyy) - jnp.trace(kyy)) / (n * (n - 1))
  return sum_xx + sum_yy - 2.0 * jnp.mean(kxy)


@functools.partial(jax.jit, static_argnames=("num_subsets", "subset_size"))
def _subset_mmds(real, fake, key, *, num_subsets, subset_size):
  def one(k):
    kr, kf = jax.random.split(k)
    ir = jax.random.choice(kr, real.shape[0], (subset_size,), replace=False)
    jf = jax.random.choice(kf, fake.shape[0], (subset_size,), replace=False)
    return mmd2_unbiased(real[ir], fake[jf])
  # lax.map, not vmap: one subset's three [s, s] kernel matrices in memory at a time.
  return jax.lax.map(one, jax.random.split(key, num_subsets))


def kid(real_feats, fake_feats, key: jax.Array | None = None, *, num_subsets: int = 100,
        subset_size: int = 1000) -> tuple[float, float]:
  """(mean, std) of the unbiased MMD^2 over `num_subsets` random subsets.

  real_feats: [n, d], fake_feats: [m, d] features (e.g. Inception pool3), or FeatureStats
  (their kept .features). Each subset draws
  min(subset_size, n, m) features from each set without replacement; `key` (default
  jax.random.key(0), so repeated calls agree) picks them. std is over subsets (np.std,
  as torch-fidelity reports it), not the standard error of the mean.
  """
  real = jnp.asarray(getattr(real_feats, "features", real_feats), jnp.float32)
  fake = jnp.asarray(getattr(fake_feats, "features", fake_feats), jnp.float32)
  if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
    raise ValueError(f"kid: features must be [n, d] and [m, d], got {real.shape} and {fake.shape}")
  size = min(subset_size, real.shape[0], fake.shape[0])
  if size < 2:
    raise ValueError(f"kid: need at least 2 features per set, got {real.shape[0]} and "
                     f"{fake.shape[0]}")
  key = jax.random.key(0) if key is None else key
  mmds = np.asarray(_subset_mmds(real, fake, key, num_subsets=num_subsets, subset_size=size),
                    np.float64)
  return float(mmds.mean()), float(mmds.std())
