"""`genjax vr --cube --ods`: every file written, parsed back (sizes, GPano / VR-photo XMP)."""

import numpy as np
import pytest
from PIL import Image

from genjax import cli
from genjax.apps.vr import ods, run, xmp
from genjax.image import io


def _size(path):
  with Image.open(path) as im:
    return im.size


@pytest.mark.slow
def test_vr_cube_and_ods_files(tmp_path, pano_run):
  photo = io.save_image(tmp_path / "beach.png", run.demo_photo(hw=(48, 64)))
  out = tmp_path / "out"
  rc = cli.main(["vr", str(photo), "-o", str(out), "--workdir", str(pano_run), "--fov", "60",
                 "--height", "32", "--steps", "4", "--cube", "--ods"])
  assert rc == 0
  gpano = xmp.read_gpano(out / "beach.jpg")
  assert (gpano["FullPanoWidthPixels"], gpano["FullPanoHeightPixels"]) == (64, 32)
  for face in ("right", "left", "up", "down", "front", "back"):
    assert _size(out / f"beach_cube_{face}.jpg") == (16, 16)
  assert _size(out / "beach_cube_strip.jpg") == (6 * 16, 16)
  assert _size(out / "beach_cube_cross.jpg") == (4 * 16, 3 * 16)
  assert _size(out / "beach_ods_tb.jpg") == (64, 64)           # top-bottom, 1:1
  left, right, gp = xmp.read_vr_jpeg(out / "beach_ods.vr.jpg")
  assert left.shape == right.shape == (32, 64, 3)
  assert gp["ProjectionType"] == "equirectangular" and gp["FullPanoWidthPixels"] == 64
  assert gp["CroppedAreaImageHeightPixels"] == 32
  # The eyes differ (parallax below the horizon), the sky at infinity does not.
  diff = np.abs(left.astype(float) - right.astype(float)).mean(-1)
  assert diff[20:28].mean() > diff[4:12].mean() + 1.0


def test_cube_and_ods_need_a_panorama(tmp_path):
  with pytest.raises(ValueError, match="made from the panorama"):
    run.vr_files(tmp_path / "x.png", tmp_path / "o", mode="stereo", depth="d.npy", cube=True)


def test_ground_plane_distance():
  d = np.asarray(ods.ground_plane_distance(8, eye_height=1.5))
  assert d.shape == (8, 16) and np.all(np.isinf(d[:4]))
  lat = np.pi / 2 - (np.arange(4, 8) + 0.5) * np.pi / 8
  np.testing.assert_allclose(d[4:, 3], 1.5 / np.sin(-lat), rtol=1e-5)
