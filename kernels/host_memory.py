"""glibc malloc settings for XLA:CPU runs (opt-in), and handing freed memory back.

XLA:CPU allocates each run's temporary buffer with malloc (1.4 GB for the CIFAR train
step) and frees it when the run ends. glibc serves a block that large with a fresh mmap
and unmaps it on free: each run faults the whole buffer in again, page by zeroed page
(about 356,000 page faults per CIFAR train step).

`apply()` sets three glibc malloc parameters through mallopt(3): one arena for every
thread (M_ARENA_MAX = 1), no mmap-served blocks (M_MMAP_MAX = 0), and up to 2 GiB of freed
memory kept (M_TRIM_THRESHOLD, M_TOP_PAD). The buffer is then reused without faults, and
a CIFAR train step takes 10-13% less CPU time. It is OFF by default (GENJAX_MALLOC=1
turns it on) because the heap fragments: once something is allocated above a freed
buffer and carved out of it, the next run's buffer no longer fits and the heap grows by a
whole buffer. Measured in one session on the CIFAR train step (benchmarks/README.md): 6 of
10 processes with these settings grew from 2.4-2.7 GB to 4.4-7.1 GB within 10 steps, none
of 8 with glibc's defaults. Trimming the holes after each step (malloc_trim with the top
kept) did not stop it (2 of 2 grew) and brought the faults back. Predictable memory is
worth more than the 10-13% of CPU time.

`release()` hands the heap's free memory back (malloc_trim(0)); the train loop calls it
once its step is compiled, so that the compiler's freed memory does not sit resident
under the first step's peak.

These are process-wide settings, so only entry points call `apply()` (the `genjax`
command, `python -m benchmarks`, the tests), first thing, before jax starts the threads
whose arenas they govern. Elsewhere than Linux with glibc both do nothing.
"""

import ctypes
import ctypes.util
import os
import platform
from collections.abc import Mapping

OPT_IN_ENV = "GENJAX_MALLOC"
# mallopt(3) parameter numbers, from glibc's <malloc.h>.
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX, M_ARENA_MAX = -1, -2, -4, -8
KEEP_BYTES = 2**31 - 1  # mallopt takes an int: 2 GiB is the most it can keep
SETTINGS = ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, KEEP_BYTES),
            (M_TOP_PAD, KEEP_BYTES))


def apply(environ: Mapping[str, str] | None = None) -> bool:
  """Sets SETTINGS with mallopt if GENJAX_MALLOC=1; returns whether all were set (False
  also off Linux / glibc, where nothing changes)."""
  environ = os.environ if environ is None else environ
  if environ.get(OPT_IN_ENV, "0") != "1" or platform.system() != "Linux":
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
