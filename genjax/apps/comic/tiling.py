"""Rendering images of any size in tiles with overlap and blended seams, in bounded memory.

Each tile is rendered from a window that adds `halo` pixels of context around its core
(the knobs' receptive field, styles.Knobs.halo, plus the blend width), so the core comes
out as it would from the whole image (up to float rounding). Neighbouring tiles also
render `blend` pixels past their cores and are cross-faded there with linear weights
that sum to one, which hides any remaining difference (from a halo set too small by
hand, say). Screentones stay in phase because each tile passes its canvas origin, and
the comic palette is fitted once on the whole image (render.fit_palette).

All windows of one image have the same shape (windows at the borders are shifted
inwards rather than cut), so the renderer compiles once per image size.
"""

import dataclasses
import math

import jax
import numpy as np

from genjax.apps.comic import render as render_lib

# Device bytes per window pixel of the compiled renderer: temp + argument + output sizes
# from compiled.memory_analysis() on CPU are about 100 (comic, 8 colours) and 70-80
# (manga) at 256 x 256 and above, 128 at 128 x 96 (fixed costs weigh more); the bound is
# checked by tests/apps/comic/test_tiling.py.
BYTES_PER_PIXEL = 160


@dataclasses.dataclass(frozen=True)
class Span:
  """One tile along one axis: core [core_lo, core_hi), window [win_lo, win_hi), weights."""
  core_lo: int
  core_hi: int
  win_lo: int
  win_hi: int


def spans(n: int, core: int, halo: int) -> list[Span]:
  """Tiles covering [0, n) with cores of `core` pixels and windows of core + 2 halo (<= n)."""
  if core < 1 or halo < 0:
    raise ValueError(f"tile core must be >= 1 and halo >= 0, got core={core}, halo={halo}")
  win = min(core + 2 * halo, n)
  out = []
  for lo in range(0, n, core):
    start = min(max(lo - halo, 0), n - win)
    out.append(Span(lo, min(lo + core, n), start, start + win))
  return out


def _weights(span: Span, n: int, blend: int) -> tuple[int, int, np.ndarray]:
  """Cross-fade weights of a span over [lo, hi) (core plus blend, inside its window).

  Linear ramps of width 2 blend centred on the core edges: where two neighbours
  overlap, their weights sum to 1. Edges at the image border get no ramp.
  """
  lo = span.core_lo if span.core_lo == 0 else max(span.core_lo - blend, span.win_lo)
  hi = span.core_hi if span.core_hi == n else min(span.core_hi + blend, span.win_hi)
  x = np.arange(lo, hi, dtype=np.float64) + 0.5
  w = np.ones_like(x)
  if blend > 0:
    if span.core_lo > 0:
      w = np.minimum(w, (x - (span.core_lo - blend)) / (2 * blend))
    if span.core_hi < n:
      w = np.minimum(w, ((span.core_hi + blend) - x) / (2 * blend))
  return lo, hi, np.clip(w, 0.0, 1.0).astype(np.float32)


def tile_core(halo: int, *, memory_mb: float, bytes_per_pixel: int = BYTES_PER_PIXEL) -> int:
  """Largest core size whose square window (core + 2 halo)^2 fits in memory_mb."""
  side = int(math.sqrt(memory_mb * 2**20 / bytes_per_pixel))
  if side <= 2 * halo:
    raise ValueError(f"memory budget {memory_mb} MiB allows windows of {side} px, no larger than "
                     f"the {2 * halo} px of context the knobs need; raise the budget")
  return side - 2 * halo


def render_tiled(image: np.ndarray, style: str = "comic", knobs=None, *, tile: int,
                 blend: int = 8, key: jax.Array | None = None, palette=None,
                 progress=None) -> render_lib.Rendering:
  """Renders one image tile by tile.

  Host memory is the uint8 or float input plus 24 bytes per pixel of float32 sums (the
  layers and their weight) and the composed image; device memory is one window.

  Args:
    image: [H, W, 3] uint8, or float sRGB in [0, 1] (NumPy; stays on the host).
    style, knobs, key: as render.render.
    tile: core size of a tile in pixels (each window adds halo + blend on each side).
    blend: cross-fade width in pixels on each side of a seam.
    palette: [1, K, 3] comic palette; None = render.fit_palette of the whole image.
    progress: optional callable(n) called after each tile (e.g. a tqdm's update).
  Returns:
    Rendering(image [H, W, 3], layers {"ink": [H, W, 1], "flat": [H, W, 3],
    "tone": [H, W, 1]}), NumPy float32 in [0, 1].
  """
  image = np.asarray(image)
  if image.ndim != 3 or image.shape[-1] != 3:
    raise ValueError(f"render_tiled expects one image [H, W, 3], got shape {image.shape}")
  # uint8 stays uint8 on the host (a quarter of float32); windows are converted one by one.
  scale = 1.0 / 255.0 if image.dtype == np.uint8 else 1.0
  knobs = render_lib.make_knobs(style, knobs)
  h, w, _ = image.shape
  if palette is None:
    palette = render_lib.fit_palette(image[None].astype(np.float32) * scale, style, knobs,
                                     key=key)
  halo = knobs.halo() + blend
  acc = {"ink": np.zeros((h, w, 1), np.float32), "flat": np.zeros((h, w, 3), np.float32),
         "tone": np.zeros((h, w, 1), np.float32)}
  total = np.zeros((h, w, 1), np.float32)
  rows, cols = spans(h, tile, halo), spans(w, tile, halo)
  for r in rows:
    r_lo, r_hi, r_w = _weights(r, h, blend)
    for c in cols:
      c_lo, c_hi, c_w = _weights(c, w, blend)
      window = image[None, r.win_lo:r.win_hi, c.win_lo:c.win_hi].astype(np.float32) * scale
      layers = render_lib.render_layers(window, style, knobs, palette=palette,
                                        origin=(float(r.win_lo), float(c.win_lo)))
      weight = (r_w[:, None] * c_w[None, :])[..., None]
      for name, value in layers.items():
        part = np.asarray(value[0, r_lo - r.win_lo:r_hi - r.win_lo,
                                c_lo - c.win_lo:c_hi - c.win_lo])
        acc[name][r_lo:r_hi, c_lo:c_hi] += weight * part
      total[r_lo:r_hi, c_lo:c_hi] += weight
      if progress is not None:
        progress(1)
  for v in acc.values():
    v /= total  # in place: no second canvas-sized copy
  return render_lib.Rendering(render_lib.compose(acc), acc)


def num_tiles(shape: tuple[int, int], tile: int, halo: int) -> int:
  return len(spans(shape[0], tile, halo)) * len(spans(shape[1], tile, halo))
