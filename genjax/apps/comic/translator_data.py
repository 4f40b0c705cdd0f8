"""Training data of the comic translator: photo pools, random crops and knobs, held-out photos.

Pools are uint8 [N, h, w, 3] NumPy arrays built once on the host (procedural landscapes,
scikit-image photos, image folders); sample_crops and sample_knobs draw a batch from
them inside the jitted train step.
"""

import dataclasses
import logging

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from genjax.apps.comic import translator as tr
from genjax.apps.comic.examples import procedural_photo
from genjax.data.decode import ImageDecodeError, load_rgb
from genjax.data.folder import scan_folder
from genjax.image.box_filter import per_image

log = logging.getLogger("genjax.comic")

HELDOUT_OFFSET = 1_000_000  # held-out procedural photos: indices from here on

# PRNG of training: XLA:CPU compiles threefry's unrolled rounds slowly (the generator's
# init: 5.6 s with threefry, 0.7 s with rbg); batches need no cross-version stability.
RNG_IMPL = "rbg"


def make_key(seed: int) -> jax.Array:
  """The translator's training key (RNG_IMPL) for `seed`."""
  return jax.random.key(seed, impl=RNG_IMPL)


def sample_crops(key: jax.Array, pool: jax.Array, batch: int, crop: int) -> jax.Array:
  """Random crops, randomly flipped: uint8 pool [N, H, W, 3] -> float32 [B, c, c, 3] in [0, 1]."""
  n, h, w, _ = pool.shape
  k_idx, k_y, k_x, k_flip = jax.random.split(key, 4)
  idx = jax.random.randint(k_idx, (batch,), 0, n)
  ys = jax.random.randint(k_y, (batch,), 0, h - crop + 1)
  xs = jax.random.randint(k_x, (batch,), 0, w - crop + 1)
  crops = jax.vmap(lambda i, y, x: jax.lax.dynamic_slice(
      pool, (i, y, x, 0), (1, crop, crop, 3))[0])(idx, ys, xs)
  flip = jax.random.bernoulli(k_flip, 0.5, (batch,))[:, None, None, None]
  return jnp.where(flip, crops[:, :, ::-1], crops).astype(jnp.float32) / 255.0


def sample_knobs(key: jax.Array, config: tr.TranslatorConfig, batch: int):
  """The style's knobs, every runtime one [B], each conditioned one uniform in its range.

  tone_levels is drawn uniformly among the integers of its range.
  """
  base = config.default_knobs()
  values = {}
  for i, (name, (lo, hi)) in enumerate(zip(config.cond_knobs, config.knob_ranges)):
    k = jax.random.fold_in(key, i)
    if name == "tone_levels":
      v = jnp.round(jax.random.uniform(k, (batch,), minval=lo - 0.5, maxval=hi + 0.5))
      values[name] = jnp.clip(v, lo, hi)
    else:
      values[name] = jax.random.uniform(k, (batch,), minval=lo, maxval=hi)
  # Every runtime knob as a [B] array, as the styles' layer functions expect.
  return jax.tree.map(lambda v: per_image(v, batch), dataclasses.replace(base, **values))


def _cover(photo: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """Resize (Pillow, antialiased) so it covers size, then centre-crop: uint8 [h, w, 3]."""
  h, w = size
  ph, pw = photo.shape[:2]
  s = max(h / ph, w / pw)
  nh, nw = max(h, round(ph * s)), max(w, round(pw * s))
  im = Image.fromarray(photo).resize((nw, nh), Image.Resampling.LANCZOS)
  top, left = (nh - h) // 2, (nw - w) // 2
  return np.asarray(im)[top:top + h, left:left + w]


def folder_pool(folder, size, *, max_images: int, max_pixels: int) -> np.ndarray:
  """uint8 [N, h, w, 3] of up to max_images images of a folder (recursive, sorted)."""
  index = scan_folder(folder, class_labels=False, max_pixels=max_pixels, validate="header")
  out = []
  for path in index.files[:max_images]:
    try:
      out.append(_cover(load_rgb(path, max_pixels=max_pixels), size))
    except ImageDecodeError as e:
      log.warning("skipping %s", e)
  if not out:
    raise ValueError(f"image folder {folder} holds no decodable image")
  return np.stack(out)


def procedural_pool(indices, size) -> np.ndarray:
  h, w = size
  return np.stack([procedural_photo(int(i), height=h, width=w) for i in indices])


def skimage_photo(name: str) -> np.ndarray:
  """uint8 [H, W, 3] of a photo bundled with scikit-image (grey ones stacked to RGB)."""
  from genjax.apps.comic import examples
  if not examples.have_skimage():
    raise ValueError("scikit-image photos need scikit-image (pip install "
                     "genjax-engine[examples])")
  import skimage.data
  if not hasattr(skimage.data, name):
    raise ValueError(f"scikit-image has no sample image {name!r}")
  a = np.asarray(getattr(skimage.data, name)())
  if a.dtype != np.uint8 or a.ndim not in (2, 3):
    raise ValueError(f"scikit-image sample {name!r} is not a uint8 photo ({a.dtype}, {a.shape})")
  return np.repeat(a[..., None], 3, axis=-1) if a.ndim == 2 else a[..., :3]


def skimage_pool(names, size) -> np.ndarray:
  """Non-overlapping size tiles of scikit-image photos at their own resolution.

  Tiles rather than resized photos: lines and textures keep the scale of real photos.
  """
  h, w = size
  tiles = []
  for name in names:
    photo = skimage_photo(name)
    if photo.shape[0] < h or photo.shape[1] < w:
      photo = _cover(photo, (max(h, photo.shape[0]), max(w, photo.shape[1])))
    for top in range(0, photo.shape[0] - h + 1, h):
      for left in range(0, photo.shape[1] - w + 1, w):
        tiles.append(photo[top:top + h, left:left + w])
  return np.stack(tiles)


def photo_pool(config) -> np.ndarray:
  """uint8 [N, h, w, 3] training photos from the comma-separated data.source list."""
  d = config.data
  size = tuple(d.photo_size)
  if d.crop_size > min(size):
    raise ValueError(f"data.crop_size {d.crop_size} is larger than data.photo_size {size}")
  pools = []
  for source in (s.strip() for s in d.source.split(",")):
    if source == "procedural":
      pools.append(procedural_pool(range(d.num_photos), size))
    elif source == "skimage":
      overlap = sorted(set(d.skimage_photos) & set(d.heldout_skimage))
      if overlap:
        raise ValueError(f"data.skimage_photos and data.heldout_skimage share {overlap}")
      pools.append(skimage_pool(d.skimage_photos, size))
    elif source == "folder":
      if not d.path:
        raise ValueError("data.source 'folder' needs data.path")
      pools.append(folder_pool(d.path, size, max_images=d.max_images,
                               max_pixels=d.max_image_pixels))
    else:
      raise ValueError(f"data.source entries must be 'procedural', 'skimage' or 'folder', "
                       f"got {source!r} (in {d.source!r})")
  return np.concatenate(pools)


def heldout_photos(config) -> dict[str, list[np.ndarray]]:
  """Photos never in a training pool, uint8 [H, W, 3], by group.

  "procedural": data.heldout landscapes of data.heldout_size; "skimage": the
  data.heldout_skimage photos at their own size (when scikit-image is installed).
  """
  from genjax.apps.comic import examples
  d = config.data
  out = {}
  if d.heldout:
    out["procedural"] = list(procedural_pool(range(HELDOUT_OFFSET, HELDOUT_OFFSET + d.heldout),
                                             tuple(d.heldout_size)))
  if d.heldout_skimage and examples.have_skimage():
    out["skimage"] = [skimage_photo(name) for name in d.heldout_skimage]
  return out
