"""Shared benchmark helpers: compile outside the timer, median of repeats, tables, JSON."""

import json
import os
import pathlib
import platform
import resource
import statistics
import time

import jax


def device_info() -> dict:
  d = jax.devices()[0]
  return {"platform": d.platform, "device_kind": d.device_kind, "device_count": jax.device_count(),
          "cpu_count": os.cpu_count(), "machine": platform.machine(), "jax": jax.__version__}


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
