"""genjax.metrics.evaluate and `genjax eval`: image sources, the metric table, bad input."""

import json

import jax
import numpy as np
import pytest
from PIL import Image

from genjax import cli
from genjax.metrics import evaluate as ev
from genjax.naming import UnknownNameError


def _write_folder(path, images):
  path.mkdir(parents=True, exist_ok=True)
  for i, img in enumerate(images):
    Image.fromarray(((img + 1) * 127.5).round().astype(np.uint8)).save(path / f"{i:03d}.png")


def test_metric_names():
  assert ev.parse_metric_names("swd, kid") == ("swd", "kid")
  with pytest.raises(UnknownNameError, match="unknown metric 'lpips'.*swd"):
    ev.parse_metric_names("swd,lpips")
  with pytest.raises(ValueError, match="no metrics"):
    ev.parse_metric_names("")


def test_swd_config_keeps_two_levels_for_small_panoramas():
  from genjax.metrics.swd import num_levels
  assert num_levels(16, 32, ev.swd_config_for(16, 32)) == 2
  assert ev.swd_config_for(64, 64).min_resolution == 16   # the paper's value


def test_dataset_source_is_the_procedural_data():
  images = ev.image_source("tiny", n=3, image_size=(16, 32))
  assert images.shape == (3, 16, 32, 3) and images.dtype == np.float32
  assert -1.0 <= images.min() and images.max() <= 1.0
  # Procedural panoramas: sky over ground, and three different images.
  top, bottom = images[:, :3].mean(axis=(1, 2)), images[:, -3:].mean(axis=(1, 2))
  assert np.all(top[:, 2] > bottom[:, 2]), (top, bottom)
  assert np.abs(images[0] - images[1]).mean() > 0.01 and np.abs(images[1] - images[2]).mean() > 0.01


def test_evaluate_orders_same_below_noisy():
  real = ev.image_source("tiny", n=48, image_size=(16, 32), seed=0)
  same = ev.image_source("tiny", n=48, image_size=(16, 32), seed=1)
  rng = np.random.default_rng(0)
  noisy = np.clip(same + rng.normal(0, 0.3, same.shape), -1, 1).astype(np.float32)
  from genjax.metrics import features
  ext = features.get_extractor("random_conv", batch_size=16)
  key = jax.random.PRNGKey(0)
  a = ev.evaluate(real, same, ("swd", "kid", "fid"), key=key, extractor=ext)
  b = ev.evaluate(real, noisy, ("swd", "kid", "fid"), key=key, extractor=ext)
  assert set(a) >= {"swd", "swd_level_16x32", "swd_level_8x16", "kid", "kid_std", "fid"}
  for name in ("swd", "kid", "fid"):
    assert b[name] > 2 * max(a[name], 0), (name, a[name], b[name])
  with pytest.raises(ValueError, match="sizes must match"):
    ev.evaluate(real, real[:, :8], ("swd",), key=key)
  with pytest.raises(ValueError, match="need a feature extractor"):
    ev.evaluate(real, same, ("kid",), key=key)


def test_cli_eval_folder_against_dataset(tmp_path, capsys):
  fake = ev.image_source("tiny", n=24, image_size=(16, 32), seed=3)
  _write_folder(tmp_path / "fake", fake)
  out = tmp_path / "eval.json"
  assert cli.main(["eval", "--real", "tiny", "--fake", str(tmp_path / "fake"), "--n", "24",
                   "--metrics", "swd,kid,pr", "-o", str(out)]) == 0
  printed = capsys.readouterr().out
  results = json.loads(out.read_text())
  assert results["num_real"] == results["num_fake"] == 24
  assert results["features"] == "random_conv"
  assert "swd" in printed and f"{results['swd']:.6g}" in printed
  assert 0.0 <= results["precision"] <= 1.0 and 0.0 <= results["recall"] <= 1.0
  # Bad input: unknown metric, missing folder, a folder of 1 image: exit 2, no JSON written.
  _write_folder(tmp_path / "one", fake[:1])
  for args, message in [(["--metrics", "lpips"], "unknown metric"),
                        (["--fake", str(tmp_path / "nope")], "neither a folder"),
                        (["--fake", str(tmp_path / "one")], "at least 2 images")]:
    base = {"--real": "tiny", "--fake": str(tmp_path / "fake"), "--n": "24"}
    for k, v in zip(args[::2], args[1::2]):
      base[k] = v
    argv = ["eval", *[x for kv in base.items() for x in kv], "-o", str(tmp_path / "bad.json")]
    assert cli.main(argv) == 2, args
    assert message in capsys.readouterr().err, args
    assert not (tmp_path / "bad.json").exists()
