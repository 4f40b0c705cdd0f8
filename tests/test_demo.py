"""`genjax demo`, shortened: every step runs and writes what the README promises."""

import json

from genjax import demo


def test_demo_writes_training_eval_and_app_outputs(tmp_path, tiny_overrides):
  overrides = tiny_overrides + ["train.eval_every=2", "train.eval_num_images=8",
                                "train.eval_batch_size=4", "train.eval_sample_steps=2"]
  assert demo.run(tmp_path, steps=4, overrides=overrides, num_photos=1) == 0
  train = tmp_path / "train"
  for name in ("samples.png", "loss.png", "eval.png", "summary.json", "metrics.jsonl"):
    assert (train / name).is_file(), name
  records = [json.loads(line) for line in (train / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in records if "eval/swd" in r] == [2, 4]
  comic = tmp_path / "comic"
  assert (comic / "page.png").is_file()
  assert len(list(comic.glob("*.manga.png"))) == len(list(comic.glob("*.comic.png"))) >= 1
