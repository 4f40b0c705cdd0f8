"""The run folder's runtime.json: what decides the computed program besides config.json.

    {"version": 1, "backend": "cpu", "device_kind": "cpu", "jax": "0.10.2", "process_count": 1,
     "conv": {"setting": "auto", "source": "config",
              "choices": {"<ConvKey string>": "xla", ...}, "onednn": "<why not> | built"},
     "process_settings": {"cpu_backend_expected": true, "xla_cpu_flags_added": true,
                          "malloc_tuned": false, "compile_cache": {"enabled": true, ...}},
     "environment": {"XLA_FLAGS": "...", "GENJAX_CONV_IMPL": "...", ...}}

"conv.choices" are the convolution implementations the dispatcher used for the train
step (genjax.kernels.autotune keys). A resumed run pins them (and a recorded
GENJAX_CONV_IMPL, when the environment sets none), so it compiles the same program
whatever the autotune table on the machine says now; in a multi-process run process 0
decides and writes the file, and every other process reads it and pins the same choices.
The file is written once, when a run starts, atomically (genjax.files).

Measuring belongs here, not to tracing: before the first step, a CPU run whose step meets
convolutions missing from the autotune table measures them (`genjax tune` does it
ahead), then traces the step again with the table complete.
"""

import concurrent.futures
import datetime
import logging
import os
import pathlib
import threading

import jax
import orbax.checkpoint as ocp

from genjax import files
from genjax.kernels import autotune, conv, onednn_build, process_settings

log = logging.getLogger("genjax.train")

FILE = "runtime.json"
VERSION = 1
_BARRIER_TIMEOUT_MS = 3600 * 1000


def read(workdir) -> dict | None:
  """The run folder's runtime.json, or None if it has none. Raises ValueError naming the
  file when it is not a version-1 record."""
  path = pathlib.Path(workdir) / FILE
  try:
    record = _read_json(path)
  except FileNotFoundError:
    return None
  if not isinstance(record, dict) or record.get("version") != VERSION:
    raise ValueError(f"{path}: not a version-{VERSION} runtime record")
  return record


def _read_json(path: pathlib.Path):
  import json  # noqa: PLC0415
  try:
    return json.loads(path.read_text())
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: not JSON ({e})") from e


def conv_setting(config) -> tuple[str, str]:
  """(the conv implementation setting, where it came from): $GENJAX_CONV_IMPL or the config."""
  env = os.environ.get(conv.IMPL_ENV, "")
  if env:
    return env, conv.IMPL_ENV
  return config.kernels.conv_impl, "config"


def restore_settings(workdir) -> dict | None:
  """On resume: pins the recorded conv choices and, when the environment names none, the
  recorded GENJAX_CONV_IMPL; warns about recorded variables that differ now. Call before
  the model is built. Returns the record (None for a new run)."""
  record = read(workdir)
  # Replaces the pins of an earlier run in this process (tests, notebooks): none for a new run.
  autotune.pin({} if record is None else record.get("conv", {}).get("choices", {}),
               replace=True)
  if record is None:
    return None
  recorded_env = record.get("environment", {})
  if conv.IMPL_ENV in recorded_env and conv.IMPL_ENV not in os.environ:
    os.environ[conv.IMPL_ENV] = recorded_env[conv.IMPL_ENV]
    log.info("%s=%s from %s", conv.IMPL_ENV, recorded_env[conv.IMPL_ENV],
             pathlib.Path(workdir) / FILE)
  now = process_settings.recorded_environment()
  changed = sorted(k for k in set(now) | set(recorded_env) if now.get(k) != recorded_env.get(k))
  if changed:
    log.warning("%s: environment differs from the run's start: %s", pathlib.Path(workdir) / FILE,
                ", ".join(f"{k}={now.get(k)!r} (was {recorded_env.get(k)!r})" for k in changed))
  return record


def tunable(config) -> bool:
  """Whether the conv dispatcher would consult the CPU autotune table for this run."""
  setting, _ = conv_setting(config)
  return jax.default_backend() == "cpu" and setting in ("", "auto")


def tune_step(make_step, state, batch, *, before_measuring=None):
  """Traces the jitted step from `make_step()`; if it meets CPU convolutions missing from
  the autotune table, measures them (outside the trace; after `before_measuring()`, if
  given) and traces a new step. `state`, `batch`: arrays or jax.ShapeDtypeStructs with
  shardings. Returns (the jitted step, already traced for these arguments, the keys
  measured)."""
  autotune.forget_used()  # model init's choices (batch 1) are not the step's
  step = make_step()
  step.trace(state, batch)
  missing = autotune.missing_keys()
  if not missing:
    return step, []
  if before_measuring is not None:
    before_measuring()
  log.info("conv autotune: measuring %d convolution shapes once (cached in %s; "
           "`genjax tune` does it ahead)", len(missing), autotune.cache_path())
  conv.tune(missing)
  step = make_step()
  step.trace(state, batch)
  return step, missing


def record(config) -> dict:
  """The runtime record of this process (see the module docstring)."""
  setting, source = conv_setting(config)
  device = jax.devices()[0]
  return {
      "version": VERSION,
      "written_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
      "backend": device.platform, "device_kind": device.device_kind, "jax": jax.__version__,
      "process_count": jax.process_count(),
      "conv": {"setting": setting, "source": source, "choices": autotune.used_choices(),
               "onednn": onednn_build.status() or "built"},
      "process_settings": process_settings.applied(),
      "environment": process_settings.recorded_environment()}


def prepare_step(config, workdir, make_step, state, batch, *, recorded: dict | None,
                 before_measuring=None):
  """The jitted train step of a run, its convolution choices settled and recorded.

  New run: tunes on the CPU (process 0 only in a multi-process run; the others wait,
  then pin what it wrote) and writes runtime.json. Resumed run (`recorded` from
  restore_settings): the choices are already pinned. `state`, `batch`: arrays or
  jax.ShapeDtypeStructs; `before_measuring`: see tune_step."""
  workdir = pathlib.Path(workdir)
  if recorded is not None:
    return make_step()
  is_main = jax.process_index() == 0
  step = None
  if is_main:
    if batch is None:  # no step left to run: nothing to tune
      step = make_step()
    elif tunable(config):
      step, _ = tune_step(make_step, state, batch, before_measuring=before_measuring)
    else:
      autotune.forget_used()
      step = make_step()
      step.trace(state, batch)  # the choices it records (jit reuses this trace)
    files.write_json(workdir / FILE, record(config))
  if jax.process_count() > 1:
    ocp.multihost.get_barrier_sync_fn()(key="genjax_runtime_json", timeout_ms=_BARRIER_TIMEOUT_MS)
    if not is_main:
      autotune.pin(read(workdir)["conv"]["choices"])
      step = make_step()
  return step


class _Cancelled(Exception):
  pass


class StepAhead:
  """A run's train step, settled (prepare_step; `recorded`: a resumed run's record, see
  restore_settings), lowered and compiled in a thread of its own for abstract arguments
  (`state_spec`, `batch_spec`: jax.ShapeDtypeStructs with the shardings of the arrays to
  come, so the same program), while the main thread builds or restores the state.
  Tracing and lowering are Python; XLA's compile (or its read from the persistent cache)
  releases the GIL, so the two threads overlap on the CPU's cores.

  Convolutions missing from the autotune table are measured only after `state_built()`:
  no timing is taken beside a compile. `future` holds the compiled step (or the error).
  One process only: a multi-process run settles its step at barriers, in order."""

  def __init__(self, config, workdir, make_step, state_spec, batch_spec, *,
               recorded: dict | None = None):
    self.future = concurrent.futures.Future()
    self._built = threading.Event()
    self._cancelled = False
    self._thread = threading.Thread(
        target=self._work, args=(config, workdir, make_step, state_spec, batch_spec, recorded),
        name="genjax-train-step")
    self._thread.start()

  def state_built(self, _state=None) -> None:
    """The main thread is done building the state (`_state`, when passed, is ready)."""
    self._built.set()

  def cancel(self) -> None:
    """The run failed before its first step: stop before measuring, if not done yet."""
    self._cancelled = True
    self._built.set()

  def _before_measuring(self) -> None:
    self._built.wait()
    if self._cancelled:
      raise _Cancelled

  def _work(self, config, workdir, make_step, state_spec, batch_spec, recorded) -> None:
    try:
      step = prepare_step(config, workdir, make_step, state_spec, batch_spec,
                          recorded=recorded, before_measuring=self._before_measuring)
      self.future.set_result(step.lower(state_spec, batch_spec).compile())
    except BaseException as e:  # noqa: BLE001  (handed to the main thread by the future)
      self.future.set_exception(e)
