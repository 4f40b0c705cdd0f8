"""Configs are Python: `get_config()` in a module returns an ml_collections.ConfigDict.

`load("tiny")` takes a module of this package by name, `load("path/to/my.py")`
a file; overrides are `a.b.c=value` strings as on the command line
(`--config.train.batch_size=64`). The result is locked: an unknown key or a
value of the wrong type raises ConfigError naming the key.
"""

import ast
import importlib
import importlib.util
import pathlib

import ml_collections

NAMES = ("tiny", "cifar", "large", "base", "panorama_tiny", "panorama", "comic", "comic_tiny",
         "depth_tiny")


class ConfigError(ValueError):
  """A config name, file, key or value that cannot be used."""


def _module(name_or_path: str):
  if name_or_path in NAMES:
    return importlib.import_module(f"genjax.configs.{name_or_path}")
  path = pathlib.Path(name_or_path)
  if path.suffix != ".py" or not path.is_file():
    raise ConfigError(
        f"config {name_or_path!r} is neither a built-in config ({', '.join(NAMES)}) "
        "nor an existing .py file")
  spec = importlib.util.spec_from_file_location(f"genjax_user_config_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
  except SyntaxError as e:
    raise ConfigError(f"config file {path}, line {e.lineno}: {e.msg}") from None
  except Exception as e:  # the file runs on import: any error in it is the user's to fix
    raise ConfigError(f"config file {path}{_line_in(e, path)}: {type(e).__name__}: {e}") from None
  if not hasattr(module, "get_config"):
    raise ConfigError(f"config file {path} defines no get_config()")
  return module


def _line_in(error: BaseException, path: pathlib.Path) -> str:
  """', line N' of the innermost frame of `error` that ran in the file `path`, or ''."""
  import traceback
  frames = [f for f in traceback.extract_tb(error.__traceback__)
            if pathlib.Path(f.filename).resolve() == path.resolve()]
  return f", line {frames[-1].lineno}" if frames else ""


def _parse(text: str):
  """'64' -> 64, '(1, 2)' -> (1, 2), 'True' -> True, 'cosine' -> 'cosine'."""
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def _convert(key: str, old, new):
  """Coerce a parsed override to the type of the default, or raise ConfigError."""
  if isinstance(old, bool):
    if isinstance(new, bool):
      return new
    if isinstance(new, str) and new.lower() in ("true", "false"):
      return new.lower() == "true"
  elif isinstance(old, int):
    if isinstance(new, int) and not isinstance(new, bool):
      return new
  elif isinstance(old, float):
    if isinstance(new, (int, float)) and not isinstance(new, bool):
      return float(new)
  elif isinstance(old, str):
    return str(new) if not isinstance(new, (tuple, list, dict)) else _fail(key, old, new)
  elif isinstance(old, (tuple, list)):
    if isinstance(new, (int, float)) and not isinstance(new, bool):
      new = (new,)
    if isinstance(new, (tuple, list)):
      return tuple(new)
  elif old is None:
    return new
  return _fail(key, old, new)


def _fail(key, old, new):
  raise ConfigError(
      f"config key {key!r} expects a {type(old).__name__} (default {old!r}), got {new!r}")


def apply_overrides(config: ml_collections.ConfigDict, overrides) -> None:
  """Applies 'a.b=value' strings (or (key, value) pairs) in place."""
  for item in overrides:
    key, value = item.split("=", 1) if isinstance(item, str) else item
    key = key.removeprefix("--").removeprefix("config.")
    *parents, leaf = key.split(".")
    node = config
    for i, part in enumerate(parents):
      if part not in node or not isinstance(node[part], ml_collections.ConfigDict):
        raise ConfigError(f"unknown config key {'.'.join(parents[:i + 1])!r} (in override {item!r})")
      node = node[part]
    if leaf not in node:
      valid = ", ".join(sorted(node.keys()))
      raise ConfigError(f"unknown config key {key!r}; valid keys here: {valid}")
    old = node[leaf]
    if isinstance(old, ml_collections.ConfigDict):
      raise ConfigError(f"config key {key!r} is a group, set one of its fields instead")
    new = _parse(value) if isinstance(value, str) else value
    node[leaf] = _convert(key, old, new)


# What a config trains, by the section only that kind has, and the command that trains it.
_KINDS = {"diffusion": ("diffusion", "genjax train"), "translator": ("loss", "genjax train-comic")}


def require_kind(config: ml_collections.ConfigDict, kind: str, name: str) -> None:
  """Raises ConfigError unless `config` (called `name` in the message) is a `kind` config:
  "diffusion" (genjax train) or "translator" (genjax train-comic)."""
  section, _ = _KINDS[kind]
  if section in config:
    return
  hints = "".join(f"; it is a {k} config: train it with `{command}`"
                  for k, (s, command) in _KINDS.items() if s in config)
  raise ConfigError(f"config {name!r} is not a {kind} config (no {section!r} section){hints}")


def load(name_or_path: str = "tiny", overrides=()) -> ml_collections.ConfigDict:
  """Loads, overrides and locks a config."""
  module = _module(name_or_path)
  try:
    config = module.get_config()
  except Exception as e:
    if name_or_path in NAMES:
      raise
    path = pathlib.Path(name_or_path)
    raise ConfigError(f"config file {path}{_line_in(e, path)}: get_config() raised "
                      f"{type(e).__name__}: {e}") from None
  config.lock()
  apply_overrides(config, overrides)
  return config


def from_json(text: str, *, source: str = "config.json",
              base: ml_collections.ConfigDict | None = None) -> ml_collections.ConfigDict:
  """A config saved by a run (`config.to_json()`), rebuilt on `base` (default: the base
  diffusion config; it is changed) and locked."""
  import json

  def leaves(d, prefix=""):
    for k, v in d.items():
      if isinstance(v, dict):
        yield from leaves(v, f"{prefix}{k}.")
      else:
        yield f"{prefix}{k}", v

  if base is None:
    from genjax.configs import base as base_module
    base = base_module.get_config()
  config = base
  config.lock()
  try:
    apply_overrides(config, list(leaves(json.loads(text))))
  except ConfigError as e:
    raise ConfigError(f"{source}: {e}") from None
  return config
