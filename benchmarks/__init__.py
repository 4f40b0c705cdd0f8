"""genjax benchmarks: `python -m benchmarks <name>`; see benchmarks/README.md.

They time what the `genjax` command runs: its XLA:CPU flags and malloc tuning on CPU
backends (genjax.kernels.process_settings) are applied before any benchmark starts
jax (GENJAX_XLA_FLAGS=0 and GENJAX_MALLOC=0 time jax's and glibc's defaults instead). The
persistent compilation cache stays off unless GENJAX_COMPILE_CACHE=1, so that compile
times are compile times (`first_step` measures the cache through the `genjax` command).

`setup()` does it: `python -m benchmarks` and every benchmark's `__main__` block call it
before any jax computation. Importing the package changes nothing (a test that imports a
benchmark keeps its own process settings).
"""

import os


def setup() -> dict:
  """Applies the `genjax` command's CPU process settings, compilation cache off unless
  GENJAX_COMPILE_CACHE=1; returns what was applied."""
  from genjax.kernels import process_settings
  return process_settings.apply(compile_cache_on=os.environ.get("GENJAX_COMPILE_CACHE") == "1")
