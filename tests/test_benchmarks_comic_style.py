"""The content metric of `python -m benchmarks comic_style`: edge F1 against the photo."""

import numpy as np

from benchmarks import comic_style


def _step(col: int, size=(32, 40)) -> np.ndarray:
  img = np.zeros(size + (3,), np.float32)
  img[:, col:] = 1.0
  return img[None]


def test_edge_f1_closed_cases():
  photo = _step(20)
  assert comic_style.edge_f1(photo, photo) == 1.0
  assert comic_style.edge_f1(_step(24), photo) == 1.0    # one 4x4 block away: matched
  assert comic_style.edge_f1(_step(32), photo) == 0.0    # three blocks away: not matched
  assert comic_style.edge_f1(np.full_like(photo, 0.5), photo) == 0.0   # no edges at all
  # A 2-px checkerboard (a screentone) averages to flat grey over 4x4 blocks: no edges.
  y, x = np.mgrid[:32, :40]
  tone = np.repeat((((y // 2) + (x // 2)) % 2).astype(np.float32)[None, ..., None], 3, -1)
  assert not comic_style.edge_map(tone).any()
  # Half the photo's edge found, nothing spurious: precision 1, recall 1/2, F1 2/3.
  two = np.zeros((1, 32, 40, 3), np.float32)
  two[:, :, 12:] = 1.0
  two[:, :, 28:] = 0.0
  one = two.copy()
  one[:, :, 28:] = 1.0
  np.testing.assert_allclose(comic_style.edge_f1(one, two), 2 / 3, rtol=1e-12)
