"""Procedural photo -> comic renderer: pure, jitted, batched, deterministic.

  image, layers = render(images, "manga", {"line_weight": 2.0})  # layers: ink, flat, tone
  rgba = layers_rgba(layers)                                    # for editable PNG layers

Layers are black ink with an alpha over a fill, composed with ordinary "normal" alpha
blending, so stacking the tone and ink layers as black RGBA images above the flat fill
in an image editor reproduces the render:

  image = flat * (1 - tone) * (1 - ink)

Styles with colour (comic) take a palette fitted by k-means on a fixed-size thumbnail of
each photo (fit_palette): the colours of a photo do not depend on its resolution, every
tile of a large canvas can share them, and the fit compiles once for all image sizes.

One compiled program per (style, static knobs, batch and image shape): runtime knobs
(line_weight, smoothing, tone_levels, ...), the palette and the origin are traced, so
sweeping them, or giving each image its own value, never recompiles. For tiling a large
canvas (tiling.py), give each tile its canvas `origin` (screentone stays in phase across
tiles) and the palette of the whole image.
"""

import functools
from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from genjax.apps.comic.styles import STYLES, get_style
from genjax.image import quantize
from genjax.image.box_filter import per_image

LAYER_NAMES = ("ink", "flat", "tone")
THUMBNAIL = 64  # the palette is fitted on a THUMBNAIL x THUMBNAIL resize of each photo


class Rendering(NamedTuple):
  image: jax.Array               # [B, H, W, 3] (or [H, W, 3]) float32 in [0, 1]
  layers: dict[str, jax.Array]   # "ink", "flat", "tone", see render_layers


def make_knobs(style: str, knobs=None):
  """The checked knob dataclass of style from None (defaults), a mapping of overrides or itself.

  Raises ValueError for an unknown style (listing the styles), an unknown knob (listing
  the knobs) or a value out of range (naming the knob).
  """
  cls = get_style(style).knobs
  if knobs is None:
    return cls()
  if isinstance(knobs, Mapping):
    return cls.from_mapping(knobs).check()
  if not isinstance(knobs, cls):
    raise TypeError(f"style {style!r} takes {cls.__name__} knobs, got {type(knobs).__name__}")
  return knobs.check()


def _runtime_knobs(knobs, batch: int):
  """Every runtime knob as a float32 [batch] array: one jit signature for all values."""
  return jax.tree.map(lambda v: per_image(v, batch), knobs)


def _check_images(images) -> jax.Array:
  images = jnp.asarray(images, jnp.float32)
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f"comic rendering expects images [B, H, W, 3], got shape {images.shape}")
  return images


def fit_palette(images: jax.Array, style: str = "comic", knobs=None, *,
                key: jax.Array | None = None) -> jax.Array | None:
  """The palette of each photo ([B, n_colors, 3] sRGB), or None if the style has none.

  k-means in OKLab (genjax.image.quantize) on the photo resized to THUMBNAIL x THUMBNAIL
  with antialiasing (aspect ignored: only the colour statistics matter).

  Args:
    images: [B, H, W, 3] float sRGB in [0, 1].
    key: PRNG key of the k-means seeding (default jax.random.key(0)).
  """
  style_def = get_style(style)
  knobs = make_knobs(style, knobs)
  if not style_def.uses_palette:
    return None
  images = _check_images(images)
  key = jax.random.key(0) if key is None else key
  # The resize runs eagerly (cheap per-shape ops), so the jitted k-means sees one shape.
  small = jax.image.resize(jnp.clip(images, 0.0, 1.0),
                           (images.shape[0], THUMBNAIL, THUMBNAIL, 3), "linear", antialias=True)
  return quantize.fit_palette(jnp.clip(small, 0.0, 1.0), knobs.n_colors, key=key,
                              iters=knobs.kmeans_iters, fit_pixels=THUMBNAIL * THUMBNAIL)


@functools.partial(jax.jit, static_argnames=("style",))
def _layers(images, knobs, origin, palette, *, style):
  layers = STYLES[style].layers(jnp.clip(images, 0.0, 1.0), knobs, origin=origin,
                                palette=palette)
  return {name: jnp.clip(layers[name], 0.0, 1.0) for name in LAYER_NAMES}


def render_layers(images: jax.Array, style: str = "comic", knobs=None, *,
                  key: jax.Array | None = None, origin=(0.0, 0.0),
                  palette: jax.Array | None = None) -> dict[str, jax.Array]:
  """Renders the editable layers of a style.

  Args:
    images: [B, H, W, 3] float sRGB in [0, 1] (any H, W).
    style: a name in styles.STYLES ("comic", "manga").
    knobs: None (the style's defaults), a mapping of overrides, or the style's knob
      dataclass; runtime knobs may be scalars or [B] arrays.
    key: PRNG key of the palette fit (default jax.random.key(0)); the same inputs and
      key give the same output.
    origin: (2,) or [B, 2] canvas position (row, col) of each image's top-left pixel.
    palette: [B, n_colors, 3] sRGB palette for a style with colour; None = fit_palette.
  Returns:
    {"ink": [B, H, W, 1] alpha, "flat": [B, H, W, 3] RGB, "tone": [B, H, W, 1] alpha},
    float32 in [0, 1].
  """
  images = _check_images(images)
  b = images.shape[0]
  knobs = make_knobs(style, knobs)
  origin = jnp.asarray(origin, jnp.float32)
  if origin.shape not in ((2,), (b, 2)):
    raise ValueError(f"origin must be (2,) or [{b}, 2], got shape {origin.shape}")
  origin = jnp.broadcast_to(origin, (b, 2))
  if get_style(style).uses_palette:
    if palette is None:
      palette = fit_palette(images, style, knobs, key=key)
    palette = jnp.asarray(palette, jnp.float32)
    if palette.shape != (b, knobs.n_colors, 3):
      raise ValueError(f"palette must be [{b}, {knobs.n_colors}, 3] for style {style!r}, got "
                       f"{palette.shape}")
  elif palette is not None:
    raise ValueError(f"style {style!r} takes no palette")
  return _layers(images, _runtime_knobs(knobs, b), origin, palette, style=style)


def compose(layers: Mapping[str, jax.Array]) -> jax.Array:
  """Layers -> image [..., H, W, 3]: black tone, then black ink, alpha-blended over flat.

  Elementwise, so NumPy layers give a NumPy image (a big canvas stays on the host).
  """
  missing = set(LAYER_NAMES) - set(layers)
  if missing:
    raise ValueError(f"compose needs layers {LAYER_NAMES}, missing {sorted(missing)}")
  return layers["flat"] * (1.0 - layers["tone"]) * (1.0 - layers["ink"])


def render(images: jax.Array, style: str = "comic", knobs=None, *,
           key: jax.Array | None = None, origin=(0.0, 0.0),
           palette: jax.Array | None = None) -> Rendering:
  """Renders photos in a style; returns the image and its editable layers.

  Args:
    images: [B, H, W, 3] or one [H, W, 3] float sRGB in [0, 1].
    style, knobs, key, origin, palette: as render_layers (an unknown style name or knob
      raises ValueError listing the valid ones).
  Returns:
    Rendering(image, layers): image = compose(layers), same rank as images; layers as
    render_layers (without the batch axis for a single [H, W, 3] image).
  """
  single = jnp.ndim(images) == 3
  batch = jnp.asarray(images)[None] if single else images
  if single and palette is not None:
    palette = jnp.asarray(palette)[None]
  layers = render_layers(batch, style, knobs, key=key, origin=origin, palette=palette)
  image = compose(layers)
  if single:
    return Rendering(image[0], {name: v[0] for name, v in layers.items()})
  return Rendering(image, layers)


def layers_rgba(layers: Mapping[str, jax.Array]) -> dict[str, np.ndarray]:
  """Layers -> straight-alpha RGBA float32 arrays [..., H, W, 4] in [0, 1] to save as PNGs.

  ink and tone are black with their alpha; flat is opaque. Stacking tone, then ink, over
  flat with normal blending gives compose(layers).
  """
  out = {}
  for name in ("ink", "tone"):
    alpha = np.asarray(layers[name], np.float32)
    out[name] = np.concatenate([np.zeros(alpha.shape[:-1] + (3,), np.float32), alpha], -1)
  flat = np.asarray(layers["flat"], np.float32)
  out["flat"] = np.concatenate([flat, np.ones(flat.shape[:-1] + (1,), np.float32)], -1)
  return out
