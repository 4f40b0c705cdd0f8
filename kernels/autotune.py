"""Per-shape choice of the conv implementation: measured by an explicit step, cached on disk.

The table maps a `ConvKey` (backend, device kind, jax version, shape, dtype, padding,
stride, and on the CPU the --xla_cpu_* flags in XLA_FLAGS) to the fastest implementation
for the forward plus backward pass of that convolution. Tracing never measures: the
dispatcher (genjax.kernels.conv) only reads the table with `lookup`, which answers the
default for a missing entry and notes the key (`missing_keys`). Measuring is `choose` /
`tune`, called outside any trace by `genjax tune` and by `genjax train` before it builds
its step (genjax.train.runtime). The table is a JSON file, by default
~/.cache/genjax/conv_autotune.json (environment variable GENJAX_AUTOTUNE_CACHE
overrides). File format, version 1:

    {"version": 1,
     "entries": {"<ConvKey string>": {"impl": "taps",
                                      "seconds": {"xla": 0.0123, "taps": 0.0101},
                                      "candidates": ["taps", "xla"],
                                      "repeats": 5, "measured_at": "2025-01-01T00:00:00Z"}}}

"seconds" is the best of `repeats` interleaved calls of each implementation's jitted
forward+backward (min, not median: on a shared CPU the minimum is the least disturbed
estimate of what each implementation can do). "candidates" are the implementations that
were available (a failed one has no "seconds"); an entry whose candidates differ from
the ones available now is stale (measured again by the next tune).

A run pins its choices (`pin`, from the run folder's runtime.json): pinned keys are
answered from the pin, never from the table, so a resumed run and every process of a
multi-process run compile the same program. `used_choices` lists what the dispatcher
answered in this process (for the run folder).
"""

import dataclasses
import datetime
import functools
import json
import logging
import os
import pathlib
import threading
import time
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from genjax import files
from genjax.kernels import xla_flags

CACHE_ENV = "GENJAX_AUTOTUNE_CACHE"
DEFAULT_CACHE = "~/.cache/genjax/conv_autotune.json"
FORMAT_VERSION = 1
# The default implementation is kept unless another is faster by more than this
# fraction: the default (XLA) is the one with the least memory and the most testing
# behind it, and smaller wins of isolated convolutions did not carry over into the
# train step (CIFAR UNet, XLA:CPU with genjax's flags: `taps` chosen at 5 shapes by
# 5-14% margins ran the step 0.97x as fast as `xla`, with 1% more temporaries).
SWITCH_MARGIN = 0.15
# Below this many direct-conv FLOPs (forward) a convolution takes about a millisecond
# or less on a small CPU: measuring it would cost more than a choice could save. It
# also leaves the batch-1 traces of model initialization unmeasured.
MIN_MEASURE_FLOPS = 5e8

log = logging.getLogger(__name__)


class AutotuneCacheError(ValueError):
  """The autotune cache file exists but is not a version-1 table."""


@functools.cache
def _host_cpu() -> str:
  """The CPU model and core count: on the CPU backend device_kind is just "cpu"."""
  name = "unknown"
  try:
    with open("/proc/cpuinfo") as f:
      name = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), name)
  except OSError:
    pass
  return f"{name} x{os.cpu_count()}"


@dataclasses.dataclass(frozen=True)
class ConvKey:
  """What the choice depends on. Shapes are the ones seen at trace time (global batch)."""
  platform: str
  device_kind: str      # on the CPU: the host's CPU model and core count
  jax_version: str
  batch: int
  height: int
  width: int
  cin: int
  cout: int
  kh: int
  kw: int
  stride: int
  dtype: str
  padding: str
  xla_cpu_flags: str = ""  # the --xla_cpu_* flags in XLA_FLAGS: they change XLA's kernels

  @classmethod
  def for_call(cls, x_shape, w_shape, dtype, *, stride: int, padding: str,
               device=None) -> "ConvKey":
    device = device or jax.devices()[0]
    b, h, w, cin = x_shape
    kh, kw, _, cout = w_shape
    cpu = device.platform == "cpu"
    kind = _host_cpu() if cpu else device.device_kind
    return cls(device.platform, kind, jax.__version__, b, h, w, cin, cout,
               kh, kw, stride, jnp.dtype(dtype).name, padding,
               xla_flags.cpu_flags_in_effect() if cpu else "")

  def __str__(self) -> str:
    return (f"{self.platform}|{self.device_kind}|jax{self.jax_version}|"
            f"{self.batch}x{self.height}x{self.width}x{self.cin}->{self.cout}|"
            f"{self.kh}x{self.kw}|s{self.stride}|{self.dtype}|{self.padding}"
            + (f"|{self.xla_cpu_flags}" if self.xla_cpu_flags else ""))

  @property
  def flops(self) -> float:
    """Direct-convolution FLOPs of the forward pass (2 per multiply-add)."""
    ho, wo = (self.height - 1) // self.stride + 1, (self.width - 1) // self.stride + 1
    return 2.0 * self.batch * ho * wo * self.cin * self.cout * self.kh * self.kw


def cache_path() -> pathlib.Path:
  return pathlib.Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def load(path: pathlib.Path) -> dict[str, dict]:
  """The entries of a cache file; {} if it does not exist. Raises AutotuneCacheError."""
  try:
    text = path.read_text()
  except FileNotFoundError:
    return {}
  try:
    table = json.loads(text)
  except json.JSONDecodeError as e:
    raise AutotuneCacheError(f"autotune cache {path}: not JSON ({e})") from e
  if not isinstance(table, dict) or table.get("version") != FORMAT_VERSION or not isinstance(
      table.get("entries"), dict):
    raise AutotuneCacheError(f"autotune cache {path}: expected {{'version': {FORMAT_VERSION}, "
                             f"'entries': {{...}}}}, got version {table.get('version')!r}"
                             if isinstance(table, dict) else
                             f"autotune cache {path}: expected a JSON object")
  return table["entries"]


def _load_or_empty(path: pathlib.Path) -> dict[str, dict]:
  try:
    return load(path)
  except (AutotuneCacheError, OSError) as e:
    log.warning("%s; measuring again and overwriting it", e)
    return {}


def store(path: pathlib.Path, key: str, entry: dict) -> None:
  """Adds one entry to the file: re-read, merge, write to a temporary file and rename
  (atomic, so a concurrent reader sees the old or the new table, never half of one)."""
  entries = _load_or_empty(path)
  entries[key] = entry
  files.write_text(path, json.dumps({"version": FORMAT_VERSION, "entries": entries}, indent=1,
                                    sort_keys=True))


def _random_operands(key: ConvKey, seed: int = 0):
  """Concrete NumPy operands of the keyed shape (x, w, output cotangent g)."""
  rng = np.random.default_rng(seed)
  dtype = jnp.dtype(key.dtype)
  ho, wo = (key.height - 1) // key.stride + 1, (key.width - 1) // key.stride + 1
  x = rng.standard_normal((key.batch, key.height, key.width, key.cin), np.float32)
  w = rng.standard_normal((key.kh, key.kw, key.cin, key.cout), np.float32)
  g = rng.standard_normal((key.batch, ho, wo, key.cout), np.float32)
  return x.astype(dtype), (w / np.sqrt(w[..., 0].size)).astype(dtype), g.astype(dtype)


def measure(key: ConvKey, candidates: Mapping[str, Callable], *, repeats: int = 5,
            timer: Callable[[], float] = time.perf_counter) -> dict[str, float]:
  """Best-of-`repeats` seconds of each candidate's jitted forward+backward on `key`.

  Each candidate is fn(x, w, *, stride, pad_mode). Runs outside any trace the caller
  may be in: its own programs, compiled on concrete arrays. A candidate that fails to
  compile or run is left out (logged)."""
  with jax.ensure_compile_time_eval():
    # Device arrays made by XLA (aligned as XLA aligns its own buffers), once: NumPy
    # operands would be transferred, or aliased as NumPy aligned them, on every call.
    operands = [jnp.array(a, copy=True) for a in _random_operands(key)]
  compiled = {}
  for name, fn in candidates.items():
    def fwd_bwd(x, w, g, fn=fn):
      y, vjp = jax.vjp(lambda x, w: fn(x, w, stride=key.stride, pad_mode=key.padding), x, w)
      return (y, *vjp(g))
    try:
      with jax.ensure_compile_time_eval():
        c = jax.jit(fwd_bwd).lower(*operands).compile()
        jax.block_until_ready(c(*operands))  # warm-up
      compiled[name] = c
    except Exception as e:  # pylint: disable=broad-except  (one failing candidate is not fatal)
      log.warning("autotune %s: implementation %r failed: %s", key, name, e)
  seconds = {name: float("inf") for name in compiled}
  with jax.ensure_compile_time_eval():
    for _ in range(repeats):  # interleaved: load from other processes hits all alike
      for name, c in compiled.items():
        t = timer()
        jax.block_until_ready(c(*operands))
        seconds[name] = min(seconds[name], timer() - t)
  return seconds


# Choices already made in this process, by cache file and key: a trace of a model asks
# for the same few keys many times, and the file is read once per key.
_memo: dict[tuple[str, str], str] = {}


def choose(key: ConvKey, candidates: Mapping[str, Callable], *, default: str,
           path: pathlib.Path | None = None, measure_fn: Callable | None = None,
           min_flops: float | None = None) -> str:
  """The cached choice for `key`, measured (and cached) if the table lacks it. Not for
  use inside a trace (it compiles and runs programs): see `lookup`.

  The fastest candidate wins, unless `default` is within SWITCH_MARGIN of it.
  Returns `default` without measuring when the convolution is smaller than
  `min_flops` (default MIN_MEASURE_FLOPS). `measure_fn` defaults to `measure`.
  An unreadable cache file is measured over and rewritten; an unwritable
  one is logged and the choice kept for this process only."""
  path = path or cache_path()
  memo_key = (str(path), str(key))
  if memo_key in _memo:
    return _memo[memo_key]
  if key.flops < (MIN_MEASURE_FLOPS if min_flops is None else min_flops):
    return default
  # An entry measured over other candidates (say, before oneDNN was built) is stale.
  cached = _table_entry(key, candidates, path)
  if cached is not None:
    _answers.missing.pop(str(key), None)
    return cached
  repeats = 5
  seconds = (measure_fn or measure)(key, candidates, repeats=repeats)
  finite = {n: s for n, s in seconds.items() if np.isfinite(s)}
  impl = min(finite, key=finite.get) if finite else default
  if default in finite and finite[default] <= (1 + SWITCH_MARGIN) * finite[impl]:
    impl = default
  log.info("autotune %s: %s (%s)", key, impl,
           ", ".join(f"{n} {1e3 * s:.2f} ms" for n, s in seconds.items()))
  entry = {"impl": impl, "seconds": finite, "candidates": sorted(candidates), "repeats": repeats,
           "measured_at": datetime.datetime.now(datetime.timezone.utc).strftime(
               "%Y-%m-%dT%H:%M:%SZ")}
  try:
    store(path, str(key), entry)
  except OSError as e:
    log.warning("autotune cache %s not written (%s); the choice holds for this process", path, e)
  _memo[memo_key] = impl
  _answers.missing.pop(str(key), None)
  return impl


class _Answers(threading.local):
  """What the dispatcher answered in this thread (key string -> implementation) and the keys
  it found no table entry for. Per thread: a run traces its train step in a thread of its
  own while the main thread builds the state (genjax.train.runtime), and each trace's
  choices are its own."""

  def __init__(self):
    self.used: dict[str, str] = {}
    self.missing: dict[str, "ConvKey"] = {}


_answers = _Answers()
# The choices pinned by the run (key string -> name), for every thread.
_pinned: dict[str, str] = {}


def _table_entry(key: ConvKey, candidates, path: pathlib.Path) -> str | None:
  """The table's implementation for `key`, if its entry was measured over `candidates`."""
  memo_key = (str(path), str(key))
  if memo_key in _memo:
    return _memo[memo_key]
  entry = _load_or_empty(path).get(str(key))
  if entry is not None and set(entry.get("candidates", entry.get("seconds", ()))) == set(
      candidates) and entry.get("impl") in candidates:
    _memo[memo_key] = entry["impl"]
    return entry["impl"]
  return None


def lookup(key: ConvKey, candidates, *, default: str, path: pathlib.Path | None = None,
           min_flops: float | None = None) -> str:
  """The choice for `key` without measuring: safe inside a trace.

  A pinned choice first (if it is one of `candidates`; else `default`, logged), then the
  table's entry; a key with no usable entry gets `default` and is noted in
  `missing_keys()`. Convolutions below `min_flops` (default MIN_MEASURE_FLOPS) get
  `default` and are not noted."""
  name = str(key)
  if _pin_key(name) in _pinned:
    impl = _pinned[_pin_key(name)]
    if impl not in candidates:
      log.warning("conv %s: the run folder pins %r, not available here (%s); using %r",
                  key, impl, ", ".join(candidates), default)
      impl = default
  elif key.flops < (MIN_MEASURE_FLOPS if min_flops is None else min_flops):
    return default
  else:
    impl = _table_entry(key, candidates, path or cache_path())
    if impl is None:
      _answers.missing[name] = key
      impl = default
  _answers.used[name] = impl
  return impl


def _pin_key(key: str) -> str:
  """A key string without the device kind: the processes of a multi-process run may run on
  hosts whose CPUs are named differently, and must still pin the same choices."""
  parts = key.split("|")
  return "|".join(parts[:1] + parts[2:])


def pin(choices: Mapping[str, str], *, replace: bool = False) -> None:
  """Answers these key strings with these implementations from now on (see lookup); the
  device kind in the key is not compared. replace: forget earlier pins first (a new run
  in the same process)."""
  if replace:
    _pinned.clear()
  _pinned.update({_pin_key(k): v for k, v in choices.items()})


def used_choices() -> dict[str, str]:
  """Key string -> implementation the dispatcher answered in this thread."""
  return dict(_answers.used)


def missing_keys() -> list[ConvKey]:
  """The keys the dispatcher found no table entry for in this thread (answered with the
  default)."""
  return list(_answers.missing.values())


def forget_used() -> None:
  """Forget what the dispatcher answered and missed so far (before tracing the program
  whose choices are to be recorded, e.g. after model init traced at batch 1)."""
  _answers.used.clear()
  _answers.missing.clear()


def clear_memo() -> None:
  """Forget the choices made, used, missed and pinned in this process (the file stays):
  tests, and re-tuning."""
  _memo.clear()
  _answers.used.clear()
  _answers.missing.clear()
  _pinned.clear()
