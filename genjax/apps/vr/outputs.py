"""The files a VR run writes: photo sphere JPEG, HTML viewer, cube faces, stereo layouts, VR photos.

Every writer takes arrays already computed (panorama, eyes, hole masks) and an output
stem (a path without suffix, e.g. out/beach); it returns {kind: path} of what it wrote.
All files are written atomically (genjax.image.io.save_image, xmp, viewer).

File names, for stem out/beach:
  panorama:  beach.jpg (photo sphere, GPano XMP), beach.html (viewer), beach_cube_<face>.jpg,
             beach_cube_strip.jpg (6:1) and beach_cube_cross.jpg (4:3), see cube_strip/cube_cross
  stereo:    beach_sbs.jpg, beach_ou.jpg, beach_anaglyph.jpg, beach.vr.jpg, beach_holes.png
  ODS:       beach_ods_tb.jpg (1:1 top-bottom, left on top), beach_ods.vr.jpg
"""

import math
import pathlib

import jax
import numpy as np

from genjax.apps.vr import stereo, viewer, xmp
from genjax.image import io, projections

CUBE_FACE_FILES = projections.CUBE_FACE_NAMES     # right, left, up, down, front, back


def _stem(stem) -> pathlib.Path:
  stem = pathlib.Path(stem)
  stem.parent.mkdir(parents=True, exist_ok=True)
  return stem


def _named(stem: pathlib.Path, suffix: str) -> pathlib.Path:
  return stem.with_name(stem.name + suffix)


def _float(img) -> np.ndarray:
  a = np.asarray(img)
  return a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)


def cube_strip(faces) -> np.ndarray:
  """Cube faces [6, S, S, C] -> one row [S, 6 S, C] in the faces' order +X, -X, +Y, -Y, +Z,
  -Z (right, left, up, down, front, back; genjax.image.projections): the "6 frames"
  horizontal layout game engines import as a cubemap (Unity's Texture Shape Cube, whose
  left-handed frame with +Z forward is the cube-map frame of projections)."""
  f = np.asarray(faces)
  return np.concatenate(list(f), axis=1)


# (row, column) of each face, in projections order, in the 4 x 3 horizontal cross.
_CROSS_CELLS = ((1, 2), (1, 0), (0, 1), (2, 1), (1, 1), (1, 3))


def cube_cross(faces) -> np.ndarray:
  """Cube faces [6, S, S, C] -> the horizontal cross [3 S, 4 S, C] (black elsewhere):
              up
        left front right back
              down
  the faces as projections orients them (up has the front at its bottom edge, down at
  its top), so every shared edge of the cross is continuous."""
  f = np.asarray(faces)
  s = f.shape[1]
  out = np.zeros((3 * s, 4 * s, f.shape[-1]), f.dtype)
  for face, (r, c) in zip(f, _CROSS_CELLS):
    out[r * s:(r + 1) * s, c * s:(c + 1) * s] = face
  return out


def write_panorama(pano, stem, *, html: bool = True, cube_face_size: int = 0,
                   heading_deg: float | None = None, quality: int = 90,
                   allow_large: bool = False) -> dict[str, pathlib.Path]:
  """Writes a full equirectangular panorama [H, 2H, 3] (uint8, or float in [0, 1]).

  stem.jpg is a photo sphere (GPano XMP, see xmp.write_pano_jpeg: 2:1, even sides, width at
  most 8192 unless allow_large); with html, stem.html is the standalone viewer; with
  cube_face_size > 0, six stem_cube_<face>.jpg faces of that size (order and orientation:
  genjax.image.projections) and the one-image layouts stem_cube_strip.jpg (cube_strip)
  and stem_cube_cross.jpg (cube_cross).
  """
  stem = _stem(stem)
  a = xmp.to_uint8(pano)
  out = {"panorama": xmp.write_pano_jpeg(a, _named(stem, ".jpg"), heading_deg=heading_deg,
                                         quality=quality, allow_large=allow_large)}
  if html:
    out["html"] = viewer.write_viewer_html(a, _named(stem, ".html"), title=stem.name,
                                           quality=quality)
  if cube_face_size:
    faces = jax.jit(projections.equirect_to_cubemap, static_argnums=1)(_float(a),
                                                                       int(cube_face_size))
    faces = np.asarray(faces)
    for name, face in zip(CUBE_FACE_FILES, faces):
      out[f"cube_{name}"] = io.save_image(_named(stem, f"_cube_{name}.jpg"), face,
                                          quality=quality)
    for name, layout in (("strip", cube_strip), ("cross", cube_cross)):
      out[f"cube_{name}"] = io.save_image(_named(stem, f"_cube_{name}.jpg"), layout(faces),
                                          quality=quality)
  return out


def band_geometry(photo_hw: tuple[int, int], hfov_deg: float, *,
                  max_width: int = xmp.MAX_VIEWER_WIDTH) -> tuple[int, tuple[int, int, int, int]]:
  """Where an upright photo looking at the front (yaw = pitch = roll = 0) lands in an
  equirectangular panorama that keeps its resolution.

  The panorama's pixels per radian equal the photo's focal length in pixels at its centre,
  f = (W / 2) / tan(hfov / 2), so the full width is 2 pi f (rounded to a multiple of 4,
  capped at max_width). The photo covers longitudes +-hfov / 2 and, at its centre column,
  latitudes +-vfov / 2 (its top and bottom edges bow towards the horizon elsewhere).

  Returns (full height Hp, window (top, left, h, w)) with even h and w, centred on the front.
  """
  h, w = photo_hw
  if not 0 < hfov_deg < 180:
    raise ValueError(f"hfov_deg must be in (0, 180) degrees, got {hfov_deg}")
  f = (w / 2) / math.tan(math.radians(hfov_deg) / 2)
  full_w = min(4 * round(2 * math.pi * f / 4), max_width - max_width % 4)
  full_h = full_w // 2
  half_lon = math.radians(hfov_deg) / 2
  half_lat = math.atan((h / 2) / f)
  cols = min(full_w, 2 * math.ceil(half_lon / (2 * math.pi) * full_w) + 2)
  rows = min(full_h, 2 * math.ceil(half_lat / math.pi * full_h) + 2)
  return full_h, ((full_h - rows) // 2, (full_w - cols) // 2, rows, cols)


def perspective_to_band(photo, hfov_deg: float, *, max_width: int = xmp.MAX_VIEWER_WIDTH):
  """An upright front-facing photo [H, W, 3] -> (band [h, w, 3] float, mask [h, w] bool,
  geometry dict for xmp.write_pano_jpeg / write_vr_jpeg: full_hw, crop_left, crop_top)."""
  full_h, window = band_geometry(np.shape(photo)[:2], hfov_deg, max_width=max_width)
  project = jax.jit(projections.perspective_to_equirect, static_argnames=("out_height", "window"))
  band, mask = project(_float(photo), yaw=0.0, pitch=0.0, roll=0.0, hfov_deg=hfov_deg,
                       out_height=full_h, window=window)
  top, left, _, _ = window
  return (np.asarray(band), np.asarray(mask[..., 0]) > 0.5,
          dict(full_hw=(full_h, 2 * full_h), crop_left=left, crop_top=top))


def write_stereo(left, right, stem, *, hfov_deg: float, holes=None, quality: int = 90,
                 anaglyph_mode: str = "color") -> dict[str, pathlib.Path]:
  """Writes a stereo pair of pinhole views [H, W, 3] (uint8, or float in [0, 1]).

  stem_sbs.jpg (left | right), stem_ou.jpg (left over right), stem_anaglyph.jpg (red-cyan),
  stem.vr.jpg (a VR photo: both eyes placed in the band of the sphere the photo covers,
  hfov_deg wide, with GPano CroppedArea fields) and, when holes [H, W] bool is given,
  stem_holes.png (white = disoccluded, filled by a stopgap).
  """
  stem = _stem(stem)
  l, r = _float(left), _float(right)
  stereo.check_pair(l, r)
  out = {
      "sbs": io.save_image(_named(stem, "_sbs.jpg"), stereo.side_by_side(l, r),
                           quality=quality),
      "ou": io.save_image(_named(stem, "_ou.jpg"), stereo.over_under(l, r), quality=quality),
      "anaglyph": io.save_image(_named(stem, "_anaglyph.jpg"),
                                stereo.anaglyph_red_cyan(l, r, mode=anaglyph_mode),
                                quality=quality),
  }
  band_l, _, geometry = perspective_to_band(l, hfov_deg)
  band_r, _, _ = perspective_to_band(r, hfov_deg)
  out["vr"] = xmp.write_vr_jpeg(band_l, band_r, _named(stem, ".vr.jpg"), quality=quality,
                                **geometry)
  if holes is not None:
    out["holes"] = io.save_image(_named(stem, "_holes.png"),
                                 np.asarray(holes, np.float32)[..., None])
  return out


def write_ods(left_pano, right_pano, stem, *, holes=None, quality: int = 90,
              allow_large: bool = False) -> dict[str, pathlib.Path]:
  """Writes an omnidirectional stereo pair of equirectangular eyes [H, 2H, 3].

  stem_ods_tb.jpg is the 1:1 top-bottom frame (left eye on top) that 360 stereo players
  read; stem_ods.vr.jpg the VR photo (left eye with GPano XMP, right eye in GImage:Data);
  with holes [2, H, 2H] bool (left, right), stem_ods_holes.png in the top-bottom layout.
  """
  stem = _stem(stem)
  l, r = xmp.to_uint8(left_pano), xmp.to_uint8(right_pano)
  stereo.check_pair(l, r)
  # The viewer rules (2:1, even, width) before anything is written.
  xmp.PanoGeometry.for_image(*l.shape[:2], allow_large=allow_large)
  frame = np.concatenate([l, r], axis=0)                     # stereo.ods_over_under layout
  out = {"ods_tb": io.save_image(_named(stem, "_ods_tb.jpg"), frame, quality=quality),
         "ods_vr": xmp.write_vr_jpeg(l, r, _named(stem, "_ods.vr.jpg"), quality=quality,
                                     allow_large=allow_large)}
  if holes is not None:
    h = np.asarray(holes, np.float32)
    out["ods_holes"] = io.save_image(_named(stem, "_ods_holes.png"),
                                     np.concatenate([h[0], h[1]], axis=0)[..., None])
  return out
