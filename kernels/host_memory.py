"""Keeps freed host memory in the process, so XLA:CPU runs stop page-faulting it in.

XLA:CPU allocates each run's temporary buffer with malloc (1.3 GB for the CIFAR train
step) and frees it when the run ends. glibc serves a block that large with a fresh
mmap (and so is every block above 64 MB asked for from a thread's own arena), and
unmaps it on free: each run faults the whole buffer in again, page by zeroed page.
Measured on the project's 2-core CPU: 335,000 page faults per CIFAR train step, a
quarter of its time (1381 -> 1083 ms per step with this module, 0 faults; the numbers
and the command are in benchmarks/README.md).

`apply()` sets three glibc malloc parameters through mallopt(3): one arena for every
thread (M_ARENA_MAX = 1: the main arena grows with brk, any size), no mmap-served
blocks (M_MMAP_MAX = 0), and up to 2 GiB of freed memory kept rather than returned
(M_TRIM_THRESHOLD, M_TOP_PAD). The process's resident memory then stays at its peak
between runs instead of dropping; the peak itself is usually unchanged or lower. The
risk is fragmentation: if a small allocation is carved out of the freed block, the
next run's block no longer fits in it and the heap grows by another one (seen once in
about 30 CIFAR train-step processes: peak RSS 4.4 GB instead of 3.0 GB, step time
unchanged). Programs whose temporaries exceed 2 GiB fault in the excess on each run,
as before.

These are process-wide settings, so only entry points call `apply()` (the `genjax`
command, `python -m benchmarks`, the tests), first thing, before jax starts the threads
whose arenas they govern. Code that embeds genjax may call it the same way.
GENJAX_MALLOC=0 turns it off. Elsewhere than Linux with glibc it does nothing.
"""

import ctypes
import ctypes.util
import os
import platform
from collections.abc import Mapping

OPT_OUT_ENV = "GENJAX_MALLOC"
# mallopt(3) parameter numbers, from glibc's <malloc.h>.
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX, M_ARENA_MAX = -1, -2, -4, -8
KEEP_BYTES = 2**31 - 1  # mallopt takes an int: 2 GiB is the most it can keep
SETTINGS = ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, KEEP_BYTES),
            (M_TOP_PAD, KEEP_BYTES))


def apply(environ: Mapping[str, str] | None = None) -> bool:
  """Sets SETTINGS with mallopt unless GENJAX_MALLOC=0; returns whether all were set
  (False also off Linux / glibc, where nothing changes)."""
  environ = os.environ if environ is None else environ
  if environ.get(OPT_OUT_ENV, "1") == "0" or platform.system() != "Linux":
    return False
  if platform.libc_ver()[0] != "glibc":
    return False
  libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
  return all(libc.mallopt(param, value) == 1 for param, value in SETTINGS)


def release() -> bool:
  """Hands the heap's free memory back to the system (glibc's malloc_trim(0)).

  Called once a run's programs are compiled: XLA's compiler frees hundreds of MB that
  glibc keeps as holes in the heap, still resident, under the first step's peak (the
  CIFAR train step: 1.43 GB resident after compiling, 0.90 GB after this). Returns
  whether memory was released; elsewhere than glibc it does nothing.
  """
  if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
    return False
  libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
  return bool(libc.malloc_trim(0))
