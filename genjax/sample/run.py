"""`genjax sample`: images from a trained run into a folder (PNGs and a grid)."""

import logging
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import tqdm
from PIL import Image, ImageOps

from genjax import files
from genjax.image import io as image_io
from genjax.sample.load import load_run, sampling_defaults
from genjax.sample.sampler import (check_sampler_options, make_img2img, make_inpainter,
                                   make_sampler, per_sample_keys)

logger = logging.getLogger(__name__)


def _crop_box(src_wh: tuple[int, int], dst_hw: tuple[int, int]) -> tuple[int, int, int, int]:
  """(left, top, right, bottom): the largest centred crop of src with dst's aspect ratio."""
  w, h = src_wh
  th, tw = dst_hw
  cw, ch = (w, round(w * th / tw)) if h * tw > w * th else (round(h * tw / th), h)
  cw, ch = max(1, min(w, cw)), max(1, min(h, ch))
  left, top = (w - cw) // 2, (h - ch) // 2
  return left, top, left + cw, top + ch


def _fit(im: Image.Image, hw: tuple[int, int], resample) -> Image.Image:
  """im centre-cropped to hw's aspect ratio and resized to hw (a no-op at that size)."""
  if im.size == (hw[1], hw[0]):
    return im
  return im.resize((hw[1], hw[0]), resample, box=_crop_box(im.size, hw))


def _open_image(path: pathlib.Path, what: str) -> Image.Image:
  """Image.open with errors that name the file (Pillow's often do not)."""
  if not path.is_file():
    raise FileNotFoundError(f"{what} {path}: no such file")
  try:
    return Image.open(path)
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
    raise ValueError(f"{what} {path} is not a readable image ({e})") from None


def _decoded(path: pathlib.Path, what: str, decode):
  """decode() (which reads the pixels), with a truncated or corrupt file named."""
  try:
    return decode()
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
    raise ValueError(f"{what} {path} is not a readable image ({e})") from None


def _read_rgb(path, what: str, hw: tuple[int, int]) -> np.ndarray:
  """float32 [h, w, 3] in [-1, 1] from an RGB image file (EXIF orientation applied), fitted to
  the model's (h, w) as `_fit` does; other modes are an error."""
  path = pathlib.Path(path)
  with _open_image(path, what) as im:
    if im.mode != "RGB":
      raise ValueError(f"{what} {path} is mode {im.mode}, not RGB; convert it first "
                       f"(e.g. PIL: im.convert('RGB'))")
    im = _decoded(path, what, lambda: ImageOps.exif_transpose(im))
    fitted = _fit(im, hw, Image.Resampling.LANCZOS)
    size = im.size
  if size != (hw[1], hw[0]):
    left, top, right, bottom = _crop_box(size, hw)
    crop = "" if (right - left, bottom - top) == size else (
        f"centre-cropped to {right - left}x{bottom - top}, ")
    logger.warning("%s %s is %dx%d; %sresized to the model's %dx%d (width x height)", what,
                   path, *size, crop, hw[1], hw[0])
  return np.asarray(fitted, np.float32) / 127.5 - 1.0


def _read_mask(path, init_path, hw: tuple[int, int]) -> np.ndarray:
  """float32 [h, w, 1], 1 = keep (white), from any image mode: the same size as the --init
  image, fitted to the model's (h, w) exactly as it is (nearest neighbour)."""
  path = pathlib.Path(path)
  with _open_image(pathlib.Path(init_path), "--init image") as init:
    init_size = ImageOps.exif_transpose(init).size
  with _open_image(path, "--mask") as im:
    if im.size != init_size:
      raise ValueError(f"mask {path} is {im.size[0]}x{im.size[1]}, the image is "
                       f"{init_size[0]}x{init_size[1]}: they must be the same size")
    fitted = _fit(_decoded(path, "--mask", lambda: im.convert("L")), hw,
                  Image.Resampling.NEAREST)
  return (np.asarray(fitted, np.float32) >= 128).astype(np.float32)[..., None]


def sample_to_folder(workdir, out_dir, *, n: int = 16, batch_size: int = 16,
                     sampler: str | None = None, steps: int | None = None, guidance: float = 1.0,
                     label: int | None = None, seed: int = 0, init=None, strength: float = 0.6,
                     mask=None, resample: int = 4, progress: bool = True,
                     sampler_options: dict | None = None) -> list[pathlib.Path]:
  """Writes n images (sample_00000.png, ...) and grid.png into out_dir; returns the paths.

  init: img2img from this RGB image at `strength`; with `mask` (white = keep, the init's
  size) inpaint it instead. An init of another size than the model's is centre-cropped to
  the model's aspect ratio and resized to its resolution (logged), the mask alike; the
  images come out at the model's resolution. batch_size is capped at n. Sample i comes
  from fold_in(PRNGKey(seed), i) whatever the batch size.
  sampler: default dpm++2m, ddim for img2img, ddpm for RePaint inpainting (a multistep
  solver does not survive RePaint's re-noising); steps: default 25. A distilled student
  (config.distill.steps > 0) defaults to its own steps, and its sampler when sampling
  (sampling_defaults). sampler_options: keyword options of the sampler (e.g. {"order": 3}
  for unipc; genjax.sample.sampler.parse_sampler_options reads them from KEY=VALUE strings).
  """
  if n < 1 or batch_size < 1:
    raise ValueError(f"--n and --batch must be >= 1, got {n} and {batch_size}")
  batch_size = min(batch_size, n)  # never sample more than asked for
  if mask is not None and init is None:
    raise ValueError("--mask needs --init (the image to inpaint)")
  out_dir = files.check_can_create(out_dir, "-o", folder=True)
  config, model, spec, params = load_run(workdir)
  student_sampler, default_steps = sampling_defaults(config, sampler=None, steps=25)
  steps = default_steps if steps is None else steps
  # Editing keeps its own samplers (ddim; RePaint's ddpm), sampling a student's its own.
  if init is None:
    sampler = sampler or student_sampler or "dpm++2m"
  else:
    sampler = sampler or ("ddim" if mask is None else "ddpm")
  options = check_sampler_options(sampler, sampler_options or {}, spec)  # before any work
  if label is not None and not 0 <= label < config.model.num_classes:
    raise ValueError(f"--class {label} is out of range: the model has "
                     f"{config.model.num_classes} classes")
  labels = None if label is None else jnp.full((batch_size,), label, jnp.int32)
  h, w = config.data.image_size
  root = jax.random.PRNGKey(seed)

  if init is None:
    fn = make_sampler(model, spec, image_shape=(h, w), sampler=sampler, steps=steps,
                      guidance=guidance, clip_x0=1.0, **options)
    run = jax.jit(lambda p, keys: fn(p, keys, batch_size, labels=labels))
  else:
    known = jnp.asarray(_read_rgb(init, "--init image", (h, w)))[None]
    known = jnp.broadcast_to(known, (batch_size, *known.shape[1:]))
    if mask is None:
      fn = make_img2img(model, spec, strength=strength, sampler=sampler, steps=steps,
                        guidance=guidance, clip_x0=1.0, **options)
      run = jax.jit(lambda p, keys: fn(p, keys, known, labels=labels))
    else:
      keep = jnp.asarray(_read_mask(mask, init, (h, w)))[None]
      keep = jnp.broadcast_to(keep, (batch_size, *keep.shape[1:]))
      fn = make_inpainter(model, spec, steps=steps, resample=resample, sampler=sampler,
                          guidance=guidance, clip_x0=1.0, **options)
      run = jax.jit(lambda p, keys: fn(p, keys, known, keep, labels=labels))

  images, paths = [], []
  for start in tqdm.trange(0, n, batch_size, desc="sample", unit="batch", disable=not progress):
    # Always a full batch (one compiled program); the keys past n are simply unused.
    batch = np.asarray(run(params, per_sample_keys(root, start, batch_size)))
    for i, img in enumerate(batch[:n - start]):
      path = out_dir / f"sample_{start + i:05d}.png"
      image_io.save_png(path, (img + 1.0) / 2.0)
      paths.append(path)
      images.append(img)
  image_io.save_grid(out_dir / "grid.png", np.stack(images), value_range=(-1.0, 1.0))
  return paths


def sample_images(workdir, *, n: int, batch_size: int = 64, sampler: str | None = None,
                  steps: int | None = None, seed: int = 0, progress: bool = True) -> np.ndarray:
  """n unconditional (or class-cycling) samples of a run: [n, H, W, 3] float32 in [-1, 1].

  sampler, steps: default dpm++2m at 25 steps, a distilled student's own. Sample i comes
  from fold_in(PRNGKey(seed), i), as in sample_to_folder."""
  if n < 1 or batch_size < 1:
    raise ValueError(f"n and batch_size must be >= 1, got {n} and {batch_size}")
  batch_size = min(batch_size, n)
  config, model, spec, params = load_run(workdir)
  default_sampler, default_steps = sampling_defaults(config, sampler="dpm++2m", steps=25)
  sampler = sampler or default_sampler
  steps = default_steps if steps is None else steps
  fn = make_sampler(model, spec, image_shape=tuple(config.data.image_size), sampler=sampler,
                    steps=steps, clip_x0=1.0)
  num_classes = config.model.num_classes
  labels = jnp.arange(batch_size) % num_classes if num_classes else None
  run = jax.jit(lambda p, keys: fn(p, keys, batch_size, labels=labels))
  root = jax.random.PRNGKey(seed)
  out = [np.asarray(run(params, per_sample_keys(root, start, batch_size)))
         for start in tqdm.trange(0, n, batch_size, desc="sample", unit="batch",
                                  disable=not progress)]
  return np.concatenate(out)[:n]
