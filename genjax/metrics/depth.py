"""Monocular depth accuracy: AbsRel and the delta < 1.25 ratio (Eigen et al., NIPS 2014).

  abs_rel = mean |z_hat - z| / z,     delta1 = fraction of pixels with max(z_hat / z, z / z_hat) < 1.25

over the pixels with a valid ground truth (z > 0, finite), as the depth literature reports
them (NYUv2, KITTI). Metric depth: no scale alignment unless `align_median` (each image's
prediction scaled so its median matches the truth's, the usual protocol for relative
estimators).
"""

import numpy as np


def depth_metrics(pred, true, *, align_median: bool = False) -> dict[str, float]:
  """pred, true: [..., H, W] metres (any leading batch shape). -> {"abs_rel", "delta1"}."""
  pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
  if pred.shape != true.shape:
    raise ValueError(f"depth_metrics: prediction {pred.shape} and truth {true.shape} differ")
  if align_median:
    axes = (-2, -1)
    pred = pred * (np.median(true, axis=axes, keepdims=True)
                   / np.median(pred, axis=axes, keepdims=True))
  valid = np.isfinite(true) & (true > 0)
  p = np.maximum(pred[valid], 1e-6)
  t = true[valid]
  ratio = np.maximum(p / t, t / p)
  return {"abs_rel": float(np.mean(np.abs(p - t) / t)), "delta1": float(np.mean(ratio < 1.25))}
