"""Photo sphere and VR photo JPEGs: segment layout, XMP values read back with an XML parser."""

import hashlib
import io
import math
import struct

import numpy as np
import pytest
from PIL import Image

from genjax.apps.vr import xmp
from genjax.data import procedural


@pytest.fixture(scope="module")
def pano():
  return procedural.panorama(3, height=64, width=128)


def decode(data: bytes) -> np.ndarray:
  with Image.open(io.BytesIO(data)) as im:
    return np.asarray(im.convert("RGB"))


def app1_payloads(data: bytes, header: bytes) -> list[bytes]:
  return [p for m, _, p in xmp.jpeg_segments(data) if m == 0xE1 and p.startswith(header)]


def test_full_pano_metadata_and_layout(pano, tmp_path):
  path = xmp.write_pano_jpeg(pano, tmp_path / "sphere.jpg", heading_deg=-10.0)
  assert xmp.read_gpano(path) == {
      "UsePanoramaViewer": True, "ProjectionType": "equirectangular",
      "FullPanoWidthPixels": 128, "FullPanoHeightPixels": 64,
      "CroppedAreaImageWidthPixels": 128, "CroppedAreaImageHeightPixels": 64,
      "CroppedAreaLeftPixels": 0, "CroppedAreaTopPixels": 0,
      "PoseHeadingDegrees": 350.0,
  }
  data = path.read_bytes()
  segments = xmp.jpeg_segments(data)
  # SOI, JFIF APP0 (at byte 2), then our APP1 right behind it.
  assert segments[0][0] == 0xE0 and segments[0][1] == 2 and segments[0][2].startswith(b"JFIF\0")
  marker, offset, payload = segments[1]
  assert marker == 0xE1 and offset == 2 + 4 + len(segments[0][2])
  assert payload.startswith(xmp.XMP_HEADER)
  assert struct.unpack(">H", data[offset + 2:offset + 4])[0] == len(payload) + 2
  packet = payload[len(xmp.XMP_HEADER):]
  assert packet.startswith(b"<?xpacket begin=") and len(packet) <= xmp.MAX_XMP_PACKET
  assert len(app1_payloads(data, xmp.XMP_HEADER)) == 1
  with Image.open(path) as im:  # an independent JPEG reader finds the image and the packet
    assert im.format == "JPEG" and im.size == (128, 64)
    assert im.info["xmp"] == packet
  # Metadata does not touch the pixels.
  np.testing.assert_array_equal(decode(data), decode(xmp.encode_jpeg(pano)))
  assert np.abs(decode(data).astype(int) - pano).mean() < 3


def test_segment_goes_right_after_soi_without_jfif(pano):
  plain = xmp.encode_jpeg(pano)
  app0 = xmp.jpeg_segments(plain)[0]
  no_jfif = plain[:2] + plain[2 + 4 + len(app0[2]):]
  out = xmp.insert_segments(no_jfif, [xmp._main_xmp_segment({"GPano:ProjectionType": "x"})])
  first = xmp.jpeg_segments(out)[0]
  assert first[0] == 0xE1 and first[1] == 2
  np.testing.assert_array_equal(decode(out), decode(plain))


@pytest.mark.parametrize("shape, kwargs, message", [
    ((64, 100), {}, "2:1"),
    ((66, 128), {}, "2:1"),
    ((63, 126), {}, "even"),
    ((32, 127), {"full_hw": (64, 128)}, "even"),
    ((4200, 8400), {}, "8192"),
    ((40, 128), {"full_hw": (64, 128), "crop_top": 30}, "does not fit"),
    ((40, 100), {"full_hw": (64, 128), "crop_left": 30}, "does not fit"),
    ((40, 128), {"crop_top": 2}, "full_hw"),
    ((32, 64), {"full_hw": (32, 96)}, "2:1"),
])
def test_viewer_rules(tmp_path, shape, kwargs, message):
  img = np.broadcast_to(np.zeros(3, np.uint8), shape + (3,))  # no memory for the large one
  with pytest.raises(xmp.PanoFormatError, match=message):
    xmp.write_pano_jpeg(img, tmp_path / "bad.jpg", **kwargs)
  assert not list(tmp_path.iterdir())


def test_allow_large_lifts_the_width_limit():
  g = xmp.PanoGeometry.for_image(4200, 8400, allow_large=True)
  assert (g.full_width, g.crop_width) == (8400, 8400)


def test_partial_pano_cropped_area(pano, tmp_path):
  band = pano[10:50, 16:112]                                   # 40 x 96
  path = xmp.write_pano_jpeg(band, tmp_path / "band.jpg", full_hw=(64, 128), crop_left=16,
                             crop_top=10)
  g = xmp.read_gpano(path)
  assert (g["FullPanoWidthPixels"], g["FullPanoHeightPixels"]) == (128, 64)
  assert (g["CroppedAreaImageWidthPixels"], g["CroppedAreaImageHeightPixels"]) == (96, 40)
  assert (g["CroppedAreaLeftPixels"], g["CroppedAreaTopPixels"]) == (16, 10)
  with Image.open(path) as im:
    assert im.size == (96, 40)
  centred = xmp.read_gpano(xmp.write_pano_jpeg(pano[12:52], tmp_path / "c.jpg",
                                               full_hw=(64, 128)))
  assert centred["CroppedAreaTopPixels"] == 12 and "PoseHeadingDegrees" not in centred


def test_packet_limit_is_enforced():
  with pytest.raises(xmp.PanoFormatError, match="65502"):
    xmp._main_xmp_segment({"GImage:Data": "A" * 70000})


def test_vr_photo_round_trip_inline(pano, tmp_path):
  right = np.roll(pano, 5, axis=1)
  path = xmp.write_vr_jpeg(pano, right, tmp_path / "small.vr.jpg", heading_deg=90.0)
  data = path.read_bytes()
  assert not app1_payloads(data, xmp.EXTENSION_HEADER)
  props = xmp.read_xmp(path)
  assert props["GImage:Mime"] == "image/jpeg" and "xmpNote:HasExtendedXMP" not in props
  left_back, right_back, gpano = xmp.read_vr_jpeg(path)
  np.testing.assert_array_equal(left_back, decode(xmp.encode_jpeg(pano)))
  np.testing.assert_array_equal(right_back, decode(xmp.encode_jpeg(right)))
  assert gpano["PoseHeadingDegrees"] == 90.0 and gpano["FullPanoWidthPixels"] == 128


def test_vr_photo_round_trip_extended(tmp_path):
  """A right eye too large for the main packet goes to extended XMP (XMP spec part 3)."""
  rng = np.random.default_rng(0)
  left = rng.integers(0, 256, (256, 512, 3), dtype=np.uint8)
  right = rng.integers(0, 256, (256, 512, 3), dtype=np.uint8)
  path = xmp.write_vr_jpeg(left, right, tmp_path / "big.vr.jpg", quality=95)
  data = path.read_bytes()
  main = app1_payloads(data, xmp.XMP_HEADER)
  assert len(main) == 1 and len(main[0]) - len(xmp.XMP_HEADER) <= xmp.MAX_XMP_PACKET
  props = xmp.parse_xmp(main[0][len(xmp.XMP_HEADER):])
  assert "GImage:Data" not in props and props["GImage:Mime"] == "image/jpeg"
  guid = props["xmpNote:HasExtendedXMP"]
  chunks = app1_payloads(data, xmp.EXTENSION_HEADER)
  n = len(xmp.EXTENSION_HEADER)
  lengths = {struct.unpack(">I", c[n + 32:n + 36])[0] for c in chunks}
  assert len(lengths) == 1
  (full_length,) = lengths
  assert len(chunks) == math.ceil(full_length / xmp.EXTENSION_CHUNK) >= 2
  assert {c[n:n + 32].decode() for c in chunks} == {guid}
  document = b"".join(c[n + 40:] for c in sorted(
      chunks, key=lambda c: struct.unpack(">I", c[n + 36:n + 40])[0]))
  assert len(document) == full_length and hashlib.md5(document).hexdigest().upper() == guid
  assert all(len(c) + 2 <= 0xFFFF for c in chunks)
  # The chunks follow the main packet, before the image data.
  markers = [m for m, _, _ in xmp.jpeg_segments(data)]
  assert markers[:2 + len(chunks)] == [0xE0] + [0xE1] * (1 + len(chunks))

  left_back, right_back, _ = xmp.read_vr_jpeg(path)
  np.testing.assert_array_equal(left_back, decode(xmp.encode_jpeg(left, quality=95)))
  np.testing.assert_array_equal(right_back, decode(xmp.encode_jpeg(right, quality=95)))

  # A damaged chunk is detected by the MD5 check.
  last = data.rindex(xmp.EXTENSION_HEADER)
  corrupt = bytearray(data)
  corrupt[last + 200] ^= 0x01
  (tmp_path / "corrupt.jpg").write_bytes(bytes(corrupt))
  with pytest.raises(xmp.PanoFormatError, match="corrupt"):
    xmp.read_vr_jpeg(tmp_path / "corrupt.jpg")
  with pytest.raises(xmp.PanoFormatError, match="65502"):
    xmp.write_vr_jpeg(left, right, tmp_path / "inline.jpg", quality=95, extended=False)


def test_forced_extended_for_a_small_right_eye(pano, tmp_path):
  path = xmp.write_vr_jpeg(pano, pano[:, ::-1], tmp_path / "forced.vr.jpg", extended=True)
  assert len(app1_payloads(path.read_bytes(), xmp.EXTENSION_HEADER)) == 1
  _, right_back, _ = xmp.read_vr_jpeg(path)
  np.testing.assert_array_equal(right_back, decode(xmp.encode_jpeg(pano[:, ::-1])))


def test_plain_pano_is_not_a_vr_photo(pano, tmp_path):
  path = xmp.write_pano_jpeg(pano, tmp_path / "p.jpg")
  with pytest.raises(xmp.PanoFormatError, match="not a VR photo"):
    xmp.read_vr_jpeg(path)
  (tmp_path / "plain.jpg").write_bytes(xmp.encode_jpeg(pano))
  with pytest.raises(xmp.PanoFormatError, match="no XMP"):
    xmp.read_gpano(tmp_path / "plain.jpg")
