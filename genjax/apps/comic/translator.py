"""Neural photo -> comic translator: a small fully convolutional generator, knob-conditioned.

  translator = load_translator("runs/comic")                 # written by train_translator
  rendering = translate(translator, photos, {"line_weight": 2.0})  # same contract as render

The generator predicts the editable layers of a style (render.py's contract) rather than
pixels: ink alpha and flat colour (comic), or ink alpha, paper (1 - solid black) and a
screentone coverage (manga). The screen itself (dots or hatching) is then drawn by
genjax.image.screentone at the output resolution with the canvas origin, exactly as the
procedural renderer draws it: a translation-equivariant network cannot know the phase
of a screen, and a screen drawn per output pixel never moires. So tone_period,
screen_angle, tone_pattern and tone_density stay free knobs at inference, and the knobs
the network was trained on (config.cond_knobs: line weight, tone levels, smoothing)
enter through FiLM (per-channel scale and shift computed from the knob vector).

The config (TranslatorConfig) is in translator_config, the network (Generator, FiLM,
sub-pixel convolutions) in translator_net; whole-photo tiling (translate_photo) in
translator_tiles. This module holds the knob handling, translate and save/load.
"""

import dataclasses
import functools
import pathlib
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from genjax import files
from genjax.apps.comic import render as render_lib
from genjax.apps.comic.styles import TONE_PATTERNS
# The config and its error are re-exported: `translator` is the app's API.
from genjax.apps.comic.translator_config import (CONFIG_FILE, HEADS, PROCEDURAL_KNOBS,  # noqa: F401
                                                 TranslatorConfig, TranslatorError)
from genjax.apps.comic.translator_net import Generator
from genjax.image.box_filter import as_bhwc, per_image
from genjax.train import checkpoint

PARAMS_DIR = "params"


def knob_vector(config: TranslatorConfig, knobs, batch: int) -> jax.Array:
  """The conditioning vector [batch, K] in [-1, 1] from the conditioned knobs' values.

  tone_levels is rounded first, as the renderer does.
  """
  cols = []
  for name, (lo, hi) in zip(config.cond_knobs, config.knob_ranges):
    v = per_image(getattr(knobs, name), batch)
    if name == "tone_levels":
      v = jnp.round(v)
    cols.append((v - lo) / (hi - lo) * 2.0 - 1.0)
  return jnp.stack(cols, axis=-1) if cols else jnp.zeros((batch, 0), jnp.float32)


def layers_from_logits(logits: jax.Array, style: str, knobs, origin) -> dict[str, jax.Array]:
  """Generator outputs -> the style's layers {"ink", "flat", "tone"} (render.py's contract).

  manga: tone = screen(1 - coverage * tone_density) * paper, drawn at this resolution.
  """
  parts, i = {}, 0
  for name, n in HEADS[style]:
    parts[name] = jax.nn.sigmoid(logits[..., i:i + n])
    i += n
  if style == "comic":
    return {"ink": parts["ink"], "flat": parts["flat"], "tone": jnp.zeros_like(parts["ink"])}
  paper = parts["paper"]
  density = as_bhwc(per_image(knobs.tone_density, logits.shape[0]))
  coverage = jnp.clip(parts["tone"] * density, 0.0, 1.0)
  screen = TONE_PATTERNS[knobs.tone_pattern](1.0 - coverage, knobs, origin)
  # Straight-through gradient: the screen is a dither whose mean ink is the coverage, so
  # backpropagate as if it were the coverage (the screen's own derivative is zero inside
  # dots and lines and not finite at empty cells).
  screen = coverage + jax.lax.stop_gradient(screen - coverage)
  return {"ink": parts["ink"], "flat": jnp.broadcast_to(paper, paper.shape[:-1] + (3,)),
          "tone": screen * paper}


class Translator(NamedTuple):
  config: TranslatorConfig
  params: Any


def check_knobs(config: TranslatorConfig, knobs=None):
  """The style's knob dataclass for a translator, or TranslatorError.

  Conditioned knobs must lie in their training range; procedural knobs are free; every
  other knob must keep the value the translator was trained with.
  """
  base = config.default_knobs()
  if knobs is None:
    return base
  if isinstance(knobs, Mapping):
    merged = {**dict(config.fixed_knobs), **dict(knobs)}
    knobs = render_lib.make_knobs(config.style, merged)
  else:
    knobs = render_lib.make_knobs(config.style, knobs)
  ranges = dict(zip(config.cond_knobs, config.knob_ranges))
  for f in dataclasses.fields(knobs):
    value = getattr(knobs, f.name)
    if f.name in ranges:
      lo, hi = ranges[f.name]
      v = np.asarray(value, np.float64)
      if not np.all((v >= lo - 1e-6) & (v <= hi + 1e-6)):
        raise TranslatorError(f"knob {f.name}={v} is outside the range [{lo}, {hi}] this "
                              f"translator was trained on")
    elif f.name not in PROCEDURAL_KNOBS[config.style]:
      if not _same(value, getattr(base, f.name)):
        free = sorted({*config.cond_knobs, *PROCEDURAL_KNOBS[config.style]})
        raise TranslatorError(f"knob {f.name!r} is fixed at {getattr(base, f.name)!r} in this "
                              f"translator (got {value!r}); its adjustable knobs: {free}")
  return knobs


def _same(value, trained) -> bool:
  """value (scalar or [B], any float width) equals the trained value everywhere."""
  if isinstance(trained, str) or isinstance(value, str):
    return value == trained
  return bool(np.allclose(np.asarray(value, np.float64), float(trained), rtol=1e-6, atol=0.0))


@functools.partial(jax.jit, static_argnames=("config",))
def _translate(params, images, knobs, origin, *, config: TranslatorConfig):
  a = config.align()
  cond = knob_vector(config, knobs, images.shape[0])
  b, h, w, _ = images.shape
  # Edge-replicate up to the grid (bottom/right only, so tile offsets keep their phase).
  x = jnp.pad(images, ((0, 0), (0, -h % a), (0, -w % a), (0, 0)), mode="edge")
  logits = Generator(config).apply({"params": params}, x, cond)[:, :h, :w]
  return layers_from_logits(logits, config.style, knobs, origin)


def translate_layers(translator: Translator, images: jax.Array, knobs=None, *,
                     origin=(0.0, 0.0)) -> dict[str, jax.Array]:
  """Like render.render_layers, with the translator in place of the procedural style.

  Args:
    images: [B, H, W, 3] float sRGB in [0, 1], any H, W.
    knobs: None, a mapping of overrides or the style's knob dataclass (see check_knobs);
      runtime knobs may be scalars or [B].
    origin: (2,) or [B, 2] canvas position (row, col) of each image's top-left pixel.
  Returns:
    {"ink": [B, H, W, 1], "flat": [B, H, W, 3], "tone": [B, H, W, 1]} float32 in [0, 1].
  """
  images = jnp.asarray(images, jnp.float32)
  if images.ndim != 4 or images.shape[-1] != 3:
    raise TranslatorError(f"translate expects images [B, H, W, 3], got shape {images.shape}")
  cfg = translator.config
  b = images.shape[0]
  knobs = check_knobs(cfg, knobs)
  origin = jnp.broadcast_to(jnp.asarray(origin, jnp.float32), (b, 2))
  runtime = jax.tree.map(lambda v: per_image(v, b), knobs)
  return _translate(translator.params, images, runtime, origin, config=cfg)


def translate(translator: Translator, images: jax.Array, knobs=None, *,
              origin=(0.0, 0.0)) -> render_lib.Rendering:
  """Rendering(image, layers) of [B, H, W, 3] (or one [H, W, 3]) photos; see translate_layers."""
  single = jnp.ndim(images) == 3
  batch = jnp.asarray(images)[None] if single else images
  layers = translate_layers(translator, batch, knobs, origin=origin)
  image = render_lib.compose(layers)
  if single:
    return render_lib.Rendering(image[0], {k: v[0] for k, v in layers.items()})
  return render_lib.Rendering(image, layers)


@functools.partial(jax.jit, static_argnames=("config",))
def init_params(config: TranslatorConfig, key: jax.Array):
  """Generator parameters from a key (their shapes do not depend on the image size)."""
  a = config.align()
  return Generator(config).init(key, jnp.zeros((1, a, a, 3), jnp.float32),
                                jnp.zeros((1, len(config.cond_knobs)), jnp.float32))["params"]


def save_translator(directory, translator: Translator) -> pathlib.Path:
  """Writes directory/translator.json and directory/params (Orbax), replacing them."""
  directory = pathlib.Path(directory).absolute()
  directory.mkdir(parents=True, exist_ok=True)
  checkpoint.save_tree(directory / PARAMS_DIR, translator.params)
  files.write_text(directory / CONFIG_FILE, translator.config.to_json())
  return directory


def load_translator(path) -> Translator:
  """A translator from a training workdir (its translator/ folder) or that folder itself."""
  path = pathlib.Path(path).absolute()
  for directory in (path, path / "translator"):
    if (directory / CONFIG_FILE).is_file():
      break
  else:
    raise TranslatorError(f"{path}: no translator found (expected {path / CONFIG_FILE} or "
                          f"{path / 'translator' / CONFIG_FILE}, written by train_translator)")
  config = TranslatorConfig.from_json((directory / CONFIG_FILE).read_text(),
                                      source=str(directory / CONFIG_FILE))
  abstract = jax.eval_shape(functools.partial(init_params, config), jax.random.key(0))
  try:
    params = checkpoint.restore_tree(directory / PARAMS_DIR, abstract)
  except checkpoint.CheckpointMismatchError as e:
    raise TranslatorError(f"cannot restore the generator: {e}") from None
  return Translator(config, params)


def count_params(params) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))


def describe(config: TranslatorConfig) -> str:
  return (f"{config.style} translator, channels {config.channels}, {config.num_res_blocks} "
          f"res blocks, patch {config.patch}, receptive radius {config.receptive_radius()} px, "
          f"knobs {dict(zip(config.cond_knobs, config.knob_ranges))}")

