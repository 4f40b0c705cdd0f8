"""Fréchet distance between Gaussians (FID, Heusel et al. 2017) and streaming feature moments.

Everything here is float64 NumPy: FID is a difference of large traces (for Inception
features tr S ~ 100 while FID can be ~1), so float32 cancellation would show in the result.
"""

from typing import NamedTuple

import numpy as np


class Moments(NamedTuple):
  """Running count, mean and centered scatter sum_i (x_i - mean)(x_i - mean)^T, float64."""
  count: int
  mean: np.ndarray      # [D]
  scatter: np.ndarray   # [D, D]


def moments_init(dim: int) -> Moments:
  return Moments(0, np.zeros(dim, np.float64), np.zeros((dim, dim), np.float64))


def moments_update(m: Moments, x) -> Moments:
  """Adds a batch x: [N, D] (Chan et al. 1979 pairwise update).

  The batch is centered on its own mean before its scatter is formed, so a large common
  offset in the features (Inception features are non-negative, mean ~0.4) does not cancel
  catastrophically as it would in sum(x x^T) - n mean mean^T.
  """
  x = np.asarray(x, np.float64)
  if x.ndim != 2 or x.shape[1] != m.mean.shape[0]:
    raise ValueError(f"features must be [N, {m.mean.shape[0]}], got shape {x.shape}")
  n_b = x.shape[0]
  if n_b == 0:
    return m
  mean_b = x.mean(axis=0)
  xc = x - mean_b[None, :]
  scatter_b = xc.T @ xc
  n = m.count + n_b
  delta = mean_b - m.mean
  mean = m.mean + delta * (n_b / n)
  scatter = m.scatter + scatter_b + np.outer(delta, delta) * (m.count * n_b / n)
  return Moments(n, mean, scatter)


def moments_finalize(m: Moments) -> tuple[np.ndarray, np.ndarray]:
  """(mean [D], unbiased covariance [D, D]) as np.mean / np.cov(rowvar=False) would give."""
  if m.count < 2:
    raise ValueError(f"need at least 2 feature vectors for a covariance, got {m.count}")
  return m.mean.copy(), m.scatter / (m.count - 1)


def _clip_roundoff(w: np.ndarray) -> np.ndarray:
  """Eigenvalues of a PSD matrix with those below d * eps * max (round-off of exact zeros,
  e.g. of a covariance from fewer samples than dimensions) set to 0. A square root would
  turn a round-off of 1e-16 into 1e-8 per dimension, 1e-6 over 2048 of them; the cut keeps
  FD(S, S) at ~1e-13 and FD symmetric to ~1e-14 for rank-deficient S."""
  cut = w.shape[0] * np.finfo(np.float64).eps * max(float(w.max()), 0.0)
  return np.where(w > cut, w, 0.0)


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
  """Symmetric square root of a symmetric PSD matrix."""
  w, v = np.linalg.eigh(s)
  return (v * np.sqrt(_clip_roundoff(w))[None, :]) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
  """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^{1/2}): the squared 2-Wasserstein distance
  between N(mu1, S1) and N(mu2, S2). mu: [D], sigma: [D, D] symmetric PSD.

  tr (S1 S2)^{1/2} is computed as sum_i sqrt(lambda_i(M)) with M = S1^{1/2} S2 S1^{1/2}.
  Why: S1 S2 = A B with A = S1^{1/2}, B = S1^{1/2} S2, and B A = M, so S1 S2 and M share
  their eigenvalues; M is symmetric PSD, so they are real and >= 0, and both steps are
  symmetric eigenproblems, whose eigenvalues move by at most the size of the round-off
  (Weyl). The usual scipy.linalg.sqrtm(S1 @ S2) works on a non-symmetric product: with
  rank-deficient covariances (fewer samples than dimensions) it returns complex parts and
  NaNs that implementations paper over with an eps * I offset. No scipy needed either.
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
  d = mu1.shape[0]
  for name, a, shape in (("mu1", mu1, (d,)), ("mu2", mu2, (d,)),
                         ("sigma1", s1, (d, d)), ("sigma2", s2, (d, d))):
    if a.shape != shape:
      raise ValueError(f"frechet_distance: {name} has shape {a.shape}, expected {shape}")
  # Symmetrize: accumulated covariances are symmetric only up to round-off.
  s1, s2 = 0.5 * (s1 + s1.T), 0.5 * (s2 + s2.T)
  r1 = _psd_sqrt(s1)
  m = r1 @ s2 @ r1
  tr_sqrt = np.sum(np.sqrt(_clip_roundoff(np.linalg.eigvalsh(0.5 * (m + m.T)))))
  diff = mu1 - mu2
  return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt)
