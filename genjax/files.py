"""Files written whole or not at all: a temporary file in the target's folder, fsynced, renamed.

Every file genjax writes for a user (images, JSON, .npz, exported samplers) goes through
`atomic_write`: a crash, a full disk or a kill leaves either the old file or the new one, never a
half-written one, and a failure removes the temporary file without hiding the first error.
"""

import contextlib
import json
import os
import pathlib
from typing import IO, Any, Iterator


def _fsync_dir(folder: pathlib.Path) -> None:
  # The rename is durable only once the folder's entry is on disk; not all filesystems allow
  # opening a folder (or fsyncing it), and the file itself is already synced, so failures pass.
  try:
    fd = os.open(folder, os.O_RDONLY)
  except OSError:
    return
  try:
    os.fsync(fd)
  except OSError:
    pass
  finally:
    os.close(fd)


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb") -> Iterator[IO[Any]]:
  """Opens a temporary file beside `path`; on success fsyncs it and renames it over `path`.

  mode: "wb" or "w" (text, UTF-8). The parent folder is created. On any exception the temporary
  file is removed (a failure to remove it is ignored so that the original error propagates) and
  `path` is left as it was.
  """
  if mode not in ("wb", "w"):
    raise ValueError(f"atomic_write mode must be 'wb' or 'w', got {mode!r}")
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
  try:
    with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(OSError):
      tmp.unlink(missing_ok=True)
    raise
  _fsync_dir(path.parent)


def write_bytes(path, data: bytes) -> pathlib.Path:
  """Writes `data` to `path` atomically (see `atomic_write`)."""
  with atomic_write(path, "wb") as f:
    f.write(data)
  return pathlib.Path(path)


def write_text(path, text: str) -> pathlib.Path:
  """Writes UTF-8 `text` to `path` atomically (see `atomic_write`)."""
  with atomic_write(path, "w") as f:
    f.write(text)
  return pathlib.Path(path)


def write_json(path, obj, *, indent: int | None = 2) -> pathlib.Path:
  """Writes `obj` as JSON (sorted keys are not forced: callers order their dicts) atomically."""
  return write_text(path, json.dumps(obj, indent=indent) + "\n")
