"""Config values no run can use are refused in one line naming the key, before anything is
written to the run folder or compiled."""

import pytest

from genjax import cli


def _train(capsys, workdir, *overrides, config="tiny"):
  code = cli.main(["train", f"--config={config}", f"--workdir={workdir}",
                   *[f"--config.{o}" for o in overrides]])
  return code, capsys.readouterr().err


@pytest.mark.parametrize("override, key", [
    ("train.checkpoint_every=0", "train.checkpoint_every"),
    ("train.num_steps=-5", "train.num_steps"),
    ("train.num_steps=0", "train.num_steps"),
    ("train.batch_size=0", "train.batch_size"),
    ("train.log_every=0", "train.log_every"),
    ("train.sample_every=-1", "train.sample_every"),
    ("train.learning_rate=-0.1", "train.learning_rate"),
    ("data.image_size=(0, 16)", "data.image_size"),
    ("train.init_params=/nowhere/weights.msgpack", "train.init_params"),
])
def test_bad_value_names_the_key_and_writes_nothing(tmp_path, capsys, override, key):
  run = tmp_path / "run"
  code, err = _train(capsys, run, override)
  assert code != 0
  lines = [line for line in err.splitlines() if line.strip()]
  assert len(lines) == 1 and lines[0].startswith("genjax: error:"), err
  assert key in lines[0] and override.split("=")[1].replace(" ", "") in lines[0].replace(" ", "")
  assert not run.exists()


def test_config_file_with_a_syntax_error_names_file_and_line(tmp_path, capsys):
  bad = tmp_path / "mine.py"
  bad.write_text("from genjax.configs import tiny\n\ndef get_config(:\n  return tiny.get_config()\n")
  code, err = _train(capsys, tmp_path / "run", config=str(bad))
  assert code != 0 and "Traceback" not in err
  assert f"{bad}, line 3" in err
  assert not (tmp_path / "run").exists()


def test_config_file_that_raises_names_file_and_line(tmp_path, capsys):
  bad = tmp_path / "raises.py"
  bad.write_text("from genjax.configs import tiny\n\ndef get_config():\n  c = tiny.get_config()\n"
                 "  c.train.batch_size = batch\n  return c\n")
  code, err = _train(capsys, tmp_path / "run", config=str(bad))
  assert code != 0 and "Traceback" not in err
  assert f"{bad}, line 5" in err and "NameError" in err
