"""Sample-quality metrics: FID, KID, precision/recall, multi-scale SWD, PSNR/SSIM, seams.

    from genjax import metrics
    ext = metrics.get_extractor("inception", weights="inception_fid.npz")
    real = metrics.compute_stats(real_batches, ext)      # FeatureStats(mu, sigma, features)
    fake = metrics.compute_stats(fake_batches, ext)
    metrics.fid(real, fake)                              # float
    metrics.kid(real.features, fake.features)            # (mean, std)
    metrics.precision_recall(real.features, fake.features)
    metrics.swd(real_images, fake_images, key)           # SWDResult, x 1e3
    metrics.psnr(x, y, data_range=2.0); metrics.ssim(x, y, data_range=2.0)   # [B]
    metrics.seam_scores(panoramas)                       # SeamScores, 1.0 = no seam

The package attributes fid, kid, swd, precision_recall are the functions; their modules
(genjax.metrics.kid, ...) are reached with `from genjax.metrics.kid import ...`.
Nothing downloads weights: the Inception file is made once with
`python -m genjax.metrics.convert_inception` (see inception.py for its format).
"""

from typing import Callable


from genjax.metrics.features import (EXTRACTORS, Extractor, FeatureStats, compute_stats,
                                     get_extractor, load_stats, save_stats)
from genjax.metrics.frechet import frechet_distance
from genjax.metrics.inception import InceptionV3, InceptionWeightsError, inception_from_npz
from genjax.metrics.kid import kid
from genjax.naming import UnknownNameError, lookup
from genjax.metrics.paired import psnr, ssim
from genjax.metrics.precision_recall import PrecisionRecall, precision_recall
from genjax.metrics.seam import SeamScores, seam_scores
from genjax.metrics.swd import SWDConfig, SWDResult, swd


def fid(real_stats, fake_stats) -> float:
  """Fréchet distance between two (mu, sigma, ...) statistics, e.g. FeatureStats."""
  return frechet_distance(real_stats[0], real_stats[1], fake_stats[0], fake_stats[1])


# Name -> function, for the CLI. The signatures differ by family: distribution metrics
# take (real, fake) statistics/features/images, paired ones (x, y, data_range=), seam
# metrics one image batch.
METRICS: dict[str, Callable] = {
    "fid": fid,
    "kid": kid,
    "precision_recall": precision_recall,
    "swd": swd,
    "psnr": psnr,
    "ssim": ssim,
    "seam": seam_scores,
}


def get_metric(name: str) -> Callable:
  """METRICS[name], or UnknownNameError listing the valid names."""
  return lookup(METRICS, name, "metric")


__all__ = [
    "EXTRACTORS", "Extractor", "FeatureStats", "InceptionV3", "InceptionWeightsError",
    "METRICS", "PrecisionRecall", "SWDConfig", "SWDResult", "SeamScores", "UnknownNameError",
    "compute_stats", "fid", "frechet_distance", "get_extractor", "get_metric",
    "inception_from_npz", "kid", "load_stats", "precision_recall", "psnr", "save_stats",
    "seam_scores", "ssim", "swd",
]
