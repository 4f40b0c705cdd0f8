"""genjax benchmarks: `python -m benchmarks <name>`; see benchmarks/README.md.

They time what the `genjax` command runs: its XLA:CPU flags and malloc tuning on CPU
backends (genjax.kernels.process_settings) are applied here, before any benchmark starts
jax (GENJAX_XLA_FLAGS=0 and GENJAX_MALLOC=0 time jax's and glibc's defaults instead). The
persistent compilation cache stays off unless GENJAX_COMPILE_CACHE=1, so that compile
times are compile times (`first_step` measures the cache through the `genjax` command).
"""

import os

from genjax.kernels import process_settings

process_settings.apply(compile_cache_on=os.environ.get("GENJAX_COMPILE_CACHE") == "1")
