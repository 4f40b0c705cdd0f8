"""XLA:CPU flags that make convolution training faster, set before the backend starts.

jax 0.10's XLA:CPU hands every float32 convolution to YNNPACK (the fusion type
"individual_convolution"). YNNPACK's forward convolution and input gradient run near
the matrix-product rate, but its weight gradient runs at 45-75% of it. With that one
fusion type switched off, XLA's own convolution runs all three passes, the weight
gradient at 70-100% of the matrix-product rate and the other two about as fast as
before (benchmarks/README.md has the table and the command). Matrix products and the
other YNNPACK fusions are unchanged.

XLA reads its flags once, when the CPU backend starts: they must be in XLA_FLAGS
before the first jax computation. The `genjax` command and `python -m benchmarks`
call `apply()` first thing; code that embeds genjax can call it before its own first
jax computation, or set the flags itself. GENJAX_XLA_FLAGS=0 turns this off; a flag
that XLA_FLAGS already names is left as the user set it.
"""

import os
from collections.abc import MutableMapping

# What each flag does is in the module docstring.
CPU_CONV_FLAGS = ("--xla_cpu_experimental_ynn_fusion_type=-individual_convolution",)
OPT_OUT_ENV = "GENJAX_XLA_FLAGS"


def _name(flag: str) -> str:
  return flag.split("=", 1)[0]


def with_cpu_conv_flags(xla_flags: str) -> str:
  """`xla_flags` (an XLA_FLAGS value) plus the CPU_CONV_FLAGS it does not name already."""
  present = {_name(f) for f in xla_flags.split()}
  added = [f for f in CPU_CONV_FLAGS if _name(f) not in present]
  return " ".join([*xla_flags.split(), *added])


def apply(environ: MutableMapping[str, str] | None = None) -> bool:
  """Adds CPU_CONV_FLAGS to environ["XLA_FLAGS"] (default os.environ) unless
  GENJAX_XLA_FLAGS=0. Returns whether XLA_FLAGS changed. Has effect only if called
  before jax starts its CPU backend."""
  environ = os.environ if environ is None else environ
  if environ.get(OPT_OUT_ENV, "1") == "0":
    return False
  old = environ.get("XLA_FLAGS", "")
  new = with_cpu_conv_flags(old)
  if new.split() == old.split():
    return False
  environ["XLA_FLAGS"] = new
  return True


def cpu_flags_in_effect(environ: MutableMapping[str, str] | None = None) -> str:
  """The --xla_cpu_* flags of XLA_FLAGS, sorted: what a CPU timing depends on."""
  environ = os.environ if environ is None else environ
  return " ".join(sorted(f for f in environ.get("XLA_FLAGS", "").split()
                         if f.startswith("--xla_cpu_")))
