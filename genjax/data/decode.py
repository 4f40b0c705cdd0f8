"""Image files -> uint8 RGB arrays with Pillow, every common mode converted correctly."""

import pathlib
import warnings

import numpy as np
from PIL import Image, ImageOps


class ImageDecodeError(ValueError):
  """A file that cannot be used as an image; the message names the file and the reason."""

  def __init__(self, path, reason: str):
    super().__init__(f"{path}: {reason}")
    self.path, self.reason = str(path), reason


def check_header(path, *, max_pixels: int) -> tuple[int, int]:
  """Opens the header only; returns (width, height) or raises ImageDecodeError."""
  path = pathlib.Path(path)
  try:
    if path.stat().st_size == 0:
      raise ImageDecodeError(path, "empty file (0 bytes)")
    with warnings.catch_warnings():
      warnings.simplefilter("error", Image.DecompressionBombWarning)
      with Image.open(path) as im:
        w, h = im.size
  except ImageDecodeError:
    raise
  except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
    raise ImageDecodeError(path, f"refused as a decompression bomb ({e})") from None
  except Exception as e:  # Pillow raises many types for bad files  # noqa: BLE001
    raise ImageDecodeError(path, f"not a readable image ({type(e).__name__}: {e})") from None
  if w * h > max_pixels:
    raise ImageDecodeError(path, f"refused as a decompression bomb: {w}x{h} = {w * h} pixels "
                                 f"> data.max_image_pixels = {max_pixels}")
  return w, h


def _to_rgb(im: Image.Image) -> np.ndarray:
  """Any Pillow mode -> uint8 [H, W, 3]. Transparency is composited over white."""
  mode = im.mode
  if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
    # 16-bit grayscale: scale the full 0..65535 range to 0..255 (not clip it).
    a = np.asarray(im, dtype=np.float64)
    a = np.clip(a, 0, 65535) / 257.0
    g = np.round(a).astype(np.uint8)
    return np.repeat(g[:, :, None], 3, axis=2)
  if mode == "F":
    a = np.asarray(im, dtype=np.float64)
    a = a * 255.0 if a.max(initial=0.0) <= 1.0 else a
    g = np.round(np.clip(a, 0, 255)).astype(np.uint8)
    return np.repeat(g[:, :, None], 3, axis=2)
  if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in im.info):
    rgba = im.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
  return np.asarray(im.convert("RGB"))  # L, 1, P, CMYK (Pillow inverts Adobe CMYK), YCbCr, ...


def load_rgb(path, *, max_pixels: int) -> np.ndarray:
  """uint8 [H, W, 3] with the EXIF orientation applied; ImageDecodeError for a bad file."""
  check_header(path, max_pixels=max_pixels)
  try:
    with Image.open(path) as im:
      im.load()
      im = ImageOps.exif_transpose(im)
      return np.ascontiguousarray(_to_rgb(im))
  except Exception as e:  # noqa: BLE001
    raise ImageDecodeError(path, f"cannot be decoded ({type(e).__name__}: {e})") from None
