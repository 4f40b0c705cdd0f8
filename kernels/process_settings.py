"""The process-wide settings of genjax's entry points, applied only where they help.

`apply()` is called first thing by the `genjax` command, `python -m benchmarks` and the
tests, before jax starts a backend:

  - the XLA:CPU flags (genjax.kernels.xla_flags) and, if GENJAX_MALLOC=1 asks for it, the
    malloc tuning (genjax.kernels.host_memory), only when jax will run on the CPU: not when
    JAX_PLATFORMS names another platform, nor when a GPU or TPU plugin is installed
    (jax then picks the accelerator, and the host's allocator is the accelerator
    runtime's business);
  - jax's persistent compilation cache (genjax.kernels.compile_cache), on every backend.

What was applied, and the environment variables that change what genjax computes, are
kept (`applied()`) for the run folder's runtime.json (genjax.train.runtime).
"""

import importlib.metadata
import importlib.util
import os
from collections.abc import Mapping, MutableMapping

from genjax.kernels import compile_cache, host_memory, xla_flags

# Environment variables that change what genjax computes or how: recorded with each run.
RECORDED_ENV = ("GENJAX_CONV_IMPL", "GENJAX_ONEDNN", "GENJAX_MALLOC", "GENJAX_XLA_FLAGS",
                "GENJAX_COMPILE_CACHE", "GENJAX_AUTOTUNE_CACHE", "XLA_FLAGS", "JAX_PLATFORMS",
                "JAX_ENABLE_X64", "JAX_DEFAULT_MATMUL_PRECISION")

_applied: dict = {}


def cpu_backend_expected(environ: Mapping[str, str] | None = None) -> bool:
  """Whether jax will run on the CPU, decided before its backends start: JAX_PLATFORMS if
  set, else whether a GPU / TPU plugin is installed (jax prefers those)."""
  environ = os.environ if environ is None else environ
  platforms = [p.strip() for p in environ.get("JAX_PLATFORMS", "").split(",") if p.strip()]
  if platforms:
    return platforms[0] == "cpu"
  if importlib.util.find_spec("libtpu") is not None:
    return False
  return not list(importlib.metadata.entry_points(group="jax_plugins"))


def apply(environ: MutableMapping[str, str] | None = None, *, compile_cache_on: bool = True
          ) -> dict:
  """Applies the settings (see the module docstring); returns what was applied."""
  environ = os.environ if environ is None else environ
  cpu = cpu_backend_expected(environ)
  settings = {"cpu_backend_expected": cpu,
              "xla_cpu_flags_added": bool(cpu and xla_flags.apply(environ)),
              "malloc_tuned": bool(cpu and host_memory.apply(environ))}
  if not compile_cache_on:
    environ[compile_cache.OPT_OUT_ENV] = "0"  # so the subprocesses of this run agree
  settings["compile_cache"] = compile_cache.enable(environ)
  _applied.clear()
  _applied.update(settings)
  return dict(settings)


def applied() -> dict:
  """What `apply()` did in this process ({} if it was not called)."""
  return dict(_applied)


def recorded_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
  """The RECORDED_ENV variables that are set, with their values."""
  environ = os.environ if environ is None else environ
  return {k: environ[k] for k in RECORDED_ENV if k in environ}
