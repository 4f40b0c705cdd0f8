"""`genjax sample` (genjax.sample.run) on bad input: each refused with one line before any
output folder exists (issue 15, items 4, 6, 8, 10)."""

import errno
import re
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from genjax import cli
from genjax.sample import run as sample_run


def _sample(capsys, workdir, out, *extra):
  code = cli.main(["sample", f"--workdir={workdir}", "-o", str(out), "--sampler", "ddim",
                   "--steps", "3", *map(str, extra)])
  return code, capsys.readouterr().err


def test_config_of_another_model_is_refused_naming_paths_and_file(trained_run, tmp_path, capsys):
  """15.6: a config.json of another model gave a flax ScopeParamShapeError traceback and an
  empty output folder."""
  run = tmp_path / "run"
  shutil.copytree(trained_run, run)
  config = json.loads((run / "config.json").read_text())
  config["model"]["base_channels"] = 8  # the checkpoint has 16
  (run / "config.json").write_text(json.dumps(config))
  out = tmp_path / "out"
  code, err = _sample(capsys, run, out)
  assert code == cli.USAGE_ERROR
  assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
  assert f"does not fit the model of {run / 'config.json'}" in err
  assert re.search(r"mismatched parameters: \S+: checkpoint \(\d+.*\) != model \(\d+", err), err
  assert not out.exists()


def test_guidance_on_an_unconditional_model_is_refused(trained_run, tmp_path, capsys):
  """15.8: --guidance 3 on an unconditional model was accepted and changed nothing."""
  code, err = _sample(capsys, trained_run, tmp_path / "out", "--guidance", "3")
  assert code == cli.USAGE_ERROR
  assert "guidance 3 has no effect: the model is unconditional" in err
  assert not (tmp_path / "out").exists()


def test_init_of_another_size_is_fitted_and_n_is_respected(trained_run, tmp_path, capsys,
                                                            caplog, monkeypatch):
  """15.10: a photo of another size ran the model at the photo's size with a batch of 16
  whatever --n. Now: centre crop to the model's 2:1, resize to its 16x8, batch <= n."""
  photo = np.zeros((16, 64, 3), np.uint8)   # 64 wide x 16 high: 4:1
  photo[:, :16] = (255, 0, 0)               # outer quarters red and blue, cropped away
  photo[:, 48:] = (0, 0, 255)
  photo[:, 16:48] = (40, 200, 60)           # the centre 32x16 (2:1) is green
  Image.fromarray(photo).save(tmp_path / "wide.png")
  batches = []
  real_keys = sample_run.per_sample_keys
  monkeypatch.setattr(sample_run, "per_sample_keys",
                      lambda key, start, num: batches.append(num) or real_keys(key, start, num))
  out = tmp_path / "out"
  with caplog.at_level("WARNING"):
    code, err = _sample(capsys, trained_run, out, "--init", tmp_path / "wide.png",
                        "--strength", "0.05", "--n", "3")
  assert code == 0, err
  assert batches == [3]
  assert sorted(p.name for p in out.iterdir()) == ["grid.png", "sample_00000.png",
                                                   "sample_00001.png", "sample_00002.png"]
  assert any(f"--init image {tmp_path / 'wide.png'} is 64x16; centre-cropped to 32x16, "
             f"resized to the model's 16x8" in r.getMessage() for r in caplog.records)
  for i in range(3):
    img = np.asarray(Image.open(out / f"sample_{i:05d}.png"), np.float32)
    assert img.shape == (8, 16, 3)
    # Close to the green centre, far from the red / blue edges that a plain resize keeps.
    assert np.abs(img - (40, 200, 60)).mean() < 40   # 8-bit units; noise of strength 0.05
    assert np.abs(img[:, :4] - (255, 0, 0)).mean() > 100


def test_mask_is_fitted_like_the_init(tmp_path):
  im = Image.new("L", (64, 16), 0)
  im.paste(255, (32, 0, 64, 16))            # right half white = keep
  im.save(tmp_path / "mask.png")
  Image.new("RGB", (64, 16)).save(tmp_path / "init.png")
  keep = sample_run._read_mask(tmp_path / "mask.png", tmp_path / "init.png", (8, 16))
  assert keep.shape == (8, 16, 1)
  np.testing.assert_array_equal(keep[..., 0], np.repeat([[0] * 8 + [1] * 8], 8, axis=0))


def test_output_under_a_file_or_a_full_disk_is_one_line(trained_run, tmp_path, capsys,
                                                         monkeypatch):
  """15.4: a write error was a traceback."""
  (tmp_path / "notes.txt").write_text("mine")
  code, err = _sample(capsys, trained_run, tmp_path / "notes.txt" / "sub")
  assert code != 0 and "Traceback" not in err
  assert err.strip() == (f"genjax: error: -o {tmp_path / 'notes.txt' / 'sub'}: "
                         f"{tmp_path / 'notes.txt'} is a file, not a folder")
  assert (tmp_path / "notes.txt").read_text() == "mine"

  def full(path, *a, **k):
    raise OSError(errno.ENOSPC, "No space left on device", str(path))
  monkeypatch.setattr(sample_run.image_io, "save_png", full)
  code, err = _sample(capsys, trained_run, tmp_path / "out", "--n", "1")
  assert code == 1
  assert err.strip().splitlines()[-1] == (
      f"genjax: error: {tmp_path / 'out' / 'sample_00000.png'}: No space left on device")
  assert "Traceback" not in err
