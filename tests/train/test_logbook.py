"""genjax/train/logbook.py: metrics.jsonl and TensorBoard events, without importing torch."""

import json
import subprocess
import sys

import pytest


def test_records_are_written_and_a_resume_drops_the_ones_past_it(tmp_path):
  from genjax.train import logbook
  book = logbook.Logbook(tmp_path, resume_step=0)
  for step in (10, 20, 30):
    book.write(step, {"loss": step / 10})
  book.close()
  assert [r["step"] for r in logbook.read_records(tmp_path / "metrics.jsonl")] == [10, 20, 30]
  book = logbook.Logbook(tmp_path, resume_step=20)  # a crash after step 20's checkpoint
  book.write(30, {"loss": 2.5})
  book.close()
  records = logbook.read_records(tmp_path / "metrics.jsonl")
  assert [(r["step"], r["loss"]) for r in records] == [(10, 1.0), (20, 2.0), (30, 2.5)]
  assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_a_training_process_never_imports_torch(tmp_path):
  """tensorboardX imports torch when it is installed: the Logbook keeps it out (190 MiB of a
  training process's memory). Where torch is not installed there is nothing to show."""
  pytest.importorskip("torch", reason="torch is not installed, so nothing could import it")
  code = (
      "import sys, pathlib\n"
      "from genjax.train import loop, logbook\n"
      f"book = logbook.Logbook(pathlib.Path({str(tmp_path)!r}), resume_step=0)\n"
      "book.write(1, {'loss': 1.0}); book.close()\n"
      "import json; print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')))\n"
      "import torch; print(json.dumps(torch.ones(2).sum().item()))\n")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       cwd=tmp_path).stdout.splitlines()
  assert json.loads(out[-2]) == []
  assert json.loads(out[-1]) == 2.0  # and torch still imports afterwards
