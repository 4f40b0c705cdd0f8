"""Shared benchmark helpers: compile outside the timer, median of repeats, tables, JSON."""

import json
import os
import pathlib
import platform
import resource
import statistics
import time

import jax
import numpy as np

from genjax.kernels import host_memory, xla_flags


def device_info() -> dict:
  d = jax.devices()[0]
  return {"platform": d.platform, "device_kind": d.device_kind, "device_count": jax.device_count(),
          "cpu_count": os.cpu_count(), "machine": platform.machine(), "jax": jax.__version__,
          "xla_cpu_flags": xla_flags.cpu_flags_in_effect()}


def time_call(fn, *args, repeats: int = 5, warmup: int = 1) -> list[float]:
  """Seconds per call of an already compiled fn, each call waited for with block_until_ready."""
  for _ in range(warmup):
    jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t)
  return times


def process_cpu_seconds() -> float:
  """User + system CPU time of all threads of this process so far."""
  r = resource.getrusage(resource.RUSAGE_SELF)
  return r.ru_utime + r.ru_stime


def time_and_cpu(fn, *args) -> tuple[float, float]:
  """(wall seconds, process CPU seconds) of one call, waited for with block_until_ready.

  On a CPU shared with other processes the wall time includes the time this process
  was not scheduled; the CPU time counts only the work of its threads (and their
  spin-waiting), so it is the steadier of the two for comparing implementations."""
  c, t = process_cpu_seconds(), time.perf_counter()
  jax.block_until_ready(fn(*args))
  return time.perf_counter() - t, process_cpu_seconds() - c


def median(xs) -> float:
  return statistics.median(xs)


def memory_analysis(compiled) -> dict:
  """XLA's compiled memory: arguments, outputs, temporaries (bytes); {} where unsupported."""
  m = compiled.memory_analysis()
  if m is None:
    return {}
  fields = ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes",
            "alias_size_in_bytes", "generated_code_size_in_bytes")
  return {f.removesuffix("_size_in_bytes"): int(getattr(m, f, 0)) for f in fields}


def peak_rss_bytes() -> int:
  """Peak resident memory of this process so far (Linux reports KiB)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def print_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> None:
  """columns: (key, header, format spec)."""
  cells = [[h for _, h, _ in columns]]
  for r in rows:
    cells.append([format(r[k], f) if r.get(k) is not None else "-" for k, _, f in columns])
  widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
  for i, row in enumerate(cells):
    print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
    if i == 0:
      print("  ".join("-" * w for w in widths))


def write_json(path, payload: dict) -> None:
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_suffix(".tmp")
  tmp.write_text(json.dumps(payload, indent=2))
  os.replace(tmp, path)


def markdown_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
  """The rows as a markdown table; columns as in print_table: (key, header, format spec)."""
  lines = ["| " + " | ".join(h for _, h, _ in columns) + " |", "|" + "---|" * len(columns)]
  for r in rows:
    lines.append("| " + " | ".join(format(r[k], f) if r.get(k) is not None else "-"
                                   for k, _, f in columns) + " |")
  return "\n".join(lines) + "\n"


def compiled_train_step(config):
  """Builds the state (sharded on the config's mesh), a random batch and the compiled step.

  Returns (compiled_step, state, batch, abstract_state, compile_seconds); the step is
  lowered and compiled outside any timer. As `genjax train` does, a CPU run with conv
  implementation "auto" first measures the convolutions the autotune table lacks
  (genjax.train.runtime.tune_step), outside the timers.
  """
  from genjax.train import loop, runtime, sharding  # noqa: PLC0415 (genjax imported lazily)
  mesh = sharding.make_mesh(config.mesh)
  *_, create = loop.build(config)
  key = jax.random.PRNGKey(0)
  abstract = jax.eval_shape(create, key)
  shardings = sharding.state_shardings(abstract, mesh)
  state = jax.jit(create, out_shardings=shardings)(key)
  b = config.train.batch_size
  h, w = config.data.image_size
  rng = np.random.default_rng(0)
  batch = loop.global_batch({"image": rng.uniform(-1, 1, (b, h, w, 3)).astype(np.float32),
                             "label": np.zeros((b,), np.int32)}, mesh)
  make = lambda: loop.make_step_fn(config, mesh, shardings)  # noqa: E731
  step_fn = runtime.tune_step(make, state, batch)[0] if runtime.tunable(config) else make()
  t = time.perf_counter()
  compiled = step_fn.lower(state, batch).compile()
  seconds = time.perf_counter() - t
  host_memory.release()  # as genjax train does after compiling (distributed.CompiledTogether)
  return compiled, state, batch, abstract, seconds


def page_faults() -> int:
  """Minor page faults of this process so far (pages the kernel mapped in on first touch)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def time_train_steps(compiled, state, batch, steps: int) -> tuple[list[float], dict]:
  """Runs one warm-up step (its loss must be finite), then `steps` timed steps. Returns
  (seconds per step, the last step's metrics plus "page_faults_per_step" and
  "cpu_s_per_step", the median process CPU time (user + system) of the timed steps: on a
  shared machine steadier than the wall time)."""
  state, metrics = compiled(state, batch)
  if not np.isfinite(float(metrics["loss"])):
    raise FloatingPointError("non-finite loss in the benchmark's warm-up step")
  times, cpu = [], []
  faults = page_faults()
  for _ in range(steps):
    t, c = time.perf_counter(), process_cpu_seconds()
    state, metrics = compiled(state, batch)
    jax.block_until_ready((state, metrics))
    times.append(time.perf_counter() - t)
    cpu.append(process_cpu_seconds() - c)
  return times, {**metrics, "page_faults_per_step": (page_faults() - faults) / max(steps, 1),
                 "cpu_s_per_step": median(cpu) if cpu else float("nan")}


def compiled_flops(compiled) -> float | None:
  """XLA's FLOP count of one call, or None where the backend does not report it."""
  try:
    cost = compiled.cost_analysis()
  except Exception:  # pylint: disable=broad-except  (not every backend implements it)
    return None
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else None
  flops = (cost or {}).get("flops")
  return float(flops) if flops and flops > 0 else None
