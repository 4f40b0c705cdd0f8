"""`genjax sample`: images from a trained run into a folder (PNGs and a grid)."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import tqdm
from PIL import Image

from genjax.image import io as image_io
from genjax.sample.load import load_run
from genjax.sample.sampler import make_img2img, make_inpainter, make_sampler, per_sample_keys


def _read_rgb(path, what: str, size_multiple: int) -> np.ndarray:
  """float32 [H, W, 3] in [-1, 1] from an RGB image file; other modes are an error."""
  path = pathlib.Path(path)
  with Image.open(path) as im:
    if im.mode != "RGB":
      raise ValueError(f"{what} {path} is mode {im.mode}, not RGB; convert it first "
                       f"(e.g. PIL: im.convert('RGB'))")
  img = image_io.load_image(path)
  h, w = img.shape[:2]
  if h % size_multiple or w % size_multiple:
    raise ValueError(f"{what} {path} is {w}x{h}; width and height must be multiples of "
                     f"{size_multiple} for this model")
  return np.asarray(img, np.float32) * 2.0 - 1.0


def _read_mask(path, shape) -> np.ndarray:
  """float32 [H, W, 1], 1 = keep (white), from any image mode; its size must match."""
  path = pathlib.Path(path)
  with Image.open(path) as im:
    if im.size != (shape[1], shape[0]):
      raise ValueError(f"mask {path} is {im.size[0]}x{im.size[1]}, the image is "
                       f"{shape[1]}x{shape[0]}: they must be the same size")
    return (np.asarray(im.convert("L"), np.float32) >= 128).astype(np.float32)[..., None]


def sample_to_folder(workdir, out_dir, *, n: int = 16, batch_size: int = 16,
                     sampler: str | None = None, steps: int = 25, guidance: float = 1.0,
                     label: int | None = None, seed: int = 0, init=None, strength: float = 0.6,
                     mask=None, resample: int = 4, progress: bool = True) -> list[pathlib.Path]:
  """Writes n images (sample_00000.png, ...) and grid.png into out_dir; returns the paths.

  init: img2img from this RGB image at `strength`; with `mask` (white = keep) inpaint
  it instead. Sample i comes from fold_in(PRNGKey(seed), i) whatever the batch size.
  sampler: default dpm++2m, ddim for img2img, ddpm for RePaint inpainting (a multistep
  solver does not survive RePaint's re-noising).
  """
  if n < 1 or batch_size < 1:
    raise ValueError(f"--n and --batch must be >= 1, got {n} and {batch_size}")
  config, model, spec, params = load_run(workdir)
  if label is not None and not 0 <= label < config.model.num_classes:
    raise ValueError(f"--class {label} is out of range: the model has "
                     f"{config.model.num_classes} classes")
  labels = None if label is None else jnp.full((batch_size,), label, jnp.int32)
  h, w = config.data.image_size
  root = jax.random.PRNGKey(seed)

  if init is None:
    fn = make_sampler(model, spec, image_shape=(h, w), sampler=sampler or "dpm++2m", steps=steps,
                      guidance=guidance, clip_x0=1.0)
    run = jax.jit(lambda p, keys: fn(p, keys, batch_size, labels=labels))
  else:
    factor = 2 ** (len(config.model.channel_mult) - 1)
    known = jnp.asarray(_read_rgb(init, "--init image", factor))[None]
    known = jnp.broadcast_to(known, (batch_size, *known.shape[1:]))
    if mask is None:
      fn = make_img2img(model, spec, strength=strength, sampler=sampler or "ddim", steps=steps,
                        guidance=guidance, clip_x0=1.0)
      run = jax.jit(lambda p, keys: fn(p, keys, known, labels=labels))
    else:
      keep = jnp.asarray(_read_mask(mask, known.shape[1:3]))[None]
      keep = jnp.broadcast_to(keep, (batch_size, *keep.shape[1:]))
      fn = make_inpainter(model, spec, steps=steps, resample=resample, sampler=sampler or "ddpm",
                          guidance=guidance, clip_x0=1.0)
      run = jax.jit(lambda p, keys: fn(p, keys, known, keep, labels=labels))

  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
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


def sample_images(workdir, *, n: int, batch_size: int = 64, sampler: str = "dpm++2m",
                  steps: int = 25, seed: int = 0, progress: bool = True) -> np.ndarray:
  """n unconditional (or class-cycling) samples of a run: [n, H, W, 3] float32 in [-1, 1].

  Sample i comes from fold_in(PRNGKey(seed), i), as in sample_to_folder."""
  if n < 1 or batch_size < 1:
    raise ValueError(f"n and batch_size must be >= 1, got {n} and {batch_size}")
  config, model, spec, params = load_run(workdir)
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
