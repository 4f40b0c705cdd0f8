"""A depth map of another shape than its photo is resized, with a warning naming both sizes when
that stretches it (another aspect ratio) or blows it up (more than 4x)."""

import logging
import pathlib

import numpy as np
import pytest

from genjax.apps.vr import run


@pytest.mark.parametrize("depth_hw, warned", [
    ((10, 10), True),      # the case: stretched 1 -> 4/3 and upsampled 25.6x
    ((192, 200), True),    # stretched only
    ((24, 32), True),      # same aspect ratio, upsampled 8x
    ((96, 128), False),    # same aspect ratio, 2x: an ordinary depth estimator's output
    ((192, 256), False),
])
def test_stretched_depth_map_is_warned_about(tmp_path, caplog, depth_hw, warned):
  photo = np.zeros((192, 256, 3), np.uint8)
  depth_file = tmp_path / "room.npy"
  np.save(depth_file, np.full(depth_hw, 2.0, np.float32))
  with caplog.at_level(logging.WARNING, logger="genjax.vr"):
    d = run.depth_for(pathlib.Path("room.jpg"), photo, depth_file)
  assert d.shape == (192, 256)
  np.testing.assert_allclose(d, 2.0, rtol=1e-6)
  messages = [r.getMessage() for r in caplog.records if r.name == "genjax.vr"]
  if warned:
    assert len(messages) == 1
    assert f"{depth_hw[0]}x{depth_hw[1]} depth map" in messages[0]
    assert "192x256 photo room.jpg" in messages[0] and str(depth_file) in messages[0]
  else:
    assert messages == []


def test_estimated_depth_is_the_photo_size_without_a_warning(caplog):
  """--depth auto (the CLI's default): the shipped estimator's depth, no stretch warning
  (this path once raised UnboundLocalError naming the unset depth file)."""
  photo = (np.random.default_rng(0).uniform(size=(48, 72, 3)) * 255).astype(np.uint8)
  with caplog.at_level(logging.WARNING, logger="genjax.vr"):
    d = run.depth_for(pathlib.Path("room.jpg"), photo, "auto")
  assert d.shape == (48, 72) and np.all(np.isfinite(d)) and np.all(d > 0)
  assert [r for r in caplog.records if r.name == "genjax.vr"] == []
