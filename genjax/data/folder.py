"""Image folders: a recursive, sorted file list, validated once, with optional class labels."""

import concurrent.futures
import dataclasses
import logging
import os
import pathlib

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
  paths = sorted(str(p) for p in root.rglob("*")
                 if p.is_file() and p.suffix.lower() in EXTENSIONS)
  with concurrent.futures.ThreadPoolExecutor(threads or min(32, (os.cpu_count() or 1) + 4)) as ex:
    reasons = list(ex.map(lambda p: _check(p, max_pixels, validate == "full"), paths))
  skipped = []
  good = []
  for path, reason in zip(paths, reasons):
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
