"""Comic styles: knob dataclasses and layer functions, registered by name.

A style turns photos into three layers (see render.py for the contract):
  ink   [B, H, W, 1] alpha of black line art,
  tone  [B, H, W, 1] alpha of black screentone,
  flat  [B, H, W, 3] the colour (or black-and-white) fill underneath.

Knobs are frozen dataclasses registered as pytrees: fields marked static (ints that fix
shapes or loop counts, pattern names) are part of the compiled program; every other
field is a runtime value, a scalar or one value per image ([B]), so one compiled
renderer serves all of their values (the neural translator samples them per image).
Lengths are in output pixels: scale them with the image size if you need the same
look at another resolution.
"""

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from genjax.image import color, quantize, screentone
from genjax.image.box_filter import as_bhwc, box_filter, box_sum
from genjax.image.guided_filter import guided_filter
from genjax.image.xdog import gaussian_support, xdog

XDOG_K = 1.6  # outer / inner Gaussian of the ink lines (the XDoG paper's k)


def static(default):
  """A knob fixed at compile time (shapes, loop counts, names)."""
  return dataclasses.field(default=default, metadata={"static": True})


def _check_range(knobs, name: str, lo: float, hi: float) -> None:
  """Raises if a knob value (number or array) is not in [lo, hi]."""
  value = getattr(knobs, name)
  try:
    v = np.asarray(value, np.float64)
  except (TypeError, ValueError):
    raise ValueError(f"{type(knobs).__name__}.{name} must be a number or an array of numbers, "
                     f"got {value!r}") from None
  if not np.all((v >= lo) & (v <= hi)):
    raise ValueError(f"{type(knobs).__name__}.{name} must be in [{lo}, {hi}], got {v}")


class _KnobsMixin:
  """Construction from a mapping or ConfigDict, with errors that list the valid fields."""

  @classmethod
  def from_mapping(cls, overrides: Mapping[str, Any]):
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
      raise ValueError(f"unknown {cls.__name__} knob(s) {unknown}; valid knobs: {names}")
    return cls(**dict(overrides))

  @classmethod
  def from_config(cls, config):
    """From an ml_collections.ConfigDict (or any mapping) of overrides."""
    return cls.from_mapping(config.to_dict() if hasattr(config, "to_dict") else config)

  def static_fields(self) -> dict[str, Any]:
    return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
            if f.metadata.get("static")}

  def halo(self) -> int:
    """Pixels of context each output pixel depends on (over every image's knob values).

    Guided filter 2 r (two box filters), then the larger of the cleanup window and the
    outer XDoG Gaussian support. A tile rendered with this margin around its core gives
    the same core as the whole image (up to float rounding).
    """
    r = math.ceil(float(np.max(np.asarray(self.smoothing) * np.asarray(self.smooth_radius))))
    cleanup = math.ceil(float(np.max(self.cleanup_radius)))
    return 2 * (r + 1) + max(cleanup + 1, gaussian_support(XDOG_K * self.max_line_weight))

  def check(self):
    """Raises ValueError naming the knob if a runtime value is out of range; returns self.

    Called by the renderer before tracing (not in __post_init__: jax rebuilds the
    dataclass from tracers inside jit, where values cannot be inspected).
    """
    for name, lo, hi in self._RANGES + _COMMON_RANGES + (("line_weight", 1e-3,
                                                            self.max_line_weight),):
      _check_range(self, name, lo, hi)
    return self


_COMMON_RANGES = (("smoothing", 0.0, 1.0), ("smooth_radius", 0.0, 1e4), ("smooth_eps", 0.0, 1e4),
                  ("line_threshold", 0.0, 1.0), ("line_sharpness", 0.0, 1e6))


def edge_preserving_smooth(images, knobs):
  """Guided filter with the image as its own guide; strength from knobs.smoothing in [0, 1]."""
  s = jnp.clip(knobs.smoothing, 0.0, 1.0)
  radius = jnp.round(s * knobs.smooth_radius).astype(jnp.int32)
  return guided_filter(images, images, radius, jnp.maximum(s * s * knobs.smooth_eps, 1e-6))


def _ink(grey, knobs):
  """Edge-only XDoG ink alpha [B, H, W, 1]: lines where the DoG falls below -line_threshold."""
  p = 20.0  # fixed: with tone=0, S - eps = p (DoG + line_threshold) (see xdog.py)
  paper = xdog(grey, knobs.line_weight, k=XDOG_K, p=p, epsilon=1.0 - p * knobs.line_threshold,
               phi=knobs.line_sharpness / p, tone=0.0, max_sigma=knobs.max_line_weight)
  return 1.0 - paper


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ComicKnobs(_KnobsMixin):
  """Knobs of the `comic` style: smoothed, quantized flat colour with black ink lines.

  Runtime (scalar or [B]):
    smoothing: 0..1, edge-preserving smoothing strength; 0 = none. The guided filter
      radius is round(smoothing * smooth_radius) px and its eps smoothing^2 * smooth_eps.
    smooth_radius: guided filter radius in px at smoothing = 1.
    smooth_eps: guided filter eps (a variance of [0, 1] values) at smoothing = 1.
    line_weight: XDoG inner Gaussian sigma in px; lines widen in proportion.
    line_threshold: lightness contrast (L*/100 units of DoG) where a line starts;
      lower = more, fainter edges get lines.
    line_sharpness: slope of the ink ramp past the threshold (larger = harder lines).
    palette_boost: scales the palette's OKLab chroma by (1 + palette_boost).
    cleanup_radius: px; each pixel takes the most frequent palette colour in its
      (2 r + 1)^2 window, removing isolated specks (0 = off).
  Static:
    n_colors: palette size.
    kmeans_iters: Lloyd iterations of the palette fit.
    max_line_weight: bound on line_weight (sets the blur kernel support).
  """
  smoothing: float = 0.8
  smooth_radius: float = 6.0
  smooth_eps: float = 0.02
  line_weight: float = 1.2
  line_threshold: float = 0.01
  line_sharpness: float = 200.0
  palette_boost: float = 0.25
  cleanup_radius: float = 2.0
  n_colors: int = static(8)
  kmeans_iters: int = static(10)
  max_line_weight: float = static(4.0)

  _RANGES = (("palette_boost", -1.0, 10.0), ("cleanup_radius", 0.0, 1e4))

  def __post_init__(self):  # static fields only: they are never traced
    if not (isinstance(self.n_colors, int) and self.n_colors >= 1 and
            isinstance(self.kmeans_iters, int) and self.kmeans_iters >= 0):
      raise ValueError(f"ComicKnobs: n_colors must be an int >= 1 and kmeans_iters an int >= 0, "
                       f"got {self.n_colors!r}, {self.kmeans_iters!r}")


def comic_layers(images, knobs: ComicKnobs, *, origin, palette):
  """The `comic` style: guided-filter smoothing, flat colour from the palette, XDoG ink.

  palette: [B, n_colors, 3] sRGB, from render.fit_palette (k-means in OKLab).
  """
  del origin  # no screen pattern in this style
  smooth = edge_preserving_smooth(images, knobs)
  labels = quantize.assign_palette(smooth, palette)
  # Majority vote over a small window removes the speckle k-means leaves where a smooth
  # gradient crosses a cluster boundary (O(1) per pixel per colour via box filters).
  # Exact integer counts (box_sum), so tiles of one canvas break ties the same way.
  votes = box_sum(jax.nn.one_hot(labels, palette.shape[1], dtype=jnp.float32),
                  jnp.round(knobs.cleanup_radius).astype(jnp.int32))
  labels = jnp.argmax(votes, axis=-1)
  lab = color.srgb_to_oklab(palette)  # [B, K, 3]
  chroma = (1.0 + knobs.palette_boost)[:, None, None]
  boosted = jnp.concatenate([lab[..., :1], lab[..., 1:] * chroma], axis=-1)
  flat = quantize.apply_palette(labels, jnp.clip(color.oklab_to_srgb(boosted), 0.0, 1.0))
  return {"ink": _ink(color.lightness(smooth), knobs), "flat": flat,
          "tone": jnp.zeros_like(flat[..., :1])}


def _dots(tone, knobs, origin):
  return screentone.halftone(tone, period=knobs.tone_period, angle=knobs.screen_angle,
                             origin=origin)


def _hatch(tone, knobs, origin):
  return screentone.hatching(tone, period=knobs.tone_period,
                             angle=knobs.screen_angle, origin=origin)


TONE_PATTERNS: dict[str, Callable] = {"dots": _dots, "hatch": _hatch}


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class MangaKnobs(_KnobsMixin):
  """Knobs of the `manga` style: black and white, ink lines, screentone bands, solid blacks.

  The lightness (L*/100) of the smoothed image is cut into tone_levels equal bands: the
  darkest is solid black, the lightest white paper, the ones between are screentone whose
  ink coverage falls linearly from tone_density (second-darkest) towards the lightest.

  Runtime (scalar or [B]):
    smoothing, smooth_radius, smooth_eps, line_weight, line_threshold, line_sharpness:
      as ComicKnobs.
    tone_levels: number of lightness bands (an integer >= 2; rounded).
    tone_density: ink coverage of the darkest screentone band, 0..1.
    tone_period: screen period in px.
    screen_angle: screen angle in degrees.
    exposure: added to the lightness before banding (> 0 = lighter, fewer blacks), -1..1.
    cleanup_radius: px; the lightness is box-averaged over the (2 r + 1)^2 window before
      banding, so band borders follow smooth curves instead of breaking into specks
      (0 = off; the ink lines keep the detail).
  Static:
    tone_pattern: "dots" (halftone) or "hatch" (hatching), see TONE_PATTERNS.
    max_line_weight: as ComicKnobs.
  """
  smoothing: float = 0.8
  smooth_radius: float = 6.0
  smooth_eps: float = 0.02
  line_weight: float = 1.2
  line_threshold: float = 0.01
  line_sharpness: float = 200.0
  tone_levels: int = 4
  tone_density: float = 0.45
  tone_period: float = 5.0
  screen_angle: float = 45.0
  exposure: float = 0.0
  cleanup_radius: float = 2.0
  tone_pattern: str = static("dots")
  max_line_weight: float = static(4.0)

  _RANGES = (("tone_levels", 2, 256), ("tone_density", 0.0, 1.0), ("tone_period", 1.0, 1e4),
             ("exposure", -1.0, 1.0), ("cleanup_radius", 0.0, 1e4))

  def __post_init__(self):  # static fields only: they are never traced
    if self.tone_pattern not in TONE_PATTERNS:
      raise ValueError(f"MangaKnobs.tone_pattern {self.tone_pattern!r} is not one of "
                       f"{sorted(TONE_PATTERNS)}")


def manga_layers(images, knobs: MangaKnobs, *, origin, palette):
  """The `manga` style: XDoG ink, banded screentone, solid blacks in the darkest band."""
  del palette  # no colour
  smooth = edge_preserving_smooth(images, knobs)
  grey = color.lightness(smooth)
  level = box_filter(grey, jnp.round(knobs.cleanup_radius).astype(jnp.int32))
  index, band_tone = screentone.tone_bands(
      jnp.clip(level + as_bhwc(knobs.exposure), 0.0, 1.0), knobs.tone_levels)
  black = (index == 0).astype(jnp.float32)
  # Coverage 1 - band_tone, scaled so the darkest tone band has tone_density.
  n = as_bhwc(jnp.maximum(jnp.round(knobs.tone_levels), 2.0))
  coverage = (1.0 - band_tone) * (n - 1.0) / jnp.maximum(n - 2.0, 1.0) * as_bhwc(
      knobs.tone_density)
  tone = TONE_PATTERNS[knobs.tone_pattern](1.0 - jnp.clip(coverage, 0.0, 1.0), knobs, origin)
  flat = jnp.broadcast_to(1.0 - black, images.shape)
  return {"ink": _ink(grey, knobs), "flat": flat, "tone": tone * (1.0 - black)}


class Style(NamedTuple):
  knobs: type          # the knob dataclass; its defaults are the style's defaults
  layers: Callable     # (images, knobs, *, origin, palette) -> {"ink", "flat", "tone"}
  uses_palette: bool   # layers needs a [B, knobs.n_colors, 3] palette


STYLES: dict[str, Style] = {
    "comic": Style(ComicKnobs, comic_layers, uses_palette=True),
    "manga": Style(MangaKnobs, manga_layers, uses_palette=False),
}


class UnknownStyleError(ValueError):
  pass


def get_style(name: str) -> Style:
  try:
    return STYLES[name]
  except KeyError:
    raise UnknownStyleError(f"unknown comic style {name!r}; valid styles: "
                            f"{sorted(STYLES)}") from None
