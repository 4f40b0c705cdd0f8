"""host_memory.apply (opt-in): glibc keeps freed memory, so a repeated large allocation stops
page-faulting; host_memory.release hands freed heap memory back (each checked in a fresh
process: the settings are process-wide)."""

import os
import platform
import subprocess
import sys

import pytest

from genjax.kernels import host_memory

# Allocates, touches and frees 256 MB five times; prints the page faults of the last four.
PROBE = """
import resource, sys
from genjax.kernels import host_memory
print(host_memory.apply(), file=sys.stderr)
def touch():
  b = bytearray(256 << 20)      # calloc-like: glibc hands out fresh (mmap) or reused pages
  b[::4096] = b"x" * len(b[::4096])
touch()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
  touch()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(opt_out: bool) -> int:
  env = {**os.environ, host_memory.OPT_IN_ENV: "0" if opt_out else "1"}
  done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                        check=True)
  return int(done.stdout.split()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_freed_memory_is_reused_without_page_faults():
  pages = 4 * (256 << 20) // 4096
  assert _faults(opt_out=True) > pages // 2   # glibc's default: mmap, unmap, fault again
  assert _faults(opt_out=False) < pages // 20


def test_off_unless_asked_for():
  assert not host_memory.apply({})
  assert not host_memory.apply({host_memory.OPT_IN_ENV: "0"})


# 256 MB in 64 KB blocks (heap blocks, not mmap), touched, then all freed but every 64th: the
# kept blocks hold the freed runs (252 MiB) away from the heap's top, wherever the allocator
# placed the first blocks (a single block allocated afterwards can land in an older hole and
# leave the freed run at the top, which free() then trims by itself); prints resident MiB
# before and after release().
RELEASE_PROBE = """
import ctypes, sys
from genjax.kernels import host_memory
host_memory.apply()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
def resident():
  return int([l for l in open("/proc/self/status") if l.startswith("VmRSS")][0].split()[1]) // 1024
blocks = [libc.malloc(64 << 10) for _ in range(4096)]
for b in blocks:
  ctypes.memset(b, 1, 64 << 10)
for i, b in enumerate(blocks):
  if i % 64 != 63:
    libc.free(b)
before = resident()
released = host_memory.release()
print(released, before, resident())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc_trim only")
def test_release_hands_freed_heap_memory_back():
  out = subprocess.run([sys.executable, "-c", RELEASE_PROBE], capture_output=True, text=True,
                       check=True).stdout.split()
  released, before, after = out[0] == "True", int(out[1]), int(out[2])
  assert released and before - after > 200, (before, after)  # of the 252 MiB freed
