"""Image folders with symbolic links: linked folders are used, loops and broken links are
listed as skipped (with the reason), never silently left out or followed forever."""

import os

import numpy as np
from PIL import Image

from genjax.data import scan_folder


def _png(path):
  Image.fromarray(np.full((6, 8, 3), 128, np.uint8)).save(path)


def test_symlink_loops_are_listed_and_linked_folders_used(tmp_path, caplog):
  root, elsewhere = tmp_path / "train", tmp_path / "elsewhere"
  (root / "sub").mkdir(parents=True)
  elsewhere.mkdir()
  _png(root / "a.png")
  _png(root / "sub" / "b.png")
  _png(elsewhere / "c.png")
  os.symlink(elsewhere, root / "linked")                # a dataset linked in: used
  os.symlink(root, root / "sub" / "up")                 # a folder loop
  os.symlink("self.png", root / "self.png")             # a link to itself
  os.symlink("ping.jpg", root / "pong.jpg")             # two links to each other
  os.symlink("pong.jpg", root / "ping.jpg")
  os.symlink("missing.png", root / "broken.png")        # a broken link
  index = scan_folder(root, class_labels=False, max_pixels=10 ** 6)
  assert index.files == tuple(str(p) for p in (root / "a.png", root / "linked" / "c.png",
                                               root / "sub" / "b.png"))
  reasons = {os.path.relpath(p, root): r for p, r in index.skipped}
  assert set(reasons) == {"sub/up", "self.png", "ping.jpg", "pong.jpg", "broken.png"}
  assert reasons["sub/up"] == f"symbolic link loop (back to {root})"
  assert reasons["self.png"] == reasons["ping.jpg"] == "symbolic link loop"
  assert reasons["broken.png"] == "broken symbolic link (to missing.png)"
  warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
  assert len(warned) == 5 and all("skipping" in w for w in warned)
