"""Image files: PNG writing (atomic), grids, and loading with the EXIF orientation applied."""

import pathlib

import numpy as np
from PIL import Image, ImageOps

from genjax import files


def _to_uint8(img: np.ndarray, value_range=(0.0, 1.0)) -> np.ndarray:
  lo, hi = value_range
  a = (np.asarray(img, np.float32) - lo) / (hi - lo)
  return np.round(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)


def save_image(path, img, *, value_range=(0.0, 1.0), **save_kwargs) -> pathlib.Path:
  """Writes [H, W, 3] (or [H, W, 4], [H, W, 1]) float in value_range, or uint8, atomically.

  The format follows the file extension (an unknown one is a ValueError). Written through
  genjax.files.atomic_write: a crash or a full disk never leaves a half-written image, and
  the first error is the one raised.
  """
  path = pathlib.Path(path)
  fmt = Image.registered_extensions().get(path.suffix.lower())
  if fmt is None:
    raise ValueError(f"{path}: unknown image format {path.suffix!r}; use .png, .jpg, ...")
  a = np.asarray(img)
  a = a if a.dtype == np.uint8 else _to_uint8(a, value_range)
  if a.ndim == 3 and a.shape[-1] == 1:
    a = a[..., 0]
  im = Image.fromarray(a)
  with files.atomic_write(path, "wb") as f:
    im.save(f, format=fmt, **save_kwargs)
  return path


def save_png(path, img, *, value_range=(0.0, 1.0)) -> pathlib.Path:
  return save_image(path, img, value_range=value_range)


def make_grid(images: np.ndarray, *, nrow: int | None = None, pad: int = 1) -> np.ndarray:
  """[N, H, W, C] -> one [rows (H + pad) + pad, cols (W + pad) + pad, C] image."""
  n, h, w, c = images.shape
  cols = nrow or int(np.ceil(np.sqrt(n)))
  rows = int(np.ceil(n / cols))
  grid = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad, c), images.dtype) * images.max(
      initial=0)
  for i, img in enumerate(images):
    r, col = divmod(i, cols)
    grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + col * (w + pad):
         pad + col * (w + pad) + w] = img
  return grid


def save_grid(path, images, *, value_range=(0.0, 1.0), nrow: int | None = None,
              min_width: int = 256) -> pathlib.Path:
  """Writes images [N, H, W, C] as one PNG grid, upscaled (nearest) to at least min_width."""
  grid = make_grid(_to_uint8(images, value_range), nrow=nrow)
  scale = max(1, int(np.ceil(min_width / grid.shape[1])))
  if scale > 1:
    grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
  return save_image(path, grid)


def load_image(path) -> np.ndarray:
  """float32 [H, W, 3] in [0, 1], RGB, with the EXIF orientation applied."""
  with Image.open(path) as im:
    im = ImageOps.exif_transpose(im)
    return np.asarray(im.convert("RGB"), np.float32) / 255.0


IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"})


def collect_image_files(inputs) -> tuple[list[pathlib.Path], list[tuple[str, str]]]:
  """Files as given, folders expanded to their image files (sorted, hidden ones skipped).

  inputs: one path or a sequence of paths. Returns (files, failures), a failure being
  (path, message) for a missing path or a folder without image files.
  """
  files, failures = [], []
  for item in [inputs] if isinstance(inputs, (str, pathlib.Path)) else inputs:
    p = pathlib.Path(item)
    if p.is_dir():
      found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                     and not f.name.startswith("."))
      if not found:
        failures.append((str(p), f"{p}: folder has no image files "
                                  f"({', '.join(sorted(IMAGE_SUFFIXES))})"))
      files.extend(found)
    elif p.is_file():
      files.append(p)
    else:
      failures.append((str(p), f"{p}: no such file or folder"))
  return files, failures
