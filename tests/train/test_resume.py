"""Exact resume: a run killed with SIGKILL after a checkpoint and resumed ends
bitwise equal to an uninterrupted run, with the same logged losses."""

import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import numpy as np

from genjax.sample.load import restore_subtrees
from genjax.train import logbook

STEPS, EVERY = 12, 4


def _train_cmd(workdir, overrides):
  return [sys.executable, "-m", "genjax.cli", "train", "--config=tiny", f"--workdir={workdir}",
          *[f"--config.{o}" for o in overrides]]


def _finished_checkpoint(workdir: pathlib.Path, step: int) -> bool:
  return (workdir / "checkpoints" / str(step) / "_CHECKPOINT_METADATA").exists()


def _final_state(workdir: pathlib.Path):
  return restore_subtrees(workdir, ("params", "ema_params", "opt_state", "step"), step=STEPS)


def _losses(workdir):
  return {r["step"]: r["loss"] for r in logbook.read_records(workdir / "metrics.jsonl")}


def test_sigkill_then_resume_is_bitwise_exact(tmp_path, tiny_overrides):
  overrides = tiny_overrides + [f"train.num_steps={STEPS}", f"train.checkpoint_every={EVERY}",
                                "train.keep_checkpoints=5"]
  env = dict(os.environ, PYTHONUNBUFFERED="1")
  straight, killed = tmp_path / "straight", tmp_path / "killed"
  subprocess.run(_train_cmd(straight, overrides), env=env, check=True, capture_output=True,
                 timeout=300)

  proc = subprocess.Popen(_train_cmd(killed, overrides), env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  deadline = time.monotonic() + 240
  while not _finished_checkpoint(killed, 2 * EVERY):
    assert proc.poll() is None, "training ended before it could be killed"
    assert time.monotonic() < deadline, "no checkpoint within the time limit"
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait(timeout=30)
  assert not _finished_checkpoint(killed, STEPS)

  resumed = subprocess.run(_train_cmd(killed, overrides), env=env, capture_output=True,
                           text=True, timeout=300)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert "resumed from" in resumed.stderr

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
