"""Resize, crop and flip, on uint8 [H, W, 3] arrays; randomness from a numpy Generator."""

import numpy as np
from PIL import Image


def resize_to_cover(img: np.ndarray, height: int, width: int) -> np.ndarray:
  """Scales so the image covers (height, width), keeping its aspect (antialiased)."""
  h, w = img.shape[:2]
  scale = max(height / h, width / w)
  size = (max(width, round(w * scale)), max(height, round(h * scale)))
  if size == (w, h):
    return img
  return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0))


def crop(img: np.ndarray, height: int, width: int, rng: np.random.Generator | None) -> np.ndarray:
  """Center crop (rng None) or uniformly random crop to (height, width)."""
  h, w = img.shape[:2]
  if rng is None:
    top, left = (h - height) // 2, (w - width) // 2
  else:
    top, left = int(rng.integers(0, h - height + 1)), int(rng.integers(0, w - width + 1))
  return img[top:top + height, left:left + width]


def to_model_range(img: np.ndarray) -> np.ndarray:
  """uint8 [H, W, 3] -> float32 in [-1, 1]."""
  return img.astype(np.float32) / 127.5 - 1.0


def prepare(img: np.ndarray, *, size: tuple[int, int], random_crop: bool, random_flip: bool,
            rng: np.random.Generator) -> np.ndarray:
  """uint8 [h, w, 3] -> float32 [H, W, 3] in [-1, 1]: cover-resize, crop, maybe flip."""
  height, width = size
  img = crop(resize_to_cover(img, height, width), height, width, rng if random_crop else None)
  if random_flip and rng.random() < 0.5:
    img = img[:, ::-1]
  return to_model_range(np.ascontiguousarray(img))
