"""Compiles kernels/conv_onednn.cc against the system's oneDNN on first use and registers
its XLA FFI targets.

oneDNN is the library behind PyTorch's CPU convolutions; XLA:CPU in jax 0.10 does not
send convolutions to it. No wheel on PyPI ships a oneDNN that fits (Intel's `onednn`
wheel is the SYCL build, 600 MB with its runtimes), so the library comes from the
system: Debian / Ubuntu `apt install libdnnl-dev` (oneDNN 2.x or 3.x), or any install
prefix with include/ and lib/ named by GENJAX_ONEDNN_ROOT. The C++ glue is compiled
by $CXX (default g++) in a few seconds, once per (source, oneDNN headers, jaxlib
version), into ~/.cache/genjax/kernels (GENJAX_KERNEL_CACHE overrides), written to a
temporary file and renamed, so concurrent processes never load half a library.

Without a compiler or oneDNN, `available()` is False and says why (`status()`): the
dispatcher then never measures or picks "onednn". GENJAX_ONEDNN=0 turns it off.
"""

import ctypes
import dataclasses
import functools
import hashlib
import os
import pathlib
import shutil
import subprocess
import tempfile

import jax

from genjax import files

SOURCE = pathlib.Path(__file__).with_name("conv_onednn.cc")
TARGETS = ("genjax_onednn_conv_fwd", "genjax_onednn_conv_bwd_data",
           "genjax_onednn_conv_bwd_weights", "genjax_onednn_winograd_fwd",
           "genjax_onednn_winograd_bwd")
ROOT_ENV = "GENJAX_ONEDNN_ROOT"
CACHE_ENV = "GENJAX_KERNEL_CACHE"
OPT_OUT_ENV = "GENJAX_ONEDNN"
DEFAULT_CACHE = "~/.cache/genjax/kernels"
HEADER = pathlib.Path("oneapi", "dnnl", "dnnl.hpp")
SYSTEM_INCLUDES = ("/usr/include", "/usr/local/include")
COMPILE_TIMEOUT_S = 600


class OneDnnUnavailable(RuntimeError):
  """The oneDNN convolutions cannot be used here; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class Toolchain:
  compiler: str
  include_dir: pathlib.Path      # holds oneapi/dnnl/dnnl.hpp
  lib_dir: pathlib.Path | None   # None: the linker's default search path


def find_toolchain(environ=None) -> Toolchain:
  """The compiler and oneDNN to build with. Raises OneDnnUnavailable."""
  environ = os.environ if environ is None else environ
  compiler = shutil.which(environ.get("CXX") or "g++")
  if compiler is None:
    raise OneDnnUnavailable(f"no C++ compiler ({environ.get('CXX') or 'g++'}) on PATH")
  root = environ.get(ROOT_ENV)
  if root:
    include, lib = pathlib.Path(root, "include"), pathlib.Path(root, "lib")
    if not (include / HEADER).is_file():
      raise OneDnnUnavailable(f"${ROOT_ENV}={root}: no {include / HEADER}")
    return Toolchain(compiler, include, lib)
  for include in map(pathlib.Path, SYSTEM_INCLUDES):
    if (include / HEADER).is_file():
      return Toolchain(compiler, include, None)
  raise OneDnnUnavailable(
      f"oneDNN headers not found ({HEADER} under {', '.join(SYSTEM_INCLUDES)}): install "
      f"them with `apt install libdnnl-dev`, or set ${ROOT_ENV} to an install prefix")


def _cache_dir(environ) -> pathlib.Path:
  return pathlib.Path(environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def library_path(tools: Toolchain, environ=None) -> pathlib.Path:
  """Where the built library lives: named by a hash of everything it is built from."""
  environ = os.environ if environ is None else environ
  digest = hashlib.sha256()
  for part in (SOURCE.read_bytes(), (tools.include_dir / HEADER).read_bytes(),
               (tools.include_dir / "oneapi/dnnl/dnnl_config.h").read_bytes(),
               jax.ffi.include_dir().encode(), jax.__version__.encode(),
               tools.compiler.encode(), str(tools.lib_dir).encode()):
    digest.update(part)
  return _cache_dir(environ) / f"conv_onednn-{digest.hexdigest()[:16]}.so"


def build(tools: Toolchain, out: pathlib.Path) -> pathlib.Path:
  """Compiles SOURCE into `out` (atomically). Raises OneDnnUnavailable with the
  compiler's message on failure."""
  out.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=out.stem, suffix=".so.tmp")
  os.close(fd)
  lib_flags = ([f"-L{tools.lib_dir}", f"-Wl,-rpath,{tools.lib_dir}"] if tools.lib_dir else [])
  cmd = [tools.compiler, "-O2", "-std=c++17", "-shared", "-fPIC", "-w", str(SOURCE), "-o", tmp,
         f"-I{jax.ffi.include_dir()}", f"-I{tools.include_dir}", *lib_flags, "-ldnnl"]
  try:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
    if done.returncode != 0:
      raise OneDnnUnavailable(f"compiling {SOURCE.name} failed ({' '.join(cmd)}):\n"
                              f"{done.stderr[-2000:]}")
    files.write_bytes(out, pathlib.Path(tmp).read_bytes())  # synced, then renamed into place
  finally:
    if os.path.exists(tmp):
      os.unlink(tmp)
  return out


@functools.cache
def _load() -> tuple[ctypes.CDLL | None, str | None]:
  """Builds (if needed), loads and registers the targets once per process. Returns
  (the library, None) on success, else (None, why not)."""
  if os.environ.get(OPT_OUT_ENV, "1") == "0":
    return None, f"turned off by {OPT_OUT_ENV}=0"
  try:
    tools = find_toolchain()
    path = library_path(tools)
    if not path.is_file():
      build(tools, path)
    lib = ctypes.CDLL(str(path))
  except (OneDnnUnavailable, OSError, subprocess.TimeoutExpired) as e:
    return None, str(e)
  for name in TARGETS:
    jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(lib, name)), platform="cpu")
  return lib, None


def status() -> str | None:
  """None when the oneDNN convolutions are ready to call; else the reason they are not."""
  return _load()[1]


def library() -> ctypes.CDLL:
  """The loaded glue, for its plain C functions. Raises OneDnnUnavailable."""
  require()
  return _load()[0]


def available() -> bool:
  return status() is None


def require() -> None:
  """Raises OneDnnUnavailable (with the reason) unless the targets are registered."""
  reason = status()
  if reason is not None:
    raise OneDnnUnavailable(f"conv2d impls 'onednn', 'winograd' are not available: {reason}")
