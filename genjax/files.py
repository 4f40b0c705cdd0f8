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


def check_can_create(path, what: str = "output", *, folder: bool = False) -> pathlib.Path:
  """Raises ValueError naming `path` when it cannot become a file or folder: a component of it
  is an existing file (`-o notes.txt/out`), or its nearest existing folder is not writable.

  folder: `path` is to be a folder (an existing file there is then an error too). Called
  before any expensive work, so a bad -o fails at once rather than after sampling. Creates
  nothing. Returns `path` as a Path.
  """
  path = pathlib.Path(path)
  if folder and path.exists() and not path.is_dir():
    raise ValueError(f"{what} {path} is a file, not a folder")
  for parent in [path, *path.parents]:
    if parent.exists():
      break
  else:
    parent = pathlib.Path(".")
  if parent != path and not parent.is_dir():
    raise ValueError(f"{what} {path}: {parent} is a file, not a folder")
  folder = parent if parent.is_dir() else parent.parent
  if not os.access(folder, os.W_OK | os.X_OK):
    raise ValueError(f"{what} {path}: folder {folder} is not writable")
  return path


def path_key(path) -> str:
  # Case-folded: a case-insensitive filesystem (macOS, Windows, some mounts) holds a.PNG and
  # a.png as one file, and we cannot tell cheaply which kind the folder is on.
  return os.path.normcase(str(pathlib.Path(path).resolve())).casefold()


class InputFiles:
  """The user's input files, to check that no output lands on one of them.

  A target collides with an input when both paths are equal once resolved (symlinks, `..`)
  and case-folded, or when the target exists and is the same inode (a hard link).
  """

  def __init__(self, inputs):
    self._by_key, self._by_inode = {}, {}
    for p in inputs:
      p = pathlib.Path(p)
      self._by_key.setdefault(path_key(p), p)
      try:
        st = p.stat()
        self._by_inode.setdefault((st.st_dev, st.st_ino), p)
      except OSError:
        pass

  def collision(self, target) -> pathlib.Path | None:
    """The input that writing `target` would overwrite, or None."""
    hit = self._by_key.get(path_key(target))
    if hit is None:
      try:
        st = pathlib.Path(target).stat()
        hit = self._by_inode.get((st.st_dev, st.st_ino))
      except OSError:
        pass
    return hit
