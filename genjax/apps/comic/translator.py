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

No normalization over pixels (no batch, instance, layer or group norm): an output pixel
depends only on the input within receptive_radius() pixels and the knobs, so a tile whose
offset is a multiple of align() gives exactly the crop of the whole frame away from its
border (translate_photo tiles large photos that way, without blending).

Architecture (Shi et al. 2016 sub-pixel convolutions at both ends, so no convolution
runs at full resolution): space-to-depth by `patch` -> 3x3 conv -> stride-2 convs to
each further level -> residual blocks at the coarsest level -> per level a 3x3 conv to
4x channels and depth-to-space, plus the encoder skip -> a 3x3 head to patch^2 outputs
per layer channel -> depth-to-space. Every convolution goes through genjax.kernels.conv2d.
"""

import dataclasses
import functools
import json
import math
import pathlib
from collections.abc import Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from genjax.apps.comic import render as render_lib
from genjax.apps.comic.styles import TONE_PATTERNS, get_style
from genjax.image.box_filter import as_bhwc, per_image
from genjax.models.layers import Conv

# Layer channels the generator predicts per style (sigmoid of its outputs).
HEADS = {"comic": (("ink", 1), ("flat", 3)), "manga": (("ink", 1), ("paper", 1), ("tone", 1))}
# Knobs applied after the network, procedurally: free at inference for every translator.
PROCEDURAL_KNOBS = {"comic": (), "manga": ("tone_density", "tone_period", "screen_angle",
                                           "tone_pattern")}
CONFIG_FILE = "translator.json"
PARAMS_DIR = "params"


class TranslatorError(ValueError):
  """A translator file, knob or input that cannot be used; the message names it."""


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


def space_to_depth(x: jax.Array, r: int) -> jax.Array:
  """[B, H, W, C] -> [B, H/r, W/r, r*r*C] (H, W divisible by r)."""
  b, h, w, c = x.shape
  x = x.reshape(b, h // r, r, w // r, r, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h // r, w // r, r * r * c)


def depth_to_space(x: jax.Array, r: int) -> jax.Array:
  """[B, H, W, r*r*C] -> [B, H*r, W*r, C], the inverse of space_to_depth."""
  b, h, w, c = x.shape
  x = x.reshape(b, h, w, r, r, c // (r * r)).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h * r, w * r, c // (r * r))


class FiLM(nn.Module):
  """Feature-wise affine modulation from the knob vector (Perez et al. 2018).

  x [B, H, W, C] * (1 + gamma(cond)) + beta(cond), cond [B, K]. Starts as the identity.
  Per image and per channel only: no statistic over pixels, so tiles stay exact.
  """
  features: int

  @nn.compact
  def __call__(self, x, cond):
    gb = nn.Dense(2 * self.features, kernel_init=nn.initializers.zeros)(cond)
    gamma, beta = gb[:, None, None, :self.features], gb[:, None, None, self.features:]
    return x * (1.0 + gamma) + beta


class ResBlock(nn.Module):
  features: int
  conv_impl: str | None = None

  @nn.compact
  def __call__(self, x, cond):
    h = Conv(self.features, conv_impl=self.conv_impl)(nn.relu(x))
    h = FiLM(self.features)(h, cond)
    h = Conv(self.features, zero_init=True, conv_impl=self.conv_impl)(nn.relu(h))
    return x + h


class Generator(nn.Module):
  """images [B, H, W, 3] in [0, 1], cond [B, K] in [-1, 1] -> logits [B, H, W, out_channels].

  H and W must be multiples of config.align() (translate pads to them).
  """
  config: TranslatorConfig

  @nn.compact
  def __call__(self, images: jax.Array, cond: jax.Array) -> jax.Array:
    cfg, impl = self.config, self.config.conv_impl
    ch, p = cfg.channels, cfg.patch
    b, h, w, _ = images.shape
    if h % cfg.align() or w % cfg.align():
      raise TranslatorError(f"generator input {h}x{w} must be a multiple of {cfg.align()}")
    x = space_to_depth(images * 2.0 - 1.0, p)
    hid = nn.relu(FiLM(ch[0])(Conv(ch[0], conv_impl=impl)(x), cond))
    skips = [hid]
    for c in ch[1:]:
      hid = nn.relu(FiLM(c)(Conv(c, stride=2, conv_impl=impl)(hid), cond))
      skips.append(hid)
    for _ in range(cfg.num_res_blocks):
      hid = ResBlock(ch[-1], conv_impl=impl)(hid, cond)
    for level in reversed(range(len(ch) - 1)):
      up = depth_to_space(Conv(4 * ch[level], conv_impl=impl)(nn.relu(hid)), 2)
      hid = FiLM(ch[level])(up + skips[level], cond)
    # The input beside the features: sub-pixel detail (thin lines) at no full-res cost.
    out = Conv(p * p * cfg.out_channels, conv_impl=impl)(
        jnp.concatenate([nn.relu(hid), x], axis=-1))
    return depth_to_space(out, p)


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
  tmp = directory / f".{CONFIG_FILE}.tmp"
  tmp.write_text(translator.config.to_json())
  tmp.replace(directory / CONFIG_FILE)
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

