"""The optional oneDNN glue: `build()` compiles kernels/conv_onednn.cc against the system's
oneDNN, as an explicit step; at run time `_load()` only loads a library already built and
registers its XLA FFI targets.

    python -m genjax.kernels.onednn_build      # needs g++ and `apt install libdnnl-dev`

oneDNN is the library behind PyTorch's CPU convolutions; XLA:CPU in jax 0.10 does not
send convolutions to it. No wheel on PyPI ships a oneDNN that fits (Intel's `onednn`
wheel is the SYCL build, 600 MB with its runtimes), so the library comes from the
system: Debian / Ubuntu `apt install libdnnl-dev` (oneDNN 2.x or 3.x), or any install
prefix with include/ and lib/ named by GENJAX_ONEDNN_ROOT. The C++ glue is compiled
by $CXX (default g++) in a few seconds, per (source, jax version), into
~/.cache/genjax/kernels (GENJAX_KERNEL_CACHE overrides), written to a temporary file and
renamed, so concurrent processes never load half a library.

Nothing is compiled while a model is traced, nor at any time but the explicit build:
the default path is XLA's own convolution. Without the built library `available()` is
False and `status()` says why in one line (the dispatcher then never picks "onednn" or
"winograd"). GENJAX_ONEDNN=0 turns a built library off.
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


def library_path(environ=None) -> pathlib.Path:
  """Where the built library lives: named by a hash of the source and the jax version
  (what its FFI calls must match), so finding it needs neither compiler nor headers."""
  environ = os.environ if environ is None else environ
  digest = hashlib.sha256()
  for part in (SOURCE.read_bytes(), jax.ffi.include_dir().encode(), jax.__version__.encode()):
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


def build_library(environ=None) -> pathlib.Path:
  """The explicit build step: compiles the glue into `library_path()` unless it is there.
  Raises OneDnnUnavailable (no compiler, no headers, a compile error)."""
  path = library_path(environ)
  if not path.is_file():
    try:
      build(find_toolchain(environ), path)
    except subprocess.TimeoutExpired as e:
      raise OneDnnUnavailable(f"compiling {SOURCE.name} took over {COMPILE_TIMEOUT_S} s") from e
  return path


@functools.cache
def _load() -> tuple[ctypes.CDLL | None, str | None]:
  """Loads an already built library and registers the targets, once per process; never
  compiles. Returns (the library, None) on success, else (None, why not)."""
  if os.environ.get(OPT_OUT_ENV, "1") == "0":
    return None, f"turned off by {OPT_OUT_ENV}=0"
  path = library_path()
  if not path.is_file():
    return None, ("the optional oneDNN glue is not built (XLA's convolution is used); to opt "
                  "in: apt install libdnnl-dev g++, then python -m genjax.kernels.onednn_build")
  try:
    lib = ctypes.CDLL(str(path))
  except OSError as e:
    return None, f"loading {path} failed ({e}); rebuild: python -m genjax.kernels.onednn_build"
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


def main(argv=None) -> int:
  """`python -m genjax.kernels.onednn_build`: builds the glue; one line saying where, or why not."""
  del argv
  try:
    path = build_library()
  except OneDnnUnavailable as e:
    print(f"oneDNN glue not built, genjax stays on XLA's convolution: {e}")
    return 1
  _load.cache_clear()
  reason = status()
  print(f"built {path}" + (f"; but it does not load: {reason}" if reason else
                           "; conv2d may now pick 'onednn' and 'winograd' (genjax tune)"))
  return 0 if reason is None else 1


if __name__ == "__main__":
  raise SystemExit(main())
