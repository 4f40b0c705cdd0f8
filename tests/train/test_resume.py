"""Exact resume: a run killed with SIGKILL after a checkpoint and resumed ends
bitwise equal to an uninterrupted run, with the same logged losses (the procedure:
tests/conftest.py sigkill_and_resume)."""

import sys

STEPS, EVERY = 12, 4


def test_sigkill_then_resume_is_bitwise_exact(tmp_path, tiny_overrides, sigkill_resume):
  overrides = tiny_overrides + [f"train.num_steps={STEPS}", f"train.checkpoint_every={EVERY}",
                                "train.keep_checkpoints=5"]

  def command(workdir):
    return [sys.executable, "-m", "genjax.cli", "train", "--config=tiny", f"--workdir={workdir}",
            *[f"--config.{o}" for o in overrides]]
  sigkill_resume(tmp_path, command, kill_after=2 * EVERY, final=STEPS)
