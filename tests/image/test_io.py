"""genjax.image.io.save_image: atomic, and a failure reports the first error (issue 15.4)."""

import errno
import pathlib

import numpy as np
import pytest
from PIL import Image

from genjax.image import io


def test_failed_write_raises_the_first_error_and_leaves_nothing(tmp_path, monkeypatch):
  target = tmp_path / "a.png"
  io.save_image(target, np.zeros((4, 4, 3), np.uint8))
  before = target.read_bytes()

  def full(self, fp, *a, **k):
    fp.write(b"half")
    raise OSError(errno.ENOSPC, "No space left on device")
  monkeypatch.setattr(Image.Image, "save", full)
  real_unlink = pathlib.Path.unlink

  def stuck(self, *a, **k):  # the cleanup fails too: it must not hide the first error
    raise PermissionError(errno.EACCES, "Permission denied", str(self))
  monkeypatch.setattr(pathlib.Path, "unlink", stuck)
  with pytest.raises(OSError) as e:
    io.save_image(target, np.ones((4, 4, 3), np.uint8))
  assert e.value.errno == errno.ENOSPC
  monkeypatch.setattr(pathlib.Path, "unlink", real_unlink)
  assert target.read_bytes() == before


def test_unknown_extension_and_path_under_a_file(tmp_path):
  with pytest.raises(ValueError, match=r"unknown image format '\.xyz'"):
    io.save_image(tmp_path / "a.xyz", np.zeros((2, 2, 3), np.uint8))
  (tmp_path / "f").write_text("x")
  with pytest.raises(OSError):
    io.save_image(tmp_path / "f" / "a.png", np.zeros((2, 2, 3), np.uint8))
  assert (tmp_path / "f").read_text() == "x"
