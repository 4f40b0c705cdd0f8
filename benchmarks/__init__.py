"""genjax benchmarks: `python -m benchmarks <name>`; see benchmarks/README.md.

They time what the `genjax` command runs: its XLA:CPU flags are set here, before any
benchmark starts jax (GENJAX_XLA_FLAGS=0 times jax's defaults instead).
"""

from genjax.kernels import xla_flags

xla_flags.apply()
