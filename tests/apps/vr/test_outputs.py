"""Output files: names, sizes, metadata read back, and content against the projections."""

import jax
import numpy as np
import pytest
from PIL import Image

from genjax.apps.vr import outputs, xmp
from genjax.data import procedural
from genjax.image import io, projections


@pytest.fixture(scope="module")
def pano():
  return procedural.panorama(1, height=32, width=64)


def size(path):
  with Image.open(path) as im:
    return im.size


def test_write_panorama(pano, tmp_path):
  files = outputs.write_panorama(pano, tmp_path / "sub" / "beach", html=True, cube_face_size=16)
  assert files["panorama"] == tmp_path / "sub" / "beach.jpg"
  assert files["html"].name == "beach.html" and "data:image/jpeg;base64," in files[
      "html"].read_text()
  gpano = xmp.read_gpano(files["panorama"])
  assert (gpano["FullPanoWidthPixels"], gpano["CroppedAreaImageHeightPixels"]) == (64, 32)
  assert size(files["panorama"]) == (64, 32)
  faces = [files[f"cube_{name}"] for name in projections.CUBE_FACE_NAMES]
  assert [f.name for f in faces] == [f"beach_cube_{n}.jpg" for n in
                                     ("right", "left", "up", "down", "front", "back")]
  assert all(size(f) == (16, 16) for f in faces)
  front = io.load_image(files["cube_front"])
  view = np.asarray(projections.equirect_to_perspective(
      pano.astype(np.float32) / 255, yaw=0.0, pitch=0.0, roll=0.0, hfov_deg=90.0,
      out_hw=(16, 16)))
  assert np.abs(front - view).mean() < 0.03                     # JPEG error only
  with pytest.raises(xmp.PanoFormatError, match="2:1"):
    outputs.write_panorama(pano[:, :60], tmp_path / "bad")
  assert not (tmp_path / "bad.jpg").exists()


@pytest.mark.parametrize("hw, hfov", [((48, 64), 60.0), ((64, 48), 100.0), ((30, 90), 150.0)])
def test_band_holds_the_whole_photo_at_full_resolution(hw, hfov):
  full_h, (top, left, rows, cols) = outputs.band_geometry(hw, hfov)
  f = (hw[1] / 2) / np.tan(np.deg2rad(hfov) / 2)
  assert abs(2 * full_h - 2 * np.pi * f) <= 4 and full_h % 2 == 0
  assert rows % 2 == 0 and cols % 2 == 0
  assert top + rows / 2 == full_h / 2 and left + cols / 2 == full_h     # centred on the front
  _, mask = jax.jit(projections.perspective_to_equirect, static_argnames="out_height")(
      np.ones(hw + (1,), np.float32), yaw=0.0, pitch=0.0, roll=0.0, hfov_deg=hfov,
      out_height=full_h)
  mask = np.asarray(mask[..., 0]) > 0
  inside = np.zeros_like(mask)
  inside[top:top + rows, left:left + cols] = True
  assert mask.any() and not (mask & ~inside).any()           # nothing of the photo is cut
  band = mask[top:top + rows, left:left + cols]     # tight: the photo reaches every side
  assert band[:2].any() and band[-2:].any() and band[:, :2].any() and band[:, -2:].any()
  capped, (_, _, _, capped_cols) = outputs.band_geometry(hw, hfov, max_width=64)
  assert 2 * capped <= 64 and capped_cols <= 64
  with pytest.raises(ValueError, match="180"):
    outputs.band_geometry(hw, 180.0)
  with pytest.raises(ValueError, match="-5"):
    outputs.band_geometry(hw, -5.0)


def test_write_stereo(pano, tmp_path):
  left = pano[4:28, 8:40]                                       # [24, 32, 3]
  right = np.roll(left, -2, axis=1)
  holes = np.zeros((24, 32), bool)
  holes[:, -2:] = True
  files = outputs.write_stereo(left, right, tmp_path / "pair", hfov_deg=70.0, holes=holes)
  assert size(files["sbs"]) == (64, 24) and size(files["ou"]) == (32, 48)
  assert size(files["anaglyph"]) == (32, 24)
  ana = io.load_image(files["anaglyph"])
  assert np.abs(ana[..., 0] - left[..., 0] / 255).mean() < 0.05
  assert np.abs(ana[..., 1] - right[..., 1] / 255).mean() < 0.05
  np.testing.assert_array_equal(io.load_image(files["holes"])[..., 0] > 0.5, holes)

  assert files["vr"].name == "pair.vr.jpg"
  l_back, r_back, gpano = xmp.read_vr_jpeg(files["vr"])
  band, mask, geometry = outputs.perspective_to_band(left, 70.0)
  full_h, (top, left_px, rows, cols) = outputs.band_geometry((24, 32), 70.0)
  assert gpano["FullPanoHeightPixels"] == full_h == geometry["full_hw"][0]
  assert gpano["FullPanoWidthPixels"] == 2 * full_h
  assert (gpano["CroppedAreaLeftPixels"], gpano["CroppedAreaTopPixels"]) == (left_px, top)
  assert (gpano["CroppedAreaImageWidthPixels"], gpano["CroppedAreaImageHeightPixels"]) == (
      cols, rows)
  assert l_back.shape == r_back.shape == (rows, cols, 3)
  inner = mask & np.roll(mask, 1, 0) & np.roll(mask, -1, 0) & np.roll(mask, 1, 1) & np.roll(
      mask, -1, 1)
  assert np.abs(l_back / 255 - band)[inner].mean() < 0.03
  # The photo's centre pixel sits at the band's centre (the front of the sphere).
  np.testing.assert_allclose(band[rows // 2 - 1:rows // 2 + 1, cols // 2 - 1:cols // 2 + 1]
                             .mean((0, 1)), left[11:13, 15:17].mean((0, 1)) / 255, atol=0.02)
  with pytest.raises(ValueError, match="differ"):
    outputs.write_stereo(left, right[:, :30], tmp_path / "bad", hfov_deg=70.0)


def test_write_ods(pano, tmp_path):
  right = np.roll(pano, 3, axis=1)
  holes = np.zeros((2, 32, 64), bool)
  holes[1, 10, 5] = True
  files = outputs.write_ods(pano, right, tmp_path / "room", holes=holes)
  assert size(files["ods_tb"]) == (64, 64)                     # 1:1, left eye on top
  tb = io.load_image(files["ods_tb"])
  assert np.abs(tb[:32] - pano / 255).mean() < 0.03
  assert np.abs(tb[32:] - right / 255).mean() < 0.03
  l_back, r_back, gpano = xmp.read_vr_jpeg(files["ods_vr"])
  assert gpano["FullPanoWidthPixels"] == 64 and l_back.shape == r_back.shape == (32, 64, 3)
  hole_png = io.load_image(files["ods_holes"])[..., 0] > 0.5
  assert hole_png.shape == (64, 64) and hole_png.sum() == 1 and hole_png[42, 5]
  big = np.broadcast_to(np.zeros(3, np.uint8), (4100, 8200, 3))
  with pytest.raises(xmp.PanoFormatError, match="8192"):
    outputs.write_ods(big, big, tmp_path / "big")


def test_cube_strip_and_cross_hold_the_faces(tmp_path):
  big = procedural.panorama(2, height=64, width=128)
  files = outputs.write_panorama(big, tmp_path / "c", html=False, cube_face_size=32,
                                 quality=95)
  faces = np.stack([io.load_image(files[f"cube_{n}"]) for n in projections.CUBE_FACE_NAMES])
  strip, cross = io.load_image(files["cube_strip"]), io.load_image(files["cube_cross"])
  assert strip.shape == (32, 6 * 32, 3) and cross.shape == (3 * 32, 4 * 32, 3)
  for k in range(6):                       # +X -X +Y -Y +Z -Z, left to right
    assert np.abs(strip[:, 32 * k:32 * (k + 1)] - faces[k]).mean() < 0.02
  cells = {"up": (0, 1), "left": (1, 0), "front": (1, 1), "right": (1, 2), "back": (1, 3),
           "down": (2, 1)}
  for name, (r, c) in cells.items():
    cell = cross[32 * r:32 * (r + 1), 32 * c:32 * (c + 1)]
    assert np.abs(cell - faces[projections.CUBE_FACE_NAMES.index(name)]).mean() < 0.02
  assert cross[:24, :24].max() < 0.02                 # unused cells are black
  # Every edge the cross shares is one edge of the cube: the pixels on either side of it
  # are neighbours on the sphere, much closer than rows of unrelated faces.
  seams = [np.abs(cross[31, 32:64] - cross[32, 32:64]).mean(),      # up | front
           np.abs(cross[63, 32:64] - cross[64, 32:64]).mean(),      # front | down
           np.abs(cross[32:64, 31] - cross[32:64, 32]).mean(),      # left | front
           np.abs(cross[32:64, 63] - cross[32:64, 64]).mean(),      # front | right
           np.abs(cross[32:64, 95] - cross[32:64, 96]).mean()]      # right | back
  unrelated = np.abs(faces[2][-1] - faces[3][0]).mean()            # up's bottom, down's top
  assert max(seams) < 0.5 * unrelated, (seams, unrelated)
