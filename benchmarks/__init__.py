"""genjax benchmarks: `python -m benchmarks <name>`; see benchmarks/README.md.

They time what the `genjax` command runs: its XLA:CPU flags and malloc settings are set
here, before any benchmark starts jax (GENJAX_XLA_FLAGS=0 and GENJAX_MALLOC=0 time
jax's and glibc's defaults instead).
"""

from genjax.kernels import host_memory, xla_flags

xla_flags.apply()
host_memory.apply()
