"""The config of a run folder: value checks before anything is written, and on resume the
comparison with the run's `config.json`.

A resumed run must train what the folder says it trains: `genjax sample` and `genjax eval`
rebuild the model, objective and schedule from `config.json`. A changed key is therefore
refused (naming every key, old -> new) unless it is one of `FREE_ON_RESUME` or the caller
accepts the change; every change is then appended to `config_changes.jsonl` (step, old, new)
and `config.json` is rewritten atomically.
"""

import datetime
import json
import math
import pathlib

import ml_collections

from genjax import configs, files
from genjax.train import state

CONFIG_FILE = "config.json"
CHANGES_FILE = "config_changes.jsonl"

# Keys that may change on resume without accepting: they decide how long and how observably
# the run trains (more steps, other checkpoint / log / sample / evaluation intervals), how it
# is laid out on the hardware (mesh, conv implementation, decode workers), never what the next
# update computes. Everything else (seed, objective, schedule, optimizer, data, model, batch)
# changes the trained function or the exact-resume data order and needs accepting.
FREE_ON_RESUME = frozenset({
    "train.num_steps", "train.log_every", "train.checkpoint_every", "train.keep_checkpoints",
    "train.sample_every", "train.num_sample_images", "train.sample_steps",
    "train.max_nonfinite_in_row", "train.eval_every", "train.eval_metrics",
    "train.eval_num_images", "train.eval_batch_size", "train.eval_sample_steps",
    "train.keep_best_by", "train.init_params", "data.worker_count", "mesh.data", "mesh.fsdp",
    "kernels.conv_impl", "train.time_limit_minutes", "train.stop_check_every",
})

# Integer keys and their least valid value (what the value counts, for the message).
_AT_LEAST = {
    "train.batch_size": (1, "images per step"),
    "train.grad_accum_steps": (1, "micro-batches per step"),
    "train.num_steps": (1, "steps to train in total"),
    "train.checkpoint_every": (1, "steps between checkpoints"),
    "train.keep_checkpoints": (1, "checkpoints kept"),
    "train.log_every": (1, "steps between metric records"),
    "train.sample_every": (1, "steps between sample grids"),
    "train.num_sample_images": (1, "images in the sample grid"),
    "train.sample_steps": (1, "sampler steps of the sample grid"),
    "train.max_nonfinite_in_row": (1, "non-finite steps before stopping"),
    "train.stop_check_every": (1, "steps between the processes' agreements on a stop"),
    "train.warmup_steps": (0, "learning-rate warmup steps"),
    "train.eval_every": (0, "steps between evaluations, 0 = off"),
    "train.eval_num_images": (1, "images per evaluation"),
    "train.eval_batch_size": (1, "samples per evaluation call"),
    "train.eval_sample_steps": (1, "sampler steps of the evaluation"),
    "data.num_examples": (1, "procedural images"),
    "data.worker_count": (0, "decode processes"),
}


class ConfigChangedError(configs.ConfigError):
  """Resuming a run with a config that differs from its config.json in a key that matters."""


def flatten(config) -> dict[str, object]:
  """{"train.batch_size": 16, ...} of a ConfigDict, as JSON values (tuples become lists)."""
  def walk(d, prefix):
    for k, v in d.items():
      if isinstance(v, dict):
        yield from walk(v, f"{prefix}{k}.")
      else:
        yield f"{prefix}{k}", v
  if isinstance(config, ml_collections.ConfigDict):
    config = json.loads(config.to_json_best_effort())
  return dict(walk(config, ""))


def check_values(config) -> None:
  """Raises ConfigError naming the key and value of the first field no run can use."""
  flat = flatten(config)
  for key, (least, what) in _AT_LEAST.items():
    if key in flat and flat[key] < least:
      raise configs.ConfigError(
          f"config key {key!r} = {flat[key]} is invalid: it must be at least {least} ({what})")
  size = flat.get("data.image_size")
  if size is not None and (len(size) != 2 or min(size) < 1):
    raise configs.ConfigError(
        f"config key 'data.image_size' = {tuple(size)} is invalid: it must be (height, width) "
        "in pixels, both at least 1")
  for key, low, high in (("train.learning_rate", 0.0, math.inf), ("train.ema_decay", 0.0, 1.0)):
    value = flat.get(key)
    if value is not None and not (math.isfinite(value) and low <= value <= high):
      raise configs.ConfigError(
          f"config key {key!r} = {value} is invalid: it must be finite, in [{low}, {high}]")
  init = flat.get("train.init_params")
  if init and not (pathlib.Path(init).is_file() or state.is_checkpoint_step(init)):
    raise configs.ConfigError(f"config key 'train.init_params' = {init} is invalid: no such "
                              "file (an exported weights .msgpack) or checkpoint folder "
                              "(RUN/checkpoints/STEP)")


def changes(saved: dict, config) -> dict[str, tuple]:
  """{key: (old, new)} of every key whose value differs (a key only one side has: None)."""
  old, new = flatten(saved), flatten(config)
  return {k: (old.get(k), new.get(k)) for k in sorted(set(old) | set(new))
          if old.get(k) != new.get(k)}


def describe(diff: dict[str, tuple]) -> str:
  return "; ".join(f"{k} {json.dumps(a)} -> {json.dumps(b)}" for k, (a, b) in diff.items())


def read_saved(workdir: pathlib.Path, base=None) -> dict | None:
  """The run's config.json, normalised onto today's defaults (None if there is none):
  `base` (a ConfigDict of the run's kind), default genjax.configs.base."""
  path = pathlib.Path(workdir) / CONFIG_FILE
  if not path.is_file():
    return None
  return flatten(configs.from_json(path.read_text(), source=str(path), base=base))


def check_resume(workdir: pathlib.Path, config, *, accept: bool, base=None) -> dict[str, tuple]:
  """The changes from the run's config.json (read onto `base`, see read_saved); raises
  ConfigChangedError for changes outside FREE_ON_RESUME unless `accept`. {} when the
  folder has no config.json."""
  saved = read_saved(workdir, base)
  if saved is None:
    return {}
  diff = changes(saved, config)
  refused = {k: v for k, v in diff.items() if k not in FREE_ON_RESUME}
  if refused and not accept:
    raise ConfigChangedError(
        f"{pathlib.Path(workdir) / CONFIG_FILE}: resuming with a changed config: "
        f"{describe(refused)}. Train into another --workdir, restore these values, or accept the "
        f"change with --accept-config-change (recorded in {CHANGES_FILE})")
  return diff


def record(workdir: pathlib.Path, config, diff: dict[str, tuple], *, step: int) -> None:
  """Appends the changes at `step` to config_changes.jsonl, then rewrites config.json; both
  whole files written atomically (a crash leaves the old or the new, and a repeated resume
  finds the same changes again)."""
  workdir = pathlib.Path(workdir)
  if diff:
    accepted = sorted(k for k in diff if k not in FREE_ON_RESUME)
    entry = {"step": step,
             "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             "changes": {k: {"old": a, "new": b} for k, (a, b) in diff.items()},
             "accepted": accepted}
    log_path = workdir / CHANGES_FILE
    previous = log_path.read_text() if log_path.is_file() else ""
    files.write_text(log_path, previous + json.dumps(entry) + "\n")
  write(workdir, config)


def write(workdir: pathlib.Path, config) -> None:
  files.write_text(pathlib.Path(workdir) / CONFIG_FILE, config.to_json_best_effort(indent=2) + "\n")
