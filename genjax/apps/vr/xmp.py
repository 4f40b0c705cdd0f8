"""Panorama JPEGs that 360 viewers recognize (GPano XMP), and VR photos (Cardboard Camera format).

A photo sphere is an ordinary JPEG whose XMP packet, in the GPano namespace
(developers.google.com/streetview/spherical-metadata), says "equirectangular" and where
the image sits in the full 360 x 180 panorama. A VR photo
(developers.google.com/vr/reference/cardboard-camera-vr-photo-format) is a photo sphere of
the left eye that carries the right eye as a base64 JPEG in GImage:Data.

Storage follows the Adobe XMP Specification Part 3, section 1.1.3 (JPEG):
- the XMP packet goes in an APP1 segment whose payload starts with
  "http://ns.adobe.com/xap/1.0/\\0"; the packet may not exceed 65502 bytes;
- what does not fit goes in "extended XMP": a second XMP document (no packet wrapper) split
  over APP1 segments "http://ns.adobe.com/xmp/extension/\\0" + 32-byte GUID + 4-byte full
  length + 4-byte offset + bytes, where GUID is the upper-case hex MD5 of the whole extended
  document, which the main packet names in xmpNote:HasExtendedXMP.

We write the segments ourselves rather than through Pillow's `xmp=` save option (present in
Pillow 13): Pillow writes only one XMP segment, so extended XMP would still need this code,
and here the position (right after SOI and JFIF APP0, where readers look first) is ours.
Pillow encodes and decodes the pixels. Files are written atomically (temporary + os.replace).
"""

import base64
import dataclasses
import hashlib
import io
import pathlib
import struct
import xml.etree.ElementTree as ET
from xml.sax.saxutils import quoteattr

import numpy as np
from PIL import Image

from genjax import files

XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
EXTENSION_HEADER = b"http://ns.adobe.com/xmp/extension/\x00"
MAX_XMP_PACKET = 65502          # XMP spec part 3: the largest main packet in one APP1 segment
EXTENSION_CHUNK = 65400         # bytes of extended XMP per segment (at most 65458 fit)
MAX_VIEWER_WIDTH = 8192         # widest panorama that common viewers (and GPUs) accept

NAMESPACES = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "GPano": "http://ns.google.com/photos/1.0/panorama/",
    "GImage": "http://ns.google.com/photos/1.0/image/",
    "xmpNote": "http://ns.adobe.com/xmp/note/",
}
_PREFIXES = {uri: prefix for prefix, uri in NAMESPACES.items()}

# GPano property types (everything else reads back as a string).
_GPANO_TYPES = {
    "UsePanoramaViewer": lambda s: s.strip().lower() == "true",
    "FullPanoWidthPixels": int, "FullPanoHeightPixels": int,
    "CroppedAreaImageWidthPixels": int, "CroppedAreaImageHeightPixels": int,
    "CroppedAreaLeftPixels": int, "CroppedAreaTopPixels": int,
    "PoseHeadingDegrees": float, "PosePitchDegrees": float, "PoseRollDegrees": float,
    "InitialViewHeadingDegrees": float, "InitialViewPitchDegrees": float,
}


class PanoFormatError(ValueError):
  """A panorama that viewers would reject, or a file without the expected metadata."""


@dataclasses.dataclass(frozen=True)
class PanoGeometry:
  """Where the stored image sits in the full equirectangular panorama (pixels)."""
  full_width: int
  full_height: int
  crop_left: int
  crop_top: int
  crop_width: int
  crop_height: int

  @classmethod
  def for_image(cls, height: int, width: int, *, full_hw=None, crop_left: int = 0,
                crop_top: int | None = None, allow_large: bool = False) -> "PanoGeometry":
    """Checks the viewer rules: full panorama exactly 2:1 with even sides, no wider than
    8192 pixels unless allow_large, and the stored band inside it. Without full_hw the
    image is the full panorama; crop_top defaults to a band centred on the horizon."""
    full_h, full_w = (height, width) if full_hw is None else (int(n) for n in full_hw)
    if full_hw is None and (crop_left or crop_top):
      raise PanoFormatError("crop_left/crop_top need full_hw (the full panorama's size)")
    if full_w != 2 * full_h:
      raise PanoFormatError(f"a full equirectangular panorama is 2:1, got {full_h}x{full_w} "
                            "(HxW)" + ("" if full_hw else "; pass full_hw for a partial one"))
    if height % 2 or width % 2 or full_h % 2:
      raise PanoFormatError(f"panorama sides must be even, got image {height}x{width}, "
                            f"full {full_h}x{full_w} (HxW)")
    if full_w > MAX_VIEWER_WIDTH and not allow_large:
      raise PanoFormatError(f"panorama width {full_w} > {MAX_VIEWER_WIDTH}, which many viewers "
                            "cannot show; resize it or pass allow_large=True")
    top = (full_h - height) // 2 if crop_top is None else int(crop_top)
    if not (0 <= crop_left and crop_left + width <= full_w and 0 <= top
            and top + height <= full_h):
      raise PanoFormatError(f"image {height}x{width} at (top {top}, left {crop_left}) does not "
                            f"fit in the full panorama {full_h}x{full_w}")
    return cls(full_w, full_h, int(crop_left), top, width, height)

  def gpano(self, heading_deg: float | None = None) -> dict[str, str]:
    props = {
        "GPano:UsePanoramaViewer": "True",
        "GPano:ProjectionType": "equirectangular",
        "GPano:FullPanoWidthPixels": str(self.full_width),
        "GPano:FullPanoHeightPixels": str(self.full_height),
        "GPano:CroppedAreaImageWidthPixels": str(self.crop_width),
        "GPano:CroppedAreaImageHeightPixels": str(self.crop_height),
        "GPano:CroppedAreaLeftPixels": str(self.crop_left),
        "GPano:CroppedAreaTopPixels": str(self.crop_top),
    }
    if heading_deg is not None:  # GPano wants [0, 360).
      props["GPano:PoseHeadingDegrees"] = f"{float(heading_deg) % 360.0:.6g}"
    return props


# ---------------------------------------------------------------------------------------------
# XMP serialization and parsing.

def xmp_document(props: dict[str, str]) -> str:
  """One rdf:Description with the properties ("prefix:Name" -> value) as attributes."""
  prefixes = sorted({k.split(":")[0] for k in props})
  xmlns = "".join(f"\n    xmlns:{p}={quoteattr(NAMESPACES[p])}" for p in prefixes)
  attrs = "".join(f"\n    {k}={quoteattr(v)}" for k, v in props.items())
  return (f'<x:xmpmeta xmlns:x="{NAMESPACES["x"]}">\n'
          f' <rdf:RDF xmlns:rdf="{NAMESPACES["rdf"]}">\n'
          f'  <rdf:Description rdf:about=""{xmlns}{attrs}/>\n'
          f' </rdf:RDF>\n</x:xmpmeta>')


def xmp_packet(props: dict[str, str]) -> bytes:
  """The main XMP packet (with the xpacket wrapper), UTF-8."""
  return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n' + xmp_document(props)
          + '\n<?xpacket end="w"?>').encode("utf-8")


def parse_xmp(data: bytes) -> dict[str, str]:
  """All simple properties of every rdf:Description, as "prefix:Name" -> text.

  Reads both serializations RDF allows for simple values: attributes and child elements.
  Namespaces we do not know keep their URI in braces.
  """
  try:
    root = ET.fromstring(data)
  except ET.ParseError as e:
    raise PanoFormatError(f"unreadable XMP packet: {e}") from e

  def name(tag):
    uri, _, local = tag[1:].partition("}")
    return f"{_PREFIXES[uri]}:{local}" if uri in _PREFIXES else tag

  props = {}
  for desc in root.iter(f"{{{NAMESPACES['rdf']}}}Description"):
    for key, value in desc.attrib.items():
      if not key.startswith(f"{{{NAMESPACES['rdf']}}}"):
        props[name(key)] = value
    for child in desc:
      if len(child) == 0:
        props[name(child.tag)] = child.text or ""
  return props


# ---------------------------------------------------------------------------------------------
# JPEG segments.

def jpeg_segments(data: bytes) -> list[tuple[int, int, bytes]]:
  """The marker segments before the image data: [(marker, offset, payload)].

  offset is where the segment's 0xFF byte is; payload excludes marker and length.
  """
  if data[:2] != b"\xff\xd8":
    raise PanoFormatError("not a JPEG file (no SOI marker)")
  out, pos = [], 2
  while pos + 4 <= len(data):
    if data[pos] != 0xFF:
      raise PanoFormatError(f"corrupt JPEG: expected a marker at byte {pos}")
    marker = data[pos + 1]
    if marker == 0xFF:  # fill byte
      pos += 1
      continue
    (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
    out.append((marker, pos, data[pos + 4:pos + 2 + length]))
    if marker == 0xDA:  # start of scan: entropy-coded data follows
      break
    pos += 2 + length
  return out


def _app1(payload: bytes) -> bytes:
  if len(payload) + 2 > 0xFFFF:
    raise PanoFormatError(f"APP1 payload of {len(payload)} bytes exceeds the 65533-byte limit")
  return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def insert_segments(jpeg: bytes, segments: list[bytes]) -> bytes:
  """Inserts whole segments right after SOI, or after the JFIF APP0 segment(s) if present
  (JFIF requires APP0 to come first)."""
  pos = 2
  for marker, offset, payload in jpeg_segments(jpeg):
    if marker != 0xE0:
      break
    pos = offset + 4 + len(payload)
  return jpeg[:pos] + b"".join(segments) + jpeg[pos:]


def to_uint8(img) -> np.ndarray:
  """[H, W, 3] uint8 as is, or float in [0, 1] rounded to uint8; anything else raises."""
  a = np.asarray(img)
  if a.dtype != np.uint8:
    a = np.round(np.clip(a.astype(np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)
  if a.ndim != 3 or a.shape[-1] != 3:
    raise PanoFormatError(f"expected an RGB image [H, W, 3], got shape {a.shape}")
  return a


def encode_jpeg(img, *, quality: int = 90) -> bytes:
  """[H, W, 3] uint8 (or float in [0, 1]) -> baseline JPEG bytes with a JFIF header."""
  buf = io.BytesIO()
  Image.fromarray(to_uint8(img)).save(buf, format="JPEG", quality=quality)
  return buf.getvalue()


def write_atomic(path, data: bytes) -> pathlib.Path:
  """Writes data to path through a temporary file renamed over it: never half a file."""
  return files.write_bytes(path, data)


def _main_xmp_segment(props: dict[str, str]) -> bytes:
  packet = xmp_packet(props)
  if len(packet) > MAX_XMP_PACKET:
    raise PanoFormatError(f"XMP packet of {len(packet)} bytes exceeds {MAX_XMP_PACKET} bytes; "
                          "larger metadata must go in extended XMP")
  return _app1(XMP_HEADER + packet)


def extended_xmp_segments(document: bytes) -> tuple[str, list[bytes]]:
  """Extended XMP document -> (GUID, its APP1 segments) as XMP spec part 3 describes."""
  guid = hashlib.md5(document).hexdigest().upper()
  return guid, [
      _app1(EXTENSION_HEADER + guid.encode("ascii") + struct.pack(">II", len(document), off)
            + document[off:off + EXTENSION_CHUNK])
      for off in range(0, len(document), EXTENSION_CHUNK)]


# ---------------------------------------------------------------------------------------------
# Writers.

def write_pano_jpeg(pano, path, *, full_hw=None, crop_left: int = 0, crop_top: int | None = None,
                    heading_deg: float | None = None, quality: int = 90,
                    allow_large: bool = False) -> pathlib.Path:
  """Writes an equirectangular panorama as a JPEG photo sphere.

  Args:
    pano: [H, W, 3] uint8 (or float in [0, 1]); the full 2:1 panorama, or with full_hw a
      band (partial panorama) of it.
    path: the .jpg to write (atomically).
    full_hw: (height, width) of the full panorama the band belongs to.
    crop_left, crop_top: the band's position in the full panorama, pixels (default: left 0,
      centred vertically).
    heading_deg: compass heading of the panorama's centre column (GPano:PoseHeadingDegrees).
    allow_large: permit full widths above 8192.
  """
  a = to_uint8(pano)
  geometry = PanoGeometry.for_image(*a.shape[:2], full_hw=full_hw, crop_left=crop_left,
                                    crop_top=crop_top, allow_large=allow_large)
  segment = _main_xmp_segment(geometry.gpano(heading_deg))
  return write_atomic(path, insert_segments(encode_jpeg(a, quality=quality), [segment]))


def write_vr_jpeg(left, right, path, *, full_hw=None, crop_left: int = 0,
                  crop_top: int | None = None, heading_deg: float | None = None,
                  quality: int = 90, allow_large: bool = False,
                  extended: bool | None = None) -> pathlib.Path:
  """Writes a VR photo: the left eye as the JPEG image, the right eye in GImage:Data.

  Args as write_pano_jpeg; left and right are [H, W, 3] of the same shape. extended:
  None puts the right eye in extended XMP only when the main packet would exceed 65502
  bytes; True/False force it (False raises if it does not fit).
  """
  l, r = to_uint8(left), to_uint8(right)
  if l.shape != r.shape:
    raise PanoFormatError(f"left {l.shape} and right {r.shape} eyes differ in shape")
  geometry = PanoGeometry.for_image(*l.shape[:2], full_hw=full_hw, crop_left=crop_left,
                                    crop_top=crop_top, allow_large=allow_large)
  props = geometry.gpano(heading_deg) | {"GImage:Mime": "image/jpeg"}
  data = base64.b64encode(encode_jpeg(r, quality=quality)).decode("ascii")
  inline = props | {"GImage:Data": data}
  if extended is None:
    extended = len(xmp_packet(inline)) > MAX_XMP_PACKET
  if extended:
    guid, chunks = extended_xmp_segments(xmp_document({"GImage:Data": data}).encode("utf-8"))
    segments = [_main_xmp_segment(props | {"xmpNote:HasExtendedXMP": guid})] + chunks
  else:
    segments = [_main_xmp_segment(inline)]
  return write_atomic(path, insert_segments(encode_jpeg(l, quality=quality), segments))


# ---------------------------------------------------------------------------------------------
# Readers.

def read_xmp(path, *, extended: bool = True) -> dict[str, str]:
  """The file's XMP properties ("prefix:Name" -> text), main packet plus extended XMP.

  The extended chunks are joined by offset and checked against the GUID (MD5).
  """
  data = pathlib.Path(path).read_bytes()
  main, chunks = None, {}
  for marker, _, payload in jpeg_segments(data):
    if marker != 0xE1:
      continue
    if payload.startswith(XMP_HEADER) and main is None:
      main = payload[len(XMP_HEADER):]
    elif payload.startswith(EXTENSION_HEADER):
      body = payload[len(EXTENSION_HEADER):]
      guid = body[:32].decode("ascii")
      full_length, offset = struct.unpack(">II", body[32:40])
      chunks.setdefault(guid, (full_length, {}))[1][offset] = body[40:]
  if main is None:
    raise PanoFormatError(f"{path}: no XMP packet")
  props = parse_xmp(main)
  guid = props.get("xmpNote:HasExtendedXMP")
  if extended and guid:
    if guid not in chunks:
      raise PanoFormatError(f"{path}: extended XMP {guid} is named but missing")
    full_length, parts = chunks[guid]
    document = b"".join(parts[o] for o in sorted(parts))
    if len(document) != full_length or hashlib.md5(document).hexdigest().upper() != guid:
      raise PanoFormatError(f"{path}: extended XMP {guid} is incomplete or corrupt")
    props |= parse_xmp(document)
  return props


def read_gpano(path) -> dict:
  """The GPano properties of a photo sphere, typed: {"FullPanoWidthPixels": 4096, ...}."""
  props = read_xmp(path, extended=False)
  gpano = {k.split(":", 1)[1]: v for k, v in props.items() if k.startswith("GPano:")}
  if not gpano:
    raise PanoFormatError(f"{path}: XMP has no GPano properties")
  return {k: _GPANO_TYPES.get(k, str)(v) for k, v in gpano.items()}


def read_vr_jpeg(path) -> tuple[np.ndarray, np.ndarray, dict]:
  """-> (left [H, W, 3] uint8, right [H, W, 3] uint8, GPano properties) of a VR photo."""
  props = read_xmp(path)
  if props.get("GImage:Mime") != "image/jpeg" or "GImage:Data" not in props:
    raise PanoFormatError(f"{path}: not a VR photo (no GImage:Data image/jpeg)")
  with Image.open(path) as im:
    left = np.asarray(im.convert("RGB"))
  with Image.open(io.BytesIO(base64.b64decode(props["GImage:Data"]))) as im:
    right = np.asarray(im.convert("RGB"))
  return left, right, read_gpano(path)
