"""Model-based hole filling: the disocclusions of a stereo warp (genjax.apps.vr.stereo)
inpainted by a panorama run's sampler, in model-sized windows at (nearly) the photo's
resolution.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from genjax.apps.vr.outpainting import PanoramaModel, outpaint_jit, repaint_sampler
from genjax.apps.vr.photo_placement import shrink, to_float


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
    steps, sampler: RePaint's; a multistep sampler is replaced by ddpm (repaint_sampler).
    batch: windows per compiled sampler call.
  Returns: float32 [H, W, 3] in [0, 1].
  """
  img = to_float(image)
  holes = np.asarray(holes, bool)
  if holes.shape != img.shape[:2]:
    raise ValueError(f"holes {holes.shape} must match the image {img.shape[:2]}")
  if not holes.any():
    return img
  hm, wm = pm.image_hw
  factor = max(1, math.ceil(4 * _max_run(holes) / wm))
  small, small_holes = img, holes
  if factor > 1:
    small = shrink(img, 1 / factor)
    small_holes = shrink(holes[..., None].astype(np.float32), 1 / factor)[..., 0] > 0
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
    out = outpaint_jit(pm.params, jax.random.fold_in(key, start), jnp.asarray(crops * 2 - 1),
                    jnp.asarray(keep), model=pm.model, spec=pm.spec, steps=steps,
                    sampler=repaint_sampler(sampler), method="repaint", rotate=False,
                    resample=resample, sphere=False)
    out = np.clip((np.asarray(out) + 1) / 2, 0, 1)
    for n, (i, j) in enumerate(used[start:start + batch]):
      sel = (wr == i) & (wc == j)
      filled[r[sel], c[sel]] = out[n, r[sel] - rows[i], c[sel] - cols[j]]
  filled = filled[:h, :w]
  if factor > 1:
    filled = np.stack([np.asarray(Image.fromarray(filled[..., k]).resize(
        (img.shape[1], img.shape[0]), Image.Resampling.BICUBIC)) for k in range(3)], -1)
  return np.where(holes[..., None], np.clip(filled, 0, 1), img).astype(np.float32)
