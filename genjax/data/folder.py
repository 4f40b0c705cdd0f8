"""Image folders: a recursive, sorted file list, validated once, with optional class labels."""

import concurrent.futures
import dataclasses
import errno
import logging
import os
import pathlib
import stat

from genjax.data.decode import ImageDecodeError, check_header, load_rgb

log = logging.getLogger("genjax.data")

EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})


class DataError(ValueError):
  """A data source that cannot be used at all (missing folder, no usable image)."""


@dataclasses.dataclass(frozen=True)
class FolderIndex:
  files: tuple[str, ...]                  # usable files, sorted
  labels: tuple[int, ...]                 # class of each file (0 without classes)
  class_names: tuple[str, ...]            # first-level sub-folder names, sorted
  skipped: tuple[tuple[str, str], ...]    # (path, reason) of every file left out


def _check(path: str, max_pixels: int, full: bool) -> str | None:
  """None if usable, else the reason."""
  try:
    if full:
      load_rgb(path, max_pixels=max_pixels)
    else:
      check_header(path, max_pixels=max_pixels)
  except ImageDecodeError as e:
    return e.reason
  return None


def _list_files(root: pathlib.Path) -> tuple[list[str], list[tuple[str, str]]]:
  """(image paths, [(path, reason)] of links that lead nowhere), walking `root` recursively.

  Symbolic links are followed (datasets are often linked in), except a folder link back to one
  of its own ancestors (a loop); such a loop, a link to itself and a broken link are returned
  as skipped with the reason, so that no entry of the folder is left out silently.
  """
  images, unreachable = [], []

  def visit(folder: str, ancestors: dict) -> None:
    try:
      entries = list(os.scandir(folder))
    except OSError as e:
      unreachable.append((folder, f"folder not readable ({e.strerror})"))
      return
    for entry in entries:
      try:
        st = os.stat(entry.path)  # follows links
      except OSError as e:
        if entry.is_symlink():
          unreachable.append((entry.path, "symbolic link loop" if e.errno == errno.ELOOP else
                              f"broken symbolic link (to {os.readlink(entry.path)})"))
        continue
      if stat.S_ISDIR(st.st_mode):
        key = (st.st_dev, st.st_ino)
        if key in ancestors:
          unreachable.append((entry.path, f"symbolic link loop (back to {ancestors[key]})"))
        else:
          visit(entry.path, {**ancestors, key: entry.path})
      elif stat.S_ISREG(st.st_mode) and pathlib.Path(entry.name).suffix.lower() in EXTENSIONS:
        images.append(entry.path)

  st = os.stat(root)
  visit(str(root), {(st.st_dev, st.st_ino): str(root)})
  return sorted(images), unreachable


def scan_folder(root, *, class_labels: bool, max_pixels: int, validate: str = "full",
                threads: int | None = None) -> FolderIndex:
  """Lists the images under `root` and checks each one.

  validate: "full" decodes every file once (catches truncated files; parallel threads,
  as Pillow releases the GIL while decoding), "header" opens headers only (fast for
  millions of files; a file that then fails to decode is replaced by the next one).
  Every skipped file is logged on one warning line and returned in `skipped`.
  """
  root = pathlib.Path(root)
  if not root.is_dir():
    raise DataError(f"image folder {root} does not exist or is not a folder")
  if validate not in ("full", "header"):
    raise DataError(f"data.validate must be 'full' or 'header', got {validate!r}")
  paths, unreachable = _list_files(root)
  with concurrent.futures.ThreadPoolExecutor(threads or min(32, (os.cpu_count() or 1) + 4)) as ex:
    reasons = list(ex.map(lambda p: _check(p, max_pixels, validate == "full"), paths))
  skipped = []
  good = []
  for path, reason in sorted(list(zip(paths, reasons)) + unreachable):
    if reason is None:
      good.append(path)
    else:
      log.warning("skipping %s: %s", path, reason)
      skipped.append((path, reason))
  if not good:
    raise DataError(f"image folder {root} holds no usable image "
                    f"({len(paths)} candidate files, {len(skipped)} unreadable; extensions: "
                    f"{', '.join(sorted(EXTENSIONS))})")
  class_names, labels = (), (0,) * len(good)
  if class_labels:
    rel = [pathlib.Path(p).relative_to(root).parts for p in good]
    if any(len(r) < 2 for r in rel):
      loose = next(str(root.joinpath(*r)) for r in rel if len(r) < 2)
      raise DataError(f"data.class_labels is set but {loose} is not inside a class sub-folder")
    class_names = tuple(sorted({r[0] for r in rel}))
    index = {name: i for i, name in enumerate(class_names)}
    labels = tuple(index[r[0]] for r in rel)
  return FolderIndex(tuple(good), labels, class_names, tuple(skipped))
