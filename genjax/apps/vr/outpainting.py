"""Photo -> 360-degree panorama by outpainting on the sphere with a trained run.

  from genjax.apps.vr import outpainting, outputs, photo_placement
  pm = outpainting.load_panorama_model("runs/pano")     # a mask-conditioned 2:1 run
  hfov, _ = photo_placement.photo_hfov(path, photo.shape[:2])
  placement = photo_placement.Placement(hfov_deg=hfov)
  result = outpainting.photo_to_panorama(photo, pm, placement=placement, key=jax.random.key(0))
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

Steps 1 and 3 (placement, warp, upsampling) live in genjax.apps.vr.photo_placement.
"""

import dataclasses
import pathlib
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from genjax import configs, diffusion
from genjax.apps.vr import xmp
from genjax.apps.vr.photo_placement import (PanoramaError, Placement, check_photo,
                                            default_out_height, place_on_grid,
                                            upsample_equirect, warp_photo)
from genjax.diffusion import editing, samplers
from genjax.image import polar
from genjax.sample.load import load_run, sampling_defaults
from genjax.sample.sampler import make_inpainter


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

# The outpainting sampler of a trained run; a distilled student samples with its own.
DEFAULT_SAMPLER, DEFAULT_STEPS = "ddpm", 50
_ALIASES = {"dpm++2m": "dpmpp_2m", "dpm++": "dpmpp_2m"}


def sampling_for(config, *, sampler: str | None = None,
                 steps: int | None = None) -> tuple[str, int]:
  """(sampler, steps) of a run's outpainting (config None: no run): those given, else a
  distilled student's own (config.distill: genjax.sample.load.sampling_defaults; DDIM at its
  N steps), else ddpm at 50 steps. Each given one replaces only itself (steps=8 on a 4-step
  student: DDIM at 8 steps).

  A student runs the conditioned loop of `outpaint` as the teacher does: it is the same
  network, distilled with the training's keep masks as condition, so only the step rule and
  the grid change (DDIM's deterministic step on its N-step grid, which the student was
  trained on); the per-step rotations and the polar filter act on its x0 estimates alike."""
  default_sampler, default_steps = (DEFAULT_SAMPLER, DEFAULT_STEPS) if config is None else (
      sampling_defaults(config, sampler=DEFAULT_SAMPLER, steps=DEFAULT_STEPS))
  return sampler or default_sampler, default_steps if steps is None else steps


def repaint_sampler(sampler: str) -> str:
  """The sampler RePaint (`outpaint`'s method "repaint", stereo hole filling) runs for
  `sampler`: itself when it is a one-step rule (ddpm, ddim, euler, heun: a student's DDIM),
  else ddpm (a multistep solver's history is invalid after RePaint's re-noising)."""
  name = _ALIASES.get(sampler, sampler)
  return "ddpm" if name in editing.MULTISTEP else name


def outpaint(params, key, known, keep, *, model, spec, steps: int = 50, sampler: str = "ddpm",
             method: str = "auto", rotate: bool = True, resample: int = 4,
             clip_x0: float | None = 1.0, sphere: bool = True):
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
    sphere: the images are equirectangular panoramas: each denoised estimate is projected
      onto what the grid can hold near the poles (genjax.image.polar.polar_filter: row
      harmonics above H sin(colatitude) removed), so the model cannot paint a pinwheel
      into the polar caps (its loss weighs row 0 of a 16-row panorama by cos(84.4 deg) =
      0.1, and it left colour there: demo row-0 std 7.7 of 255). False for flat crops.
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
  name = _ALIASES.get(sampler, sampler)
  diffusion.get_sampler(name)   # an unknown name raises, listing the valid ones
  labels = _null_labels(model, b)

  def denoiser(net):
    d = diffusion.make_denoiser(net, spec, clip_x0=clip_x0)
    return (lambda x_t, t: polar.polar_filter(d(x_t, t))) if sphere else d
  if method == "repaint" or not masked:
    if not masked:
      return make_inpainter(model, spec, steps=steps, resample=resample, sampler=name,
                            clip_x0=clip_x0)(params, key, known, keep)
    empty = jnp.zeros((b, h, w, 4), jnp.float32)

    def net(x_in, c_noise):
      return model.apply({"params": params}, x_in, c_noise, y=labels, cond=empty, train=False)

    return diffusion.inpaint(denoiser(net), key, known,
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

    ctx = samplers.Context(denoiser(net), spec.schedule,
                           keys, steps)
    return rule.step(ctx, x, carry, t, t_next, (i,), **opts), None

  (x, _), _ = jax.lax.scan(body, (x, rule.init_carry(x)),
                           (jnp.arange(steps), grid[:-1], grid[1:], shifts))
  return keep * known + (1 - keep) * x


# `outpaint`, compiled once per model and settings (shared with hole_filling).
outpaint_jit = jax.jit(outpaint, static_argnames=("model", "spec", "steps", "sampler", "method",
                                                  "rotate", "resample", "clip_x0",
                                                  "sphere"))


@dataclasses.dataclass
class PanoramaResult:
  """panorama: uint8 [Ho, 2 Ho, 3]; generated: float [Hm, Wm, 3] in [0, 1] (the model's
  own output); keep: bool [Hm, Wm]; window: (top, left, rows, cols) of the pasted photo;
  photo_alpha: [rows, cols] blend weight of the photo there; sample_seconds: wall time of
  the sampler call (its tracing and compilation, or cache load, included)."""
  panorama: np.ndarray
  generated: np.ndarray
  keep: np.ndarray
  window: tuple[int, int, int, int]
  photo_alpha: np.ndarray
  placement: Placement
  sample_seconds: float = 0.0


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
  if not 2 <= out_height <= max_width // 2:  # before any canvas is allocated
    raise PanoramaError(f"out_height must be in [2, {max_width // 2}] (the panorama is "
                        f"2 x as wide, at most max_width={max_width}), got {out_height}")
  known, keep = place_on_grid(photo, placement, (hm, wm))
  if not keep.any():
    raise PanoramaError(f"the photo covers no whole pixel of the model's {hm}x{wm} panorama "
                        f"(field of view {placement.hfov_deg:g} degrees is too narrow for it)")
  started = time.perf_counter()
  out = outpaint_jit(pm.params, key, jnp.asarray(known * 2 - 1)[None],
                  jnp.asarray(keep, jnp.float32)[None, ..., None], model=pm.model,
                  spec=pm.spec, steps=steps, sampler=sampler, rotate=rotate)
  generated = np.clip((np.asarray(out[0]) + 1) / 2, 0, 1)    # waits for the sampler
  seconds = time.perf_counter() - started
  pano, window, alpha = compose(generated, photo, placement, out_height, feather=feather)
  return PanoramaResult(pano, generated, keep, window, alpha, placement, seconds)
