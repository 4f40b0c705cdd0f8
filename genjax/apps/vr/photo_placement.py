"""Where a photo lands on the 360 x 180 sphere, and the equirectangular resampling around it.

The photo's camera (Placement: field of view, pitch, roll; the field of view from the EXIF
when not given), checks and loading of the photo, its projection onto the model's
equirectangular grid (area-averaged from 2x supersampling; pixels the photo covers fully form
the keep mask), its full-resolution warp into the output grid with a feathered alpha, and the
upsampling of an equirectangular image (trigonometric in longitude, so no longitude is
special; linear in latitude, across the poles). Conventions: genjax.image.projections.
"""

import dataclasses
import functools
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from genjax.apps.vr import outputs, xmp
from genjax.data.decode import load_rgb
from genjax.image import polar, projections

DEFAULT_HFOV = 60.0          # degrees, when neither the caller nor the EXIF says
MIN_PHOTO_SIDE = 32          # pixels; smaller photos are refused
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)   # what "35 mm equivalent" focal lengths mean
_SUPERSAMPLE = 2             # placement at the model's resolution: 2 x 2 samples per pixel
_EXIF_IFD = 0x8769
_TAG_ORIENTATION = 0x0112
_TAG_FOCAL_LENGTH = 0x920A
_TAG_FOCAL_35MM = 0xA405
_TAG_PIXEL_X = 0xA002
_TAG_PLANE_X_RES = 0xA20E
_TAG_PLANE_UNIT = 0xA210
_PLANE_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 1e-3}   # inch, cm, mm, um (EXIF 2.3)


class PanoramaError(ValueError):
  """A photo, field of view, or model that cannot make a panorama; the message says why."""

@dataclasses.dataclass(frozen=True)
class Placement:
  """The photo's camera on the sphere, in degrees (conventions: genjax.image.projections).

  The photo always faces the front (yaw 0, the panorama's centre column); pitch > 0 looks
  up, roll > 0 turns the camera clockwise.
  """
  hfov_deg: float = DEFAULT_HFOV
  pitch_deg: float = 0.0
  roll_deg: float = 0.0

  def __post_init__(self):
    for name in ("hfov_deg", "pitch_deg", "roll_deg"):
      if not math.isfinite(getattr(self, name)):
        raise PanoramaError(f"{name} must be a finite number, got {getattr(self, name)}")
    if not 0 < self.hfov_deg < 180:
      raise PanoramaError(f"field of view must be in (0, 180) degrees (exclusive), got "
                          f"{self.hfov_deg}")
    if abs(self.pitch_deg) > 90:
      raise PanoramaError(f"pitch must be in [-90, 90] degrees, got {self.pitch_deg}")

  @property
  def angles(self) -> dict:
    return dict(yaw=0.0, pitch=self.pitch_deg, roll=self.roll_deg, hfov_deg=self.hfov_deg)


def _rational(v) -> float | None:
  try:
    f = float(v)
  except (TypeError, ValueError, ZeroDivisionError):
    return None
  return f if math.isfinite(f) and f > 0 else None


def exif_hfov(path, photo_hw: tuple[int, int]) -> tuple[float, str] | None:
  """Horizontal field of view (degrees) of the photo at `path` from its EXIF, or None.

  photo_hw is the (height, width) of the photo as loaded (EXIF orientation applied).
  1. FocalLengthIn35mmFilm: the focal length giving the same diagonal angle of view on a
     36 x 24 mm frame, so diag_fov = 2 atan(43.27 / (2 f35)), split by the photo's aspect.
  2. FocalLength with FocalPlaneXResolution (sensor pixels per unit, i.e. the sensor size):
     focal length in pixels = f_mm * resolution / unit_mm, scaled from the sensor's
     PixelXDimension to the photo's width along the same (unrotated) axis.
  Returns (hfov, how) with how = "exif_35mm" or "exif_focal_plane".
  """
  h, w = photo_hw
  try:
    with Image.open(path) as im:
      exif = im.getexif()
      ifd = exif.get_ifd(_EXIF_IFD)
      orientation = exif.get(_TAG_ORIENTATION, 1)
  except Exception:  # Pillow raises many types for odd EXIF; no EXIF then  # noqa: BLE001
    return None
  f35 = _rational(ifd.get(_TAG_FOCAL_35MM))
  if f35:
    diag_fov = 2 * math.atan(FULL_FRAME_DIAGONAL_MM / (2 * f35))
    f_px = math.hypot(w, h) / 2 / math.tan(diag_fov / 2)
    return math.degrees(2 * math.atan(w / 2 / f_px)), "exif_35mm"
  f_mm = _rational(ifd.get(_TAG_FOCAL_LENGTH))
  res = _rational(ifd.get(_TAG_PLANE_X_RES))
  unit = _PLANE_UNIT_MM.get(ifd.get(_TAG_PLANE_UNIT, 2))
  if f_mm and res and unit:
    # The sensor's x axis is the stored image's width; orientations 5-8 turn it by 90 degrees.
    sensor_cols = w if orientation not in (5, 6, 7, 8) else h
    pixel_x = _rational(ifd.get(_TAG_PIXEL_X)) or sensor_cols
    f_px = f_mm * res / unit * (sensor_cols / pixel_x)
    return math.degrees(2 * math.atan(w / 2 / f_px)), "exif_focal_plane"
  return None


def photo_hfov(path, photo_hw: tuple[int, int], fov: float | None = None) -> tuple[float, str]:
  """(hfov degrees, source): `fov` if given ("given"), else from the EXIF, else the default."""
  if fov is not None:
    Placement(hfov_deg=float(fov))  # validates
    return float(fov), "given"
  found = exif_hfov(path, photo_hw) if path is not None else None
  if found is not None and 0 < found[0] < 180:
    return found
  return DEFAULT_HFOV, "default"


def check_photo(photo: np.ndarray, name: str = "photo") -> None:
  """Raises PanoramaError for anything but an RGB photo at least MIN_PHOTO_SIDE a side."""
  if photo.ndim != 3 or photo.shape[-1] != 3:
    raise PanoramaError(f"{name}: expected an RGB image [H, W, 3], got shape {photo.shape}")
  h, w = photo.shape[:2]
  if min(h, w) < MIN_PHOTO_SIDE:
    raise PanoramaError(f"{name}: {w}x{h} pixels is too small to place on a panorama (each "
                        f"side must be at least {MIN_PHOTO_SIDE} pixels)")


def focal_px(photo_hw: tuple[int, int], hfov_deg: float) -> float:
  return photo_hw[1] / 2 / math.tan(math.radians(hfov_deg) / 2)


def default_out_height(photo_hw: tuple[int, int], hfov_deg: float, *,
                       max_width: int = xmp.MAX_VIEWER_WIDTH) -> int:
  """The panorama height that keeps the photo's resolution (see outputs.band_geometry)."""
  return outputs.band_geometry(photo_hw, hfov_deg, max_width=max_width)[0]


def to_float(photo) -> np.ndarray:
  """uint8 [H, W, C] in 0..255 (or float) -> float32 in [0, 1]."""
  a = np.asarray(photo)
  return a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)


def shrink(photo: np.ndarray, scale: float) -> np.ndarray:
  """float [H, W, C] -> area-averaged to `scale` (< 1) of its size, per channel (Pillow 'F')."""
  h, w, c = photo.shape
  size = (max(2, round(w * scale)), max(2, round(h * scale)))
  return np.stack([np.asarray(Image.fromarray(photo[..., i]).resize(size, Image.Resampling.BOX))
                   for i in range(c)], axis=-1)


def _at_density(photo: np.ndarray, hfov_deg: float, px_per_radian: float) -> np.ndarray:
  """The photo shrunk (never enlarged) so its centre has at most px_per_radian pixels per
  radian: resampling it onto a coarser sphere grid then does not alias."""
  scale = px_per_radian / focal_px(photo.shape[:2], hfov_deg)
  return shrink(photo, scale) if scale < 1 else photo


def _edge_ramp(hw: tuple[int, int], width_px: float) -> np.ndarray:
  """[H, W, 1] float: 0 at the photo's border rising to 1 at width_px pixels inside."""
  h, w = hw
  if width_px <= 0:
    return np.ones((h, w, 1), np.float32)
  y = np.minimum(np.arange(h) + 0.5, h - np.arange(h) - 0.5)
  x = np.minimum(np.arange(w) + 0.5, w - np.arange(w) - 0.5)
  d = np.minimum(y[:, None], x[None, :])
  return np.clip(d / width_px, 0, 1).astype(np.float32)[..., None]


@functools.partial(jax.jit, static_argnames=("out_height", "window"))
def _project(photo, angles, *, out_height, window=None):
  return projections.perspective_to_equirect(photo, out_height=out_height, window=window,
                                             **angles)


def _angles(placement: Placement) -> dict:
  return {k: jnp.float32(v) for k, v in placement.angles.items()}


def place_on_grid(photo, placement: Placement, hw: tuple[int, int]):
  """The photo on an equirectangular grid hw = (H, 2H), area-averaged from 2 x 2 samples.

  Returns (known [H, W, 3] float in [0, 1], keep [H, W] bool: pixels the photo covers fully).
  """
  h, w = hw
  photo = _at_density(to_float(photo), placement.hfov_deg, _SUPERSAMPLE * w / (2 * math.pi))
  pano, mask = _project(jnp.asarray(photo), _angles(placement), out_height=_SUPERSAMPLE * h)
  s = _SUPERSAMPLE
  pool = lambda a: np.asarray(a).reshape(h, s, w, s, -1).mean((1, 3))  # noqa: E731
  keep = pool(mask)[..., 0] > 1 - 1e-6
  return np.where(keep[..., None], pool(pano), 0.0).astype(np.float32), keep


def photo_window(photo_hw: tuple[int, int], placement: Placement, out_height: int, *,
                 margin: int = 2) -> tuple[int, int, int, int]:
  """(top, left, rows, cols) of the equirectangular [out_height, 2 out_height] pixels the
  photo can touch: its border traced on the sphere, with the poles it contains."""
  h, w = photo_hw
  width = 2 * out_height
  n = 256
  t = np.linspace(0.0, 1.0, n)
  border = np.concatenate([np.stack([t * w, np.zeros(n)], 1), np.stack([t * w, np.full(n, h)], 1),
                           np.stack([np.zeros(n), t * h], 1), np.stack([np.full(n, w), t * h], 1)])
  f = focal_px(photo_hw, placement.hfov_deg)
  cam = np.stack([(border[:, 0] - w / 2) / f, -(border[:, 1] - h / 2) / f, -np.ones(4 * n)], 1)
  rot = np.asarray(projections.rotation_matrix(0.0, placement.pitch_deg, placement.roll_deg),
                   np.float64)
  d = cam @ rot.T
  lon = np.arctan2(d[:, 0], -d[:, 2])
  lat = np.arctan2(d[:, 1], np.hypot(d[:, 0], d[:, 2]))
  lat_lo, lat_hi = lat.min(), lat.max()
  full_width = False
  for pole in (1.0, -1.0):            # a pole inside the photo: all longitudes, up to the pole
    c = rot.T @ np.array([0.0, pole, 0.0])
    if c[2] < 0:
      x, y = w / 2 + f * c[0] / -c[2], h / 2 - f * c[1] / -c[2]
      if 0 <= x <= w and 0 <= y <= h:
        full_width = True
        lat_lo, lat_hi = (lat_lo, math.pi / 2) if pole > 0 else (-math.pi / 2, lat_hi)
  top = max(0, math.floor((math.pi / 2 - lat_hi) / math.pi * out_height) - margin)
  bottom = min(out_height, math.ceil((math.pi / 2 - lat_lo) / math.pi * out_height) + margin)
  if full_width or lon.max() - lon.min() > math.pi:
    return top, 0, bottom - top, width
  left = max(0, math.floor((lon.min() + math.pi) / (2 * math.pi) * width) - margin)
  right = min(width, math.ceil((lon.max() + math.pi) / (2 * math.pi) * width) + margin)
  return top, left, bottom - top, right - left


def warp_photo(photo, placement: Placement, out_height: int, *, feather: float = 0.03):
  """The full-resolution photo in the [out_height, 2 out_height] panorama, window only.

  Returns (rgb [rows, cols, 3] float in [0, 1], alpha [rows, cols] in [0, 1], window):
  alpha is 1 wherever the photo lands at least feather * (photo width) inside its border,
  ramps to 0 at the border, and is 0 outside.
  """
  photo = to_float(photo)
  photo = _at_density(photo, placement.hfov_deg, 2 * out_height / (2 * math.pi))
  ramp = _edge_ramp(photo.shape[:2], feather * photo.shape[1])
  window = photo_window(photo.shape[:2], placement, out_height)
  rgba, mask = _project(jnp.asarray(np.concatenate([photo, ramp], -1)), _angles(placement),
                        out_height=out_height, window=window)
  rgba = np.asarray(rgba)
  return rgba[..., :3], rgba[..., 3] * np.asarray(mask)[..., 0], window


def upsample_equirect(pano, out_height: int) -> np.ndarray:
  """[h, 2h, C] equirectangular -> [out_height, 2 out_height, C] float32 (out_height >= h).

  Along longitude by trigonometric interpolation: the rows' Fourier series evaluated on
  the finer grid, with the top half of the band tapered (raised cosine) against ringing.
  It is a shift-invariant filter of a periodic signal, so the result has no special
  longitude: the wrap is like every other column, whatever the phase of the source grid.
  (A linear or cubic kernel is not: the wrap falls on a source-pixel boundary, where
  their slope differs from its mean over a source pixel; measured on white noise, a
  linear 4x upsampling raises the seam's column ratio by 14 %, a cubic one by 30 %.)
  Along latitude linearly between row centres; between a pole and the nearest row centre
  each longitude harmonic m of that row is scaled by (sin(theta) / sin(theta_0))^m
  (genjax.image.polar.pole_cap_factors), as a smooth function on the sphere behaves there,
  so the pole row is one colour. (Linear interpolation across the pole, to the same row
  turned by 180 degrees, kept the even harmonics m = 2, 4, ... whole up to the pole: every
  pixel of the pole row is the same point, yet its colour varied along the row, a
  coloured pinwheel in the viewer; on the demo, std along row 0 of 7.7 of 255.)
  """
  x = jnp.asarray(pano, jnp.float32)
  h, w, _ = x.shape
  if out_height < h:
    raise ValueError(f"upsample_equirect: out_height {out_height} < source height {h}")
  return np.array(_upsample(x, int(out_height)))   # a writable copy


@functools.partial(jax.jit, static_argnums=1)
def _upsample(x, out_height):
  h, w, c = x.shape
  out_w = 2 * out_height
  k = jnp.arange(w // 2 + 1, dtype=jnp.float32) / (w / 2)          # frequency / Nyquist
  taper = jnp.where(k <= 0.5, 1.0, jnp.square(jnp.cos((k - 0.5) * jnp.pi)))
  # Output column J has its centre at source column (J + 0.5) / s - 0.5 (s = out_w / w),
  # while zero-padding the spectrum evaluates at J / s: shift by delta = (1 / s - 1) / 2.
  delta = 0.5 * (w / out_w - 1.0)
  shift = jnp.exp(2j * jnp.pi * jnp.arange(w // 2 + 1) * delta / w)
  spectrum = jnp.fft.rfft(x, axis=1) * (taper * shift)[None, :, None]
  spectrum = jnp.pad(spectrum, ((0, 0), (0, out_w // 2 + 1 - spectrum.shape[1]), (0, 0)))
  rows = jnp.fft.irfft(spectrum, n=out_w, axis=1) * (out_w / w)      # [h, out_w, C]
  rows = jnp.concatenate([jnp.roll(rows[:1], out_w // 2, axis=1), rows,
                          jnp.roll(rows[-1:], out_w // 2, axis=1)], axis=0)
  s = out_height / h
  # Output row coordinate = s * (padded row coordinate - 1): the padding maps outside.
  out = jax.image.scale_and_translate(rows, (out_height, out_w, c), (0,),
                                      jnp.array([s], jnp.float32),
                                      jnp.array([-s], jnp.float32), method="linear")
  # The polar caps: output rows whose centre lies between a pole and the first row centre.
  n_cap = max(0, math.ceil(out_height / (2 * h) - 0.5))
  if n_cap:
    theta = polar.row_colatitudes(out_height)[:n_cap]
    f = polar.pole_cap_factors(theta, math.pi / (2 * h), spectrum.shape[1])[..., None]
    top = jnp.fft.irfft(spectrum[:1] * f, n=out_w, axis=1) * (out_w / w)   # [n_cap, out_w, C]
    bottom = jnp.fft.irfft(spectrum[-1:] * f, n=out_w, axis=1) * (out_w / w)
    out = out.at[:n_cap].set(top).at[out_height - n_cap:].set(bottom[::-1])
  return out



def load_photo(path, *, max_pixels: int = 100_000_000) -> np.ndarray:
  """uint8 [H, W, 3] with the EXIF orientation applied; clear errors for unreadable or tiny
  files (genjax.data.decode.ImageDecodeError, PanoramaError)."""
  photo = load_rgb(pathlib.Path(path), max_pixels=max_pixels)
  check_photo(photo, str(path))
  return photo
