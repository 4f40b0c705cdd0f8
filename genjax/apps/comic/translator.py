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

The network (Generator, FiLM, sub-pixel convolutions) is in translator_net; whole-photo
tiling (translate_photo) in translator_tiles. This module holds the config, the knob
handling, translate and save/load.
"""

import dataclasses
import functools
import json
import pathlib
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from genjax import files
from genjax.apps.comic import render as render_lib
from genjax.apps.comic.styles import TONE_PATTERNS, get_style
# TranslatorError lives in translator_net (which must not import this module); re-exported.
from genjax.apps.comic.translator_net import Generator, TranslatorError
from genjax.image.box_filter import as_bhwc, per_image

# Layer channels the generator predicts per style (sigmoid of its outputs).
HEADS = {"comic": (("ink", 1), ("flat", 3)), "manga": (("ink", 1), ("paper", 1), ("tone", 1))}
# Knobs applied after the network, procedurally: free at inference for every translator.
PROCEDURAL_KNOBS = {"comic": (), "manga": ("tone_density", "tone_period", "screen_angle",
                                           "tone_pattern")}
CONFIG_FILE = "translator.json"
PARAMS_DIR = "params"


def _parse_value(text: str):
  """'2' -> 2, '0.5' -> 0.5, 'hatch' -> 'hatch' (knob values from config strings)."""
  for kind in (int, float):
    try:
      return kind(text)
    except ValueError:
      pass
  return text


@dataclasses.dataclass(frozen=True)
class TranslatorConfig:
  """The generator's architecture and knob conditioning (hashable: a static jit argument).

  style: the comic style whose layers it predicts ("comic" or "manga").
  channels: features per level; level 0 runs at 1/patch resolution, each next one at
    half the previous.
  num_res_blocks: residual blocks at the coarsest level.
  patch: space-to-depth factor of the input (1, 2 or 4).
  cond_knobs: style knobs the network is conditioned on, with knob_ranges (lo, hi)
    each, the range sampled in training (knobs outside it are refused at inference).
  fixed_knobs: (name, value) pairs of other knobs whose non-default value the targets
    were rendered with; every knob neither conditioned nor procedural is fixed.
  conv_impl: conv-core implementation (None or "auto": the dispatcher chooses).
  """
  style: str = "manga"
  channels: tuple[int, ...] = (16, 32)
  num_res_blocks: int = 3
  patch: int = 2
  cond_knobs: tuple[str, ...] = ("smoothing", "line_weight", "tone_levels")
  knob_ranges: tuple[tuple[float, float], ...] = ((0.0, 1.0), (0.6, 2.5), (2.0, 6.0))
  fixed_knobs: tuple[tuple[str, Any], ...] = ()
  conv_impl: str | None = None

  def __post_init__(self):
    get_style(self.style)  # UnknownStyleError listing the styles
    if self.style not in HEADS:
      raise TranslatorError(f"no translator heads for style {self.style!r}; valid: "
                            f"{sorted(HEADS)}")
    if not self.channels or any(int(c) < 1 for c in self.channels):
      raise TranslatorError(f"translator channels must be positive ints, got {self.channels}")
    if self.patch not in (1, 2, 4):
      raise TranslatorError(f"translator patch must be 1, 2 or 4, got {self.patch}")
    if len(self.cond_knobs) != len(self.knob_ranges):
      raise TranslatorError(f"cond_knobs {self.cond_knobs} and knob_ranges {self.knob_ranges} "
                            f"differ in length")
    fields = {f.name for f in dataclasses.fields(get_style(self.style).knobs)}
    for name in (*self.cond_knobs, *dict(self.fixed_knobs)):
      if name not in fields:
        raise TranslatorError(f"{name!r} is not a knob of style {self.style!r}; valid knobs: "
                              f"{sorted(fields)}")
    for name, (lo, hi) in zip(self.cond_knobs, self.knob_ranges):
      if not lo < hi:
        raise TranslatorError(f"knob range of {name!r} must have lo < hi, got ({lo}, {hi})")

  @classmethod
  def from_config(cls, model, *, conv_impl: str | None = None) -> "TranslatorConfig":
    """From config.model (see genjax/configs/comic.py); fixed_knobs are "name=value" strings."""
    fixed = {}
    for item in model.fixed_knobs:
      name, sep, value = str(item).partition("=")
      if not sep:
        raise TranslatorError(f"model.fixed_knobs entry {item!r} must look like name=value")
      fixed[name.strip()] = _parse_value(value.strip())
    return cls(style=model.style, channels=tuple(int(c) for c in model.channels),
               num_res_blocks=int(model.num_res_blocks), patch=int(model.patch),
               cond_knobs=tuple(model.cond_knobs),
               knob_ranges=tuple((float(lo), float(hi)) for lo, hi in model.knob_ranges),
               fixed_knobs=tuple(sorted(fixed.items())),
               conv_impl=None if conv_impl in (None, "", "auto") else conv_impl)

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=1)

  @classmethod
  def from_json(cls, text: str, *, source: str = CONFIG_FILE) -> "TranslatorConfig":
    try:
      d = json.loads(text)
      d["channels"] = tuple(d["channels"])
      d["cond_knobs"] = tuple(d["cond_knobs"])
      d["knob_ranges"] = tuple(tuple(r) for r in d["knob_ranges"])
      d["fixed_knobs"] = tuple(tuple(p) for p in d["fixed_knobs"])
      return cls(**d)
    except (ValueError, KeyError, TypeError) as e:
      raise TranslatorError(f"{source}: not a translator config ({type(e).__name__}: {e})") \
          from None

  @property
  def out_channels(self) -> int:
    return sum(n for _, n in HEADS[self.style])

  def align(self) -> int:
    """Pixels of the coarsest grid: tiles offset by multiples of this are exact crops."""
    return self.patch * 2 ** (len(self.channels) - 1)

  def receptive_radius(self) -> int:
    """A bound on |input pixel - output pixel| (per axis) over which an output depends.

    Along the longest path: the output pixel's cell and the head (p - 1 + p), each
    decoder level (coarsening to its parent cell s_l + the 3x3 conv at s_l), the
    residual convs (2 per block at the coarsest scale S), each stride-2 conv (s_{l-1})
    and the stem (p), with s_l = p 2^l the cell size of level l in pixels.
    """
    p, levels = self.patch, len(self.channels)
    s = [p * 2 ** l for l in range(levels)]
    decoder = sum(s[l - 1] + s[l] for l in range(1, levels))
    encoder = sum(s[l - 1] for l in range(1, levels))
    return (p - 1) + p + decoder + 2 * self.num_res_blocks * s[-1] + encoder + p

  def default_knobs(self):
    """The style's knobs as the targets were rendered, fixed_knobs applied."""
    return render_lib.make_knobs(self.style, dict(self.fixed_knobs))


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
  import orbax.checkpoint as ocp
  directory = pathlib.Path(directory).absolute()
  directory.mkdir(parents=True, exist_ok=True)
  with ocp.StandardCheckpointer() as ckpt:
    ckpt.save(directory / PARAMS_DIR, jax.device_get(translator.params), force=True)
    ckpt.wait_until_finished()
  files.write_text(directory / CONFIG_FILE, translator.config.to_json())
  return directory


def load_translator(path) -> Translator:
  """A translator from a training workdir (its translator/ folder) or that folder itself."""
  import orbax.checkpoint as ocp
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
  with ocp.StandardCheckpointer() as ckpt:
    try:
      params = ckpt.restore(directory / PARAMS_DIR, abstract)
    except Exception as e:  # Orbax raises several types for missing or mismatched trees
      raise TranslatorError(f"{directory / PARAMS_DIR}: cannot restore the generator "
                            f"({type(e).__name__}: {e})") from None
  return Translator(config, params)


def count_params(params) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))


def describe(config: TranslatorConfig) -> str:
  return (f"{config.style} translator, channels {config.channels}, {config.num_res_blocks} "
          f"res blocks, patch {config.patch}, receptive radius {config.receptive_radius()} px, "
          f"knobs {dict(zip(config.cond_knobs, config.knob_ranges))}")

