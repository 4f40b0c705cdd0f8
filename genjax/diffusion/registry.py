"""Lookup by name (re-exported from genjax.naming), and config -> dataclass."""

import dataclasses
from typing import Any, Mapping, TypeVar

from genjax.naming import UnknownNameError, lookup  # noqa: F401 (re-exported)

T = TypeVar("T")

def from_mapping(cls: type[T], cfg: Any, keys: Mapping[str, str] | None = None) -> T:
  """Builds the frozen dataclass `cls` from a ConfigDict or dict.

  Each field `f` is read as `cfg.get(keys.get(f, f), default)`, so a config only
  needs the keys it changes; `keys` renames fields whose config key differs
  (e.g. MinSNR.gamma <- "min_snr_gamma"). Values are cast to the field's type.
  """
  keys = keys or {}
  kwargs = {}
  for f in dataclasses.fields(cls):
    if not f.init:
      continue
    value = cfg.get(keys.get(f.name, f.name), f.default)
    if isinstance(f.type, type) and not isinstance(value, f.type):
      try:
        value = f.type(value)
      except (TypeError, ValueError):
        raise ValueError(f"{cls.__name__}.{f.name}: cannot convert {value!r} to "
                         f"{f.type.__name__}") from None
    kwargs[f.name] = value
  return cls(**kwargs)


def config_keys(cls: type, keys: Mapping[str, str] | None = None) -> set[str]:
  """The config keys `from_mapping(cls, ...)` reads."""
  keys = keys or {}
  return {keys.get(f.name, f.name) for f in dataclasses.fields(cls) if f.init}
