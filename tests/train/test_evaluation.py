"""Evaluation during training: eval/* records, eval.png, and the best checkpoint."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np

from genjax import configs
from genjax.train import evaluation, logbook, loop


def test_best_checkpoint_keeps_the_best_and_never_a_nan(tmp_path):
  best = evaluation.BestCheckpoint(tmp_path, "swd")
  state = {"w": jnp.arange(3.0)}
  assert best.update(1, {"eval/swd": 5.0}, state)
  assert not best.update(2, {"eval/swd": 6.0}, {"w": jnp.zeros(3)})      # worse
  assert not best.update(3, {"eval/swd": math.nan}, {"w": jnp.zeros(3)})  # NaN
  assert best.update(4, {"eval/swd": 4.0}, {"w": jnp.ones(3)})           # better
  best.close()
  assert json.loads((tmp_path / "best" / "best.json").read_text()) == {
      "metric": "eval/swd", "value": 4.0, "step": 4}
  assert sorted(p.name for p in (tmp_path / "best" / "checkpoints").iterdir()) == ["4"]
  # Resumed: the record is read back, so a worse value does not replace it.
  again = evaluation.BestCheckpoint(tmp_path, "eval/swd")
  assert not again.update(5, {"eval/swd": 4.5}, state)
  again.close()
  import pytest
  with pytest.raises(ValueError, match="keep_best_by='fid' is not logged"):
    evaluation.BestCheckpoint(tmp_path / "x", "fid", "swd,kid")
  recall = evaluation.BestCheckpoint(tmp_path / "r", "recall", "swd,pr")
  assert recall.higher_is_better and recall.is_better(0.1)
  recall.close()


def test_training_logs_eval_metrics_and_keeps_best(tmp_path, tiny_overrides):
  config = configs.load("tiny", tiny_overrides + [
      "train.num_steps=4", "train.eval_every=2", "train.eval_num_images=8",
      "train.eval_batch_size=4", "train.eval_sample_steps=2", "train.keep_best_by=swd",
      "train.checkpoint_every=2"])
  loop.train(config, tmp_path, progress=False)
  records = [r for r in logbook.read_records(tmp_path / "metrics.jsonl") if "eval/swd" in r]
  assert [r["step"] for r in records] == [2, 4]
  assert all(np.isfinite(r["eval/swd"]) and r["eval/swd"] > 0 for r in records)
  best = json.loads((tmp_path / "best" / "best.json").read_text())
  assert best["value"] == min(r["eval/swd"] for r in records)
  assert (tmp_path / "eval.png").is_file() and (tmp_path / "best" / "config.json").is_file()
  # The best folder is itself a run folder: load_run / genjax sample accept it.
  from genjax.sample.load import load_run
  _, _, _, params = load_run(tmp_path / "best")
  assert jax.tree.leaves(params)
