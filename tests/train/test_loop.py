"""The training loop's log records: each one describes its own step; a time limit stops a
run with a checkpoint and exit code 0."""

import json

import pytest

from genjax import cli, configs
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

  # The same program (the persistent compilation cache has it) with a time limit that has
  # passed when step 1 is done: the run stops there, saves it, and the CLI's exit code is 0.
  config.train.time_limit_minutes = 1e-9
  summary = loop.train(config, tmp_path / "limited", progress=False)
  assert summary.interrupted_by == "time_limit" and summary.final_step == 1
  assert (tmp_path / "limited" / "checkpoints" / "1" / "_CHECKPOINT_METADATA").exists()
  assert cli._exit_code(summary.interrupted_by) == 0 and cli._exit_code("SIGTERM") == 143
