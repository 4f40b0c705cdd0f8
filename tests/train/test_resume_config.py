"""Resuming with a changed config: refused with every changed key (old -> new), accepted only
when asked (and then recorded), free for the keys that only say how long / how observably the
run trains."""

import json

from genjax import cli
from genjax.train import run_config


def _resume(capsys, workdir, overrides, *extra, flags=()):
  code = cli.main(["train", "--config=tiny", f"--workdir={workdir}", *flags,
                   *[f"--config.{o}" for o in list(overrides) + list(extra)]])
  return code, capsys.readouterr().err


def _tree(folder):
  return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


CHANGED = ("diffusion.objective=eps", "seed=7", "train.learning_rate=0.5")


def test_changed_config_is_refused_naming_every_key(run_copy, run_overrides, capsys):
  before = _tree(run_copy)
  code, err = _resume(capsys, run_copy, run_overrides, *CHANGED)
  assert code != 0 and "Traceback" not in err
  line = err.strip().splitlines()[-1]
  assert 'diffusion.objective "v" -> "eps"' in line
  assert "seed 0 -> 7" in line
  assert "train.learning_rate 0.002 -> 0.5" in line
  assert "--accept-config-change" in line
  assert _tree(run_copy) == before  # nothing written, nothing moved
  assert json.loads((run_copy / "config.json").read_text())["diffusion"]["objective"] == "v"


def test_accepted_change_is_recorded_and_config_json_updated(run_copy, run_overrides, capsys):
  code, err = _resume(capsys, run_copy, run_overrides, *CHANGED,
                      flags=["--accept-config-change"])
  assert code == 0, err
  saved = json.loads((run_copy / "config.json").read_text())
  assert saved["diffusion"]["objective"] == "eps" and saved["seed"] == 7
  assert saved["train"]["learning_rate"] == 0.5
  entries = [json.loads(line) for line in
             (run_copy / run_config.CHANGES_FILE).read_text().splitlines()]
  assert len(entries) == 1 and entries[0]["step"] == 4
  assert entries[0]["changes"] == {
      "diffusion.objective": {"old": "v", "new": "eps"}, "seed": {"old": 0, "new": 7},
      "train.learning_rate": {"old": 0.002, "new": 0.5}}
  assert entries[0]["accepted"] == ["diffusion.objective", "seed", "train.learning_rate"]
  # Resuming again with the same config is not a change any more.
  code, err = _resume(capsys, run_copy, run_overrides, *CHANGED)
  assert code == 0, err
  assert len((run_copy / run_config.CHANGES_FILE).read_text().splitlines()) == 1


def test_free_keys_change_without_the_flag_and_are_recorded(run_copy, run_overrides, capsys):
  code, err = _resume(capsys, run_copy, run_overrides, "train.log_every=3",
                      "train.keep_checkpoints=2")
  assert code == 0, err
  entry = json.loads((run_copy / run_config.CHANGES_FILE).read_text())
  assert entry["changes"]["train.log_every"] == {"old": 1, "new": 3}
  assert entry["accepted"] == []
  assert json.loads((run_copy / "config.json").read_text())["train"]["log_every"] == 3


def test_changes_lists_both_sides():
  old = {"a": {"b": 1, "c": [1, 2]}, "d": "x"}
  new = {"a": {"b": 1, "c": [1, 3]}, "d": "x", "e": 0}
  assert run_config.changes(old, new) == {"a.c": ([1, 2], [1, 3]), "e": (None, 0)}
