"""Exact resume: a run killed with SIGKILL after a checkpoint and resumed ends
bitwise equal to an uninterrupted run, with the same logged losses."""

import pathlib
import sys

import jax
import numpy as np

from genjax.sample.load import restore_subtrees
from genjax.train import logbook

STEPS, EVERY = 12, 4


def _train_cmd(workdir, overrides):
  return [sys.executable, "-m", "genjax.cli", "train", "--config=tiny", f"--workdir={workdir}",
          *[f"--config.{o}" for o in overrides]]


def _final_state(workdir: pathlib.Path):
  return restore_subtrees(workdir, ("params", "ema_params", "opt_state", "step"), step=STEPS)


def _losses(workdir):
  return {r["step"]: r["loss"] for r in logbook.read_records(workdir / "metrics.jsonl")}


def test_sigkill_then_resume_is_bitwise_exact(tmp_path, tiny_overrides, sigkill_resume):
  overrides = tiny_overrides + [f"train.num_steps={STEPS}", f"train.checkpoint_every={EVERY}",
                                "train.keep_checkpoints=5"]
  straight, killed = sigkill_resume(tmp_path, lambda workdir: _train_cmd(workdir, overrides),
                                    kill_after=2 * EVERY, final=STEPS)

  a, b = _final_state(straight), _final_state(killed)
  for name in ("params", "ema_params", "opt_state"):
    leaves_a, leaves_b = jax.tree.leaves(a[name]), jax.tree.leaves(b[name])
    assert len(leaves_a) == len(leaves_b) > 0
    for x, y in zip(leaves_a, leaves_b):
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=name)
  assert int(a["step"]) == int(b["step"]) == STEPS

  la, lb = _losses(straight), _losses(killed)
  assert sorted(la) == sorted(lb) == list(range(1, STEPS + 1))
  assert la == lb
