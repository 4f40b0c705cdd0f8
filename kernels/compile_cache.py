"""jax's persistent compilation cache, on by default for the `genjax` command and the tests.

A compiled program (the train step, the sampler, model init) is written to the cache
folder the first time it is compiled and read back by every later process that compiles
the same program with the same jax, flags and devices: `genjax train` on resume,
`genjax sample`, `genjax vr`, a second run of the same config. The folder, first match:

  $JAX_COMPILATION_CACHE_DIR   jax's own setting, when the user set it;
  $GENJAX_CACHE_DIR/jax;
  $XDG_CACHE_HOME/genjax/jax;
  ~/.cache/genjax/jax.

GENJAX_COMPILE_CACHE=0 (or `genjax --no-compile-cache ...`) turns it off. Programs that
compile in under MIN_COMPILE_SECONDS are not written (their entries would cost more to
read than to compile); the size threshold is left at 0, so any size is kept. jax never
deletes entries: remove the folder to reclaim its space.
"""

import os
import pathlib
from collections.abc import Mapping

OPT_OUT_ENV = "GENJAX_COMPILE_CACHE"
DIR_ENV = "GENJAX_CACHE_DIR"
JAX_DIR_ENV = "JAX_COMPILATION_CACHE_DIR"
# jax's default is 1 s; the CIFAR train step compiles in ~25 s, its sampler in ~10 s, and
# the small programs around them (init, the finite check) in 0.1-0.5 s each: these too add
# up to seconds at start-up.
MIN_COMPILE_SECONDS = 0.1


def cache_dir(environ: Mapping[str, str] | None = None) -> pathlib.Path:
  """The cache folder for these environment variables (see the module docstring)."""
  environ = os.environ if environ is None else environ
  if environ.get(JAX_DIR_ENV):
    return pathlib.Path(environ[JAX_DIR_ENV]).expanduser()
  if environ.get(DIR_ENV):
    return pathlib.Path(environ[DIR_ENV]).expanduser() / "jax"
  base = environ.get("XDG_CACHE_HOME") or "~/.cache"
  return pathlib.Path(base).expanduser() / "genjax" / "jax"


def enabled(environ: Mapping[str, str] | None = None) -> bool:
  environ = os.environ if environ is None else environ
  return environ.get(OPT_OUT_ENV, "1") != "0"


def enable(environ: Mapping[str, str] | None = None) -> dict:
  """Points jax at the cache folder unless GENJAX_COMPILE_CACHE=0; call before the first
  compilation. Returns the settings for the run folder: {"enabled", "dir",
  "min_compile_seconds"}."""
  import jax  # noqa: PLC0415  (this module is imported before jax by the entry points)
  environ = os.environ if environ is None else environ
  if not enabled(environ):
    jax.config.update("jax_enable_compilation_cache", False)
    return {"enabled": False, "why": f"{OPT_OUT_ENV}=0"}
  folder = cache_dir(environ)
  jax.config.update("jax_enable_compilation_cache", True)
  jax.config.update("jax_compilation_cache_dir", str(folder))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  return {"enabled": True, "dir": str(folder), "min_compile_seconds": MIN_COMPILE_SECONDS}
