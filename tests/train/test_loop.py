"""The training loop's log records: each one describes its own step."""

import json

import pytest

from genjax import configs
from genjax.train import loop


@pytest.mark.slow  # a run of its own: the tiny step and the preview sampler (17-100 s here)
def test_each_record_counts_the_skipped_steps_up_to_its_own_step(tmp_path, tiny_overrides):
  # A learning rate of 1e30 makes step 1's update finite but huge: from step 2 on, the loss
  # overflows and every step is skipped. The loop records each step as soon as it is done
  # (it does not wait for the step dispatched after it), with the skipped count at that step.
  config = configs.load("tiny", list(tiny_overrides) + [
      "train.num_steps=3", "train.learning_rate=1e30", "train.max_nonfinite_in_row=10",
      "train.checkpoint_every=1000"])
  summary = loop.train(config, tmp_path / "run", progress=False)
  records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
  assert [r["step"] for r in records] == [1, 2, 3]
  assert [r["skipped_steps"] for r in records] == [0, 1, 2]
  assert summary.skipped_steps == 2 and summary.final_step == 3
