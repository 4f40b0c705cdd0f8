"""genjax/metrics/depth.py against hand-computed values."""

import numpy as np
import pytest

from genjax.metrics.depth import depth_metrics


def test_depth_metrics_closed_form():
  true = np.array([[1.0, 2.0], [4.0, 8.0]])
  pred = np.array([[1.1, 2.0], [6.0, 8.0]])          # errors 10 %, 0, 50 %, 0
  m = depth_metrics(pred, true)
  assert m["abs_rel"] == pytest.approx((0.1 + 0.5) / 4)
  assert m["delta1"] == pytest.approx(3 / 4)         # 6 / 4 = 1.5 >= 1.25
  assert depth_metrics(true, true) == {"abs_rel": 0.0, "delta1": 1.0}
  # Median alignment undoes a global scale; invalid truth (0, inf) is ignored.
  assert depth_metrics(3 * true, true, align_median=True)["abs_rel"] == pytest.approx(0.0)
  t2 = np.array([[1.0, 0.0], [np.inf, 2.0]])
  assert depth_metrics(np.array([[2.0, 5.0], [5.0, 2.0]]), t2)["abs_rel"] == pytest.approx(0.5)
  with pytest.raises(ValueError, match="differ"):
    depth_metrics(true[:1], true)
