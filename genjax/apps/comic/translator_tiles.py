"""Translating one photo of any size in aligned tiles whose cores are exact crops.

The generator has no statistic over pixels (see translator_net), so a window whose offset
is a multiple of the config's align(), with a halo of receptive_radius() pixels, gives
exactly the crop of the whole result: no overlap blending, unlike the procedural
renderer's tiling.py.
"""

import math

import numpy as np

from genjax.apps.comic import render as render_lib
from genjax.apps.comic.translator import Translator, TranslatorError, translate_layers

# Device bytes per window pixel of a translate call on CPU (compiled.memory_analysis():
# arguments + outputs + temporaries, benchmarks/comic.py: ~93 for channels (16, 32) at
# 512 x 512 and 1024 x 768), with headroom for wider models.
BYTES_PER_PIXEL = 256


def tile_spans(n: int, core: int, halo: int) -> list[tuple[int, int, int, int]]:
  """(core_lo, core_hi, win_lo, win_hi) covering [0, n); all windows of one size.

  core and halo must be multiples of the translator's align(), and n too (pad first):
  then every window starts on the coarsest grid and its core is an exact crop.
  """
  win = min(core + 2 * halo, n)
  return [(lo, min(lo + core, n), min(max(lo - halo, 0), n - win),
           min(max(lo - halo, 0), n - win) + win) for lo in range(0, n, core)]


def translate_photo(translator: Translator, photo: np.ndarray, knobs=None, *,
                    tile: int | None = None, memory_mb: float = 1024.0,
                    progress=None) -> render_lib.Rendering:
  """One photo (uint8 or float [H, W, 3], NumPy) -> Rendering of NumPy float32 arrays.

  Whole when it fits memory_mb and tile is None; otherwise in aligned windows with a
  halo of receptive_radius() pixels, whose cores are exact crops of the whole result
  (no seams, no blending). Device memory is one window; host memory the uint8 photo
  plus the float32 layers.
  """
  photo = np.asarray(photo)
  if photo.ndim != 3 or photo.shape[-1] != 3:
    raise TranslatorError(f"translate_photo expects one image [H, W, 3], got {photo.shape}")
  scale = 1.0 / 255.0 if photo.dtype == np.uint8 else 1.0
  cfg = translator.config
  h, w, _ = photo.shape
  if tile is None and h * w * BYTES_PER_PIXEL <= memory_mb * 2**20:
    layers = translate_layers(translator, photo[None].astype(np.float32) * scale, knobs)
    layers = {k: np.asarray(v[0]) for k, v in layers.items()}
    return render_lib.Rendering(render_lib.compose(layers), layers)
  a = cfg.align()
  halo = -(-cfg.receptive_radius() // a) * a
  if tile is None:
    side = int(math.sqrt(memory_mb * 2**20 / BYTES_PER_PIXEL))
    tile = side - 2 * halo
    if tile < a:
      raise TranslatorError(f"memory budget {memory_mb} MiB is too small for the translator's "
                            f"{2 * halo} px of context; raise it")
  core = max(a, tile // a * a)
  # Pad the canvas to the grid as translate does for a whole image, so windows agree.
  hp, wp = -(-h // a) * a, -(-w // a) * a
  canvas = np.pad(photo, ((0, hp - h), (0, wp - w), (0, 0)), mode="edge")
  acc = {"ink": np.zeros((h, w, 1), np.float32), "flat": np.zeros((h, w, 3), np.float32),
         "tone": np.zeros((h, w, 1), np.float32)}
  for r_lo, r_hi, rw_lo, rw_hi in tile_spans(hp, core, halo):
    for c_lo, c_hi, cw_lo, cw_hi in tile_spans(wp, core, halo):
      window = canvas[None, rw_lo:rw_hi, cw_lo:cw_hi].astype(np.float32) * scale
      layers = translate_layers(translator, window, knobs, origin=(float(rw_lo), float(cw_lo)))
      r_hi_c, c_hi_c = min(r_hi, h), min(c_hi, w)
      for name, value in layers.items():
        acc[name][r_lo:r_hi_c, c_lo:c_hi_c] = np.asarray(
            value[0, r_lo - rw_lo:r_hi_c - rw_lo, c_lo - cw_lo:c_hi_c - cw_lo])
      if progress is not None:
        progress(1)
  return render_lib.Rendering(render_lib.compose(acc), acc)
