"""Bad input reaches the user as one clear line and a non-zero exit."""

import json

import numpy as np
from PIL import Image

from genjax import cli


def _main(capsys, *argv):
  code = cli.main(list(argv))
  return code, capsys.readouterr().err


def test_unknown_config_key(tmp_path, capsys):
  code, err = _main(capsys, "train", f"--workdir={tmp_path}", "--config.train.batchsize=3")
  assert code != 0
  assert "train.batchsize" in err


def test_wrong_type(tmp_path, capsys):
  code, err = _main(capsys, "train", f"--workdir={tmp_path}", "--config.train.num_steps=many")
  assert code != 0 and "train.num_steps" in err


def test_a_config_of_the_other_kind_is_refused_before_any_output(tmp_path, capsys):
  code, err = _main(capsys, "train", "--config=comic_tiny", f"--workdir={tmp_path / 'a'}")
  assert code != 0 and "'comic_tiny' is not a diffusion config" in err
  assert "genjax train-comic" in err
  code, err = _main(capsys, "train-comic", "--config=tiny", f"--workdir={tmp_path / 'b'}")
  assert code != 0 and "'tiny' is not a translator config" in err
  assert "`genjax train`" in err
  assert not list(tmp_path.iterdir())


def test_empty_folder(tmp_path, capsys):
  empty = tmp_path / "no_images"
  empty.mkdir()
  (empty / "notes.txt").write_text("not an image")
  code, err = _main(capsys, "train", f"--workdir={tmp_path / 'run'}",
                    "--config.data.source=folder", f"--config.data.path={empty}")
  assert code != 0 and str(empty) in err


def _write_mixed_folder(folder):
  rng = np.random.default_rng(0)
  folder.mkdir()

  def picture(h=20, w=28):
    y = np.linspace(0, 255, h)[:, None, None]
    return np.clip(y + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)

  for i in range(4):
    Image.fromarray(picture()).save(folder / f"good_{i}.png")
  Image.fromarray(picture()).save(folder / "good.jpg", quality=90)
  Image.fromarray(picture()).convert("CMYK").save(folder / "cmyk.jpg")
  Image.fromarray((np.arange(20 * 28).reshape(20, 28) * 100).astype(np.uint16)).save(
      folder / "gray16.png")
  pal = Image.fromarray(picture()).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
  pal.info["transparency"] = 0
  pal.save(folder / "palette.png", transparency=0)
  (folder / "zero.png").write_bytes(b"")
  (folder / "text.jpg").write_text("this is not a jpeg")
  (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(rng.integers(0, 255, 200,
                                                                              dtype=np.uint8)))
  good = (folder / "good.jpg").read_bytes()
  (folder / "truncated.jpg").write_bytes(good[:len(good) // 3])
  return {"zero.png", "text.jpg", "corrupt.png", "truncated.jpg"}


def test_mixed_folder_trains_and_reports_skips(tmp_path, capsys, caplog, tiny_overrides):
  folder = tmp_path / "mixed"
  bad = _write_mixed_folder(folder)
  run = tmp_path / "run"
  code, err = _main(capsys, "train", f"--workdir={run}", *[f"--config.{o}" for o in tiny_overrides],
                    "--config.data.source=folder", f"--config.data.path={folder}",
                    "--config.train.num_steps=2")
  assert code == 0, err
  summary = json.loads((run / "summary.json").read_text())
  skipped = [p.split("/")[-1] for p, _ in summary["skipped_files"]]
  assert sorted(skipped) == sorted(bad)  # the CMYK, 16-bit and palette files are used
  warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
  for name in bad:  # one warning line each
    assert sum(f"/{name}:" in w for w in warned) == 1, warned
  assert summary["final_step"] == 2 and np.isfinite(summary["final_loss"])


def test_checkpoint_of_another_shape(tmp_path, capsys, tiny_overrides):
  args = ["train", f"--workdir={tmp_path}", *[f"--config.{o}" for o in tiny_overrides],
          "--config.train.num_steps=1"]
  assert cli.main(args) == 0
  capsys.readouterr()
  code, err = _main(capsys, *args, "--config.model.base_channels=8", "--config.train.num_steps=2")
  assert code != 0 and "model.base_channels 16 -> 8" in err  # a changed config is refused
  # Accepted, the change still has to fit the checkpoint: every mismatched path is named.
  code, err = _main(capsys, *args, "--config.model.base_channels=8", "--config.train.num_steps=2",
                    "--accept-config-change")
  assert code != 0
  assert "mismatched parameters" in err and "kernel" in err
  assert "(16" in err or "16)" in err
