"""The neural comic translator's configuration: architecture and knob conditioning.

Its own module so that the network (translator_net), the train step's settings and the
translator API (translator) all import it, and none of them imports another in a circle.
"""

import dataclasses
import json
from typing import Any

from genjax.apps.comic import render as render_lib
from genjax.apps.comic.styles import get_style


class TranslatorError(ValueError):
  """A translator file, knob or input that cannot be used; the message names it."""


CONFIG_FILE = "translator.json"


# Layer channels the generator predicts per style (sigmoid of its outputs).
HEADS = {"comic": (("ink", 1), ("flat", 3)), "manga": (("ink", 1), ("paper", 1), ("tone", 1))}
# Knobs applied after the network, procedurally: free at inference for every translator.
PROCEDURAL_KNOBS = {"comic": (), "manga": ("tone_density", "tone_period", "screen_angle",
                                           "tone_pattern")}


def parse_value(text: str):
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
      fixed[name.strip()] = parse_value(value.strip())
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
