"""Training metrics as JSON lines and TensorBoard event files (process 0 only)."""

import importlib
import json
import pathlib
import sys

from genjax import files


def import_tensorboardx():
  """tensorboardX, imported without importing torch.

  tensorboardX's writer imports torch whenever it is installed (only so that it can accept
  torch tensors), which costs a training process about 190 MiB of resident memory and
  seconds of start-up wherever PyTorch is installed beside genjax (the test and bench
  extras). A None entry in sys.modules makes that `import torch` raise ImportError, which
  tensorboardX catches; the entry goes again at once, so a later `import torch` works.
  """
  if "tensorboardX" in sys.modules or "torch" in sys.modules:
    return importlib.import_module("tensorboardX")
  sys.modules["torch"] = None
  try:
    return importlib.import_module("tensorboardX")
  finally:
    if "torch" in sys.modules and sys.modules["torch"] is None:
      del sys.modules["torch"]


class Logbook:
  """Appends {"step": int, name: float, ...} records to `metrics.jsonl` and TensorBoard.

  On resume from step s, records past s (written before a crash, and about to be
  written again) are dropped first, so the file reads as one uninterrupted run.
  """

  def __init__(self, workdir: pathlib.Path, *, resume_step: int, enabled: bool = True):
    self.enabled = enabled
    self.path = workdir / "metrics.jsonl"
    if not enabled:
      return
    records = [r for r in read_records(self.path) if r["step"] <= resume_step]
    files.write_text(self.path, "".join(json.dumps(r) + "\n" for r in records))
    self._file = self.path.open("a")
    self._tb = import_tensorboardx().SummaryWriter(str(workdir / "tensorboard"), purge_step=resume_step + 1)

  def write(self, step: int, metrics: dict[str, float]) -> None:
    if not self.enabled:
      return
    self._file.write(json.dumps({"step": step, **metrics}) + "\n")
    self._file.flush()
    for name, value in metrics.items():
      self._tb.add_scalar(name, value, step)

  def close(self) -> None:
    if self.enabled:
      self._file.close()
      self._tb.close()


def read_records(path: pathlib.Path) -> list[dict]:
  """The records of a metrics.jsonl file (a torn last line is ignored)."""
  if not path.exists():
    return []
  records = []
  for line in path.read_text().splitlines():
    try:
      records.append(json.loads(line))
    except json.JSONDecodeError:
      continue
  return records
