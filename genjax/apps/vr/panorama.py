"""Photo -> 360-degree panorama by outpainting on the sphere, and model-based hole filling.

  pm = load_panorama_model("runs/pano")                  # a mask-conditioned 2:1 run
  placement = Placement(hfov_deg=photo_hfov(path, photo.shape[:2]))
  result = photo_to_panorama(photo, pm, placement=placement, key=jax.random.key(0))
  outputs.write_panorama(result.panorama, "out/beach")

How it works:
1. The photo is placed on the sphere at the front (yaw 0) with its horizontal field of
   view, pitch and roll (genjax.image.projections), at the model's resolution, area-averaged
   from 2x supersampling; pixels the photo covers fully form the keep mask.
2. The rest is outpainted by the model's sampler at its own resolution (a model trained
   with mask conditioning, cond_channels = 4, is given concat(known * keep, keep) as in
   genjax.sample.sampler.make_inpainter; any other model is inpainted with RePaint). With
   `rotate`, each denoiser call sees the sphere turned by a fresh random longitude (the
   state, the known pixels and the mask rolled together, rolled back after), so no
   longitude is ever the wrap of every step and no fixed seam can form; the random shifts
   also move the UNet's stride-2 grid, which a roll by a multiple of 2^levels would not.
3. The generated panorama is upsampled to the output size (trigonometric interpolation
   in longitude, so no longitude is special; linear in latitude, across the poles), and
   the photo's own pixels are pasted where they land, warped once from the full-resolution
   photo into the output grid; a narrow ramp inside the photo's border (`feather`) blends
   it into the generated surroundings.

The output size defaults to the photo's own resolution: as many pixels per radian as the
photo has at its centre, capped at the 8192-pixel width viewers accept.

`fill_holes` uses the same kind of run to inpaint the disocclusions of a stereo warp
(genjax.apps.vr.stereo), in model-sized windows at (nearly) the photo's resolution.
"""

import dataclasses
import functools
import math
import pathlib
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from genjax import configs, diffusion
from genjax.apps.vr import outputs, xmp
from genjax.data.decode import load_rgb
from genjax.diffusion import samplers
from genjax.image import projections
from genjax.sample.load import load_run
from genjax.sample.sampler import make_inpainter

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


# ---------------------------------------------------------------------------------------------
# Where the photo goes.

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


def _to_float(photo) -> np.ndarray:
  a = np.asarray(photo)
  return a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)


def _shrink(photo: np.ndarray, scale: float) -> np.ndarray:
  """float [H, W, C] -> area-averaged to `scale` (< 1) of its size, per channel (Pillow 'F')."""
  h, w, c = photo.shape
  size = (max(2, round(w * scale)), max(2, round(h * scale)))
  return np.stack([np.asarray(Image.fromarray(photo[..., i]).resize(size, Image.Resampling.BOX))
                   for i in range(c)], axis=-1)


def _at_density(photo: np.ndarray, hfov_deg: float, px_per_radian: float) -> np.ndarray:
  """The photo shrunk (never enlarged) so its centre has at most px_per_radian pixels per
  radian: resampling it onto a coarser sphere grid then does not alias."""
  scale = px_per_radian / focal_px(photo.shape[:2], hfov_deg)
  return _shrink(photo, scale) if scale < 1 else photo


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
  photo = _at_density(_to_float(photo), placement.hfov_deg, _SUPERSAMPLE * w / (2 * math.pi))
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
  photo = _to_float(photo)
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
  Along latitude linearly, with one row of padding across each pole (the row itself,
  turned by 180 degrees of longitude).
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
  return jax.image.scale_and_translate(rows, (out_height, out_w, c), (0,),
                                       jnp.array([s], jnp.float32),
                                       jnp.array([-s], jnp.float32), method="linear")


# ---------------------------------------------------------------------------------------------
# The model.

class PanoramaModel(NamedTuple):
  """A trained run: its config, Flax model, DiffusionSpec and (EMA) parameters."""
  config: Any
  model: Any
  spec: Any
  params: Any

  @property
  def image_hw(self) -> tuple[int, int]:
    return tuple(self.config.data.image_size)

  @property
  def masked(self) -> bool:
    return self.config.model.cond_channels == 4


def load_panorama_model(workdir, *, step: int | None = None,
                        equirect: bool = True) -> PanoramaModel:
  """Loads a run folder; with `equirect`, refuses models that do not make 2:1 panoramas
  (checked on its config.json, before any weights are read)."""
  workdir = pathlib.Path(workdir)
  config_path = workdir / "config.json"
  if not config_path.is_file():
    raise FileNotFoundError(f"{workdir} is not a genjax run folder: no config.json")
  config = configs.from_json(config_path.read_text(), source=str(config_path))
  h, w = config.data.image_size
  if equirect and w != 2 * h:
    raise PanoramaError(f"{workdir}: the model makes {h}x{w} (HxW) images, not 2:1 "
                        f"equirectangular panoramas; train one with --config=panorama_tiny "
                        f"or --config=panorama")
  if config.model.cond_channels not in (0, 4):
    raise PanoramaError(f"{workdir}: model.cond_channels = {config.model.cond_channels}; "
                        f"outpainting needs 4 (masked image + mask) or 0 (RePaint)")
  return PanoramaModel(*load_run(workdir, step=step))


def _null_labels(model, batch: int):
  n = getattr(getattr(model, "config", None), "num_classes", 0)
  return jnp.full((batch,), n, jnp.int32) if n else None


METHODS = ("auto", "conditioned", "repaint")


def outpaint(params, key, known, keep, *, model, spec, steps: int = 50, sampler: str = "ddpm",
             method: str = "auto", rotate: bool = True, resample: int = 4,
             clip_x0: float | None = 1.0):
  """Fills the pixels outside `keep`. Pure; jit it outside.

  Args:
    known: [B, H, W, 3] float32 in [-1, 1] (values outside keep are ignored).
    keep: [B, H, W, 1] float32 in {0, 1}, 1 = preserve.
    model, spec: the run's Flax model and DiffusionSpec (hashable: static under jit).
    steps, sampler: a genjax.diffusion sampler name and its number of steps.
    method: "conditioned": a mask-conditioned model (cond_channels = 4) is given
      concat(known * keep, keep), as in genjax.sample.sampler.make_inpainter, and sampled
      directly; with `rotate`, each denoiser call sees the sphere turned by a random
      longitude (see the module docstring). "repaint": RePaint (diffusion.inpaint with
      `resample` passes per step) with the model unconditional (a mask-conditioned model
      is given an empty mask, which it was trained on for 10% of its examples). "auto":
      conditioned when the model has the mask channels, else repaint.
      Conditioned is the choice for outpainting around a photo (a kept box, as in
      training); repaint for small holes, a mask the conditioning never saw in training
      (genjax.train.conditioning keeps boxes only; measured on thin disocclusion strips
      with panorama_tiny: mean error 0.17 conditioned, 0.013 repaint with resample 4).
  Returns: [B, H, W, 3] float32 in [-1, 1], equal to known where keep = 1.
  """
  b, h, w, _ = known.shape
  keep = keep.astype(jnp.float32)
  masked = getattr(getattr(model, "config", None), "cond_channels", 0) == 4
  if method not in METHODS:
    raise ValueError(f"unknown outpainting method {method!r}; valid: {', '.join(METHODS)}")
  if method == "conditioned" and not masked:
    raise ValueError("method 'conditioned' needs a model trained with mask conditioning "
                     "(model.cond_channels = 4)")
  name = {"dpm++2m": "dpmpp_2m", "dpm++": "dpmpp_2m"}.get(sampler, sampler)
  diffusion.get_sampler(name)   # an unknown name raises, listing the valid ones
  labels = _null_labels(model, b)
  if method == "repaint" or not masked:
    if not masked:
      return make_inpainter(model, spec, steps=steps, resample=resample, sampler=name,
                            clip_x0=clip_x0)(params, key, known, keep)
    empty = jnp.zeros((b, h, w, 4), jnp.float32)

    def net(x_in, c_noise):
      return model.apply({"params": params}, x_in, c_noise, y=labels, cond=empty, train=False)

    return diffusion.inpaint(diffusion.make_denoiser(net, spec, clip_x0=clip_x0), key, known,
                             keep, spec, steps=steps, resample=resample, sampler=name)

  rule = samplers.STEP_RULES[name]
  opts = samplers.check_options(name, {})
  cond = jnp.concatenate([known * keep, keep], axis=-1)
  k_noise, k_roll = jax.random.split(key)
  grid = samplers.sampling_grid(name, spec.schedule, steps)
  shifts = (jax.random.randint(k_roll, (steps,), 0, w) if rotate
            else jnp.zeros((steps,), jnp.int32))
  keys, x = samplers.initial_state(k_noise, (b, h, w, 3), spec.schedule, grid[0])

  def body(state, inp):
    x, carry = state
    i, t, t_next, shift = inp

    def net(x_in, c_noise):
      # The sphere turned by `shift` columns: the image, the kept pixels and the mask alike.
      out = model.apply({"params": params}, jnp.roll(x_in, shift, axis=2), c_noise, y=labels,
                        cond=jnp.roll(cond, shift, axis=2), train=False)
      return jnp.roll(out, -shift, axis=2)

    ctx = samplers.Context(diffusion.make_denoiser(net, spec, clip_x0=clip_x0), spec.schedule,
                           keys, steps)
    return rule.step(ctx, x, carry, t, t_next, (i,), **opts), None

  (x, _), _ = jax.lax.scan(body, (x, rule.init_carry(x)),
                           (jnp.arange(steps), grid[:-1], grid[1:], shifts))
  return keep * known + (1 - keep) * x


_outpaint = jax.jit(outpaint, static_argnames=("model", "spec", "steps", "sampler", "method",
                                               "rotate", "resample", "clip_x0"))


# ---------------------------------------------------------------------------------------------
# Photo -> panorama.

@dataclasses.dataclass
class PanoramaResult:
  """panorama: uint8 [Ho, 2 Ho, 3]; generated: float [Hm, Wm, 3] in [0, 1] (the model's
  own output); keep: bool [Hm, Wm]; window: (top, left, rows, cols) of the pasted photo;
  photo_alpha: [rows, cols] blend weight of the photo there."""
  panorama: np.ndarray
  generated: np.ndarray
  keep: np.ndarray
  window: tuple[int, int, int, int]
  photo_alpha: np.ndarray
  placement: Placement


def compose(generated, photo, placement: Placement, out_height: int, *,
            feather: float = 0.03):
  """Upsampled generated panorama [Hm, 2 Hm, 3] with the photo pasted at out_height.

  Returns (panorama uint8 [out_height, 2 out_height, 3], window, alpha)."""
  pano = upsample_equirect(generated, out_height)
  rgb, alpha, window = warp_photo(photo, placement, out_height, feather=feather)
  top, left, rows, cols = window
  region = pano[top:top + rows, left:left + cols]
  a = alpha[..., None]
  pano[top:top + rows, left:left + cols] = a * rgb + (1 - a) * region
  return xmp.to_uint8(np.clip(pano, 0, 1)), window, alpha


def photo_to_panorama(photo, pm: PanoramaModel, *, key: jax.Array,
                      placement: Placement = Placement(), out_height: int | None = None,
                      steps: int = 50, sampler: str = "ddpm", rotate: bool = True,
                      feather: float = 0.03,
                      max_width: int = xmp.MAX_VIEWER_WIDTH) -> PanoramaResult:
  """A full 360 x 180 panorama around a photo (see the module docstring).

  Args:
    photo: uint8 [H, W, 3] (or float in [0, 1]), at least MIN_PHOTO_SIDE a side.
    pm: a 2:1 panorama run (load_panorama_model).
    key: PRNG key of the outpainting (noise and rotations).
    placement: field of view, pitch and roll of the photo (degrees).
    out_height: output height (width = 2 x); None keeps the photo's resolution (at most
      max_width wide) and never goes below the model's. Rounded up to an even number.
    steps, sampler, rotate: see `outpaint`.
    feather: blend ramp inside the photo's border, as a fraction of its width (0: none).
  """
  photo = np.asarray(photo)
  check_photo(photo)
  hm, wm = pm.image_hw
  if wm != 2 * hm:
    raise PanoramaError(f"the model makes {hm}x{wm} images, not 2:1 panoramas")
  if out_height is None:
    out_height = max(hm, default_out_height(photo.shape[:2], placement.hfov_deg,
                                            max_width=max_width))
  out_height = int(out_height) + int(out_height) % 2
  if out_height < 2:
    raise PanoramaError(f"out_height must be >= 2, got {out_height}")
  known, keep = place_on_grid(photo, placement, (hm, wm))
  if not keep.any():
    raise PanoramaError(f"the photo covers no whole pixel of the model's {hm}x{wm} panorama "
                        f"(field of view {placement.hfov_deg:g} degrees is too narrow for it)")
  out = _outpaint(pm.params, key, jnp.asarray(known * 2 - 1)[None],
                  jnp.asarray(keep, jnp.float32)[None, ..., None], model=pm.model,
                  spec=pm.spec, steps=steps, sampler=sampler, rotate=rotate)
  generated = np.clip((np.asarray(out[0]) + 1) / 2, 0, 1)
  pano, window, alpha = compose(generated, photo, placement, out_height, feather=feather)
  return PanoramaResult(pano, generated, keep, window, alpha, placement)


# ---------------------------------------------------------------------------------------------
# Hole filling (stereo disocclusions).

def _window_starts(n: int, size: int) -> np.ndarray:
  """Starts of windows of `size` over [0, n) at stride size / 2, the last one flush."""
  if n <= size:
    return np.zeros(1, np.int64)
  starts = list(range(0, n - size + 1, max(1, size // 2)))
  if starts[-1] != n - size:
    starts.append(n - size)
  return np.asarray(starts)


def _nearest_window(coords: np.ndarray, starts: np.ndarray, size: int) -> np.ndarray:
  """Index of the window whose centre is nearest to each coordinate (pixel centres)."""
  centres = starts + size / 2
  return np.argmin(np.abs(coords[:, None] + 0.5 - centres[None, :]), axis=1)


def _max_run(mask: np.ndarray) -> int:
  """Longest horizontal run of True in a [H, W] bool mask."""
  best = 0
  run = np.zeros(mask.shape[0], np.int64)
  for col in mask.T:
    run = np.where(col, run + 1, 0)
    best = max(best, int(run.max(initial=0)))
  return best


def fill_holes(image, holes, pm: PanoramaModel, *, key: jax.Array, steps: int = 50,
               sampler: str = "ddpm", resample: int = 4, batch: int = 8) -> np.ndarray:
  """Inpaints the `holes` of an image with a run's model, in windows of the model's size.

  The image is cut into model-sized windows at half-window strides; each hole pixel is
  filled by the window whose centre is nearest, so it has at least a quarter window of
  context on every side (except at the image's border). Holes wider than a quarter
  window are filled on a copy shrunk by an integer factor (area average), upsampled back.
  Only hole pixels change. The windows are inpainted by RePaint (see `outpaint`: small
  holes are not the kept boxes the mask conditioning was trained on).

  Args:
    image: [H, W, 3] uint8 or float in [0, 1] (hole pixels may hold anything).
    holes: [H, W] bool, True = fill.
    batch: windows per compiled sampler call.
  Returns: float32 [H, W, 3] in [0, 1].
  """
  img = _to_float(image)
  holes = np.asarray(holes, bool)
  if holes.shape != img.shape[:2]:
    raise ValueError(f"holes {holes.shape} must match the image {img.shape[:2]}")
  if not holes.any():
    return img
  hm, wm = pm.image_hw
  factor = max(1, math.ceil(4 * _max_run(holes) / wm))
  small, small_holes = img, holes
  if factor > 1:
    small = _shrink(img, 1 / factor)
    small_holes = _shrink(holes[..., None].astype(np.float32), 1 / factor)[..., 0] > 0
  h, w = small.shape[:2]
  ph, pw = max(0, hm - h), max(0, wm - w)       # images smaller than a window: edge padding
  small = np.pad(small, ((0, ph), (0, pw), (0, 0)), mode="edge")
  small_holes = np.pad(small_holes, ((0, ph), (0, pw)))
  rows, cols = _window_starts(h + ph, hm), _window_starts(w + pw, wm)
  r, c = np.nonzero(small_holes)
  wr, wc = _nearest_window(r, rows, hm), _nearest_window(c, cols, wm)
  used = sorted(set(zip(wr.tolist(), wc.tolist())))
  filled = small.copy()
  for start in range(0, len(used), batch):
    chunk = used[start:start + batch]
    chunk = chunk + [chunk[-1]] * (batch - len(chunk))   # one compiled shape
    crops = np.stack([small[rows[i]:rows[i] + hm, cols[j]:cols[j] + wm] for i, j in chunk])
    keep = np.stack([~small_holes[rows[i]:rows[i] + hm, cols[j]:cols[j] + wm]
                     for i, j in chunk])[..., None].astype(np.float32)
    out = _outpaint(pm.params, jax.random.fold_in(key, start), jnp.asarray(crops * 2 - 1),
                    jnp.asarray(keep), model=pm.model, spec=pm.spec, steps=steps,
                    sampler=sampler, method="repaint", rotate=False, resample=resample)
    out = np.clip((np.asarray(out) + 1) / 2, 0, 1)
    for n, (i, j) in enumerate(used[start:start + batch]):
      sel = (wr == i) & (wc == j)
      filled[r[sel], c[sel]] = out[n, r[sel] - rows[i], c[sel] - cols[j]]
  filled = filled[:h, :w]
  if factor > 1:
    filled = np.stack([np.asarray(Image.fromarray(filled[..., k]).resize(
        (img.shape[1], img.shape[0]), Image.Resampling.BICUBIC)) for k in range(3)], -1)
  return np.where(holes[..., None], np.clip(filled, 0, 1), img).astype(np.float32)


def load_photo(path, *, max_pixels: int = 100_000_000) -> np.ndarray:
  """uint8 [H, W, 3] with the EXIF orientation applied; clear errors for unreadable or tiny
  files (genjax.data.decode.ImageDecodeError, PanoramaError)."""
  photo = load_rgb(pathlib.Path(path), max_pixels=max_pixels)
  check_photo(photo, str(path))
  return photo
