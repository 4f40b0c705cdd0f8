"""Every file genjax writes goes through genjax.files (temporary file, fsync, rename): no module
of genjax/ or kernels/ writes a file in place or renames a file it did not sync."""

import ast
import pathlib

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Calls that write a file in place, or rename a temporary file that was never fsynced.
_WRITES = {"write_text", "write_bytes", "savez", "savez_compressed", "save", "replace", "rename",
           "dump", "savefig", "tofile"}


def _writer_calls(path: pathlib.Path):
  tree = ast.parse(path.read_text(), filename=str(path))
  for node in ast.walk(tree):
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
      continue
    name, owner = node.func.attr, node.func.value
    owner_name = (owner.id if isinstance(owner, ast.Name)
                  else owner.attr if isinstance(owner, ast.Attribute) else None)
    if owner_name == "files":
      continue  # genjax.files itself
    # Orbax managers (manager.save; ckpt.save and checkpointer.save, genjax.train.checkpoint's
    # Checkpointer around the one manager) write checkpoints through their own atomic
    # protocol, and a Pillow .save / np.savez into an open file object of `files.atomic_write`
    # (or into a memory buffer) is no file of its own.
    if name == "save" and owner_name in ("manager", "ckpt", "checkpointer"):
      continue
    if name in ("save", "savez", "savefig", "dump") and node.args and isinstance(
        node.args[0], ast.Name) and node.args[0].id in ("f", "buf"):
      continue
    if name == "replace" and owner_name not in ("os", "tmp", "shutil"):
      continue  # str.replace, dataclasses.replace, state.replace ...
    if name in _WRITES:
      yield node.lineno, ast.unparse(node.func)


def _sources():
  for folder in ("genjax", "kernels"):
    for path in sorted((ROOT / folder).rglob("*.py")):
      if path.name != "files.py":
        yield path


def test_no_module_writes_a_file_except_through_genjax_files():
  found = [f"{p.relative_to(ROOT)}:{line}: {call}" for p in _sources()
           for line, call in _writer_calls(p)]
  assert found == []


def _record_syncs(monkeypatch):
  """[(event, path)] of fsync (by file name) and os.replace calls, in order."""
  import os
  events, real_fsync, real_replace = [], os.fsync, os.replace

  def fsync(fd):
    try:
      name = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
      name = "?"
    events.append(("fsync", name))
    return real_fsync(fd)

  def replace(src, dst, *a, **k):
    events.append(("replace", os.fspath(src), os.fspath(dst)))
    return real_replace(src, dst, *a, **k)
  monkeypatch.setattr(os, "fsync", fsync)
  monkeypatch.setattr(os, "replace", replace)
  return events


def _synced_then_renamed(events, target: pathlib.Path) -> bool:
  for i, event in enumerate(events):
    if event[0] == "replace" and event[2] == str(target):
      return ("fsync", event[1]) in events[:i]
  return False


def test_stats_npz_is_synced_renamed_and_keeps_its_name(tmp_path, monkeypatch):
  from genjax.metrics import features
  events = _record_syncs(monkeypatch)
  stats = features.FeatureStats(np.zeros(3), np.eye(3), np.ones((2, 3)))
  features.save_stats(tmp_path / "real_stats", stats)  # no .npz suffix added behind our back
  assert _synced_then_renamed(events, tmp_path / "real_stats")
  np.testing.assert_array_equal(features.load_stats(tmp_path / "real_stats").sigma, np.eye(3))


def test_run_config_json_is_synced_before_the_rename(tmp_path, monkeypatch):
  from genjax import configs
  from genjax.train import run_config
  events = _record_syncs(monkeypatch)
  run_config.write(tmp_path, configs.load("tiny"))
  assert _synced_then_renamed(events, tmp_path / "config.json")
  assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_a_failed_npz_write_leaves_the_old_file(tmp_path, monkeypatch):
  from genjax.metrics import features
  path = tmp_path / "real.npz"
  features.save_stats(path, features.FeatureStats(np.zeros(3), np.eye(3), np.ones((2, 3))))
  before = path.read_bytes()

  def half_then_fail(f, **arrays):
    f.write(b"PK\x03\x04 half a zip")
    raise OSError(28, "No space left on device")
  monkeypatch.setattr(np, "savez", half_then_fail)
  with pytest.raises(OSError, match="No space"):
    features.save_stats(path, features.FeatureStats(np.ones(3), np.eye(3), np.ones((2, 3))))
  assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["real.npz"]
