"""A run folder with two checkpoints (steps 2 and 4), shared by the resume-config and
damaged-checkpoint tests; each test copies it before changing anything."""

import shutil

import pytest

STEPS, EVERY = 4, 2


@pytest.fixture(scope="session")
def run_overrides(tiny_overrides):
  """The overrides of the shared run (resume it with these and nothing changes)."""
  return list(tiny_overrides) + [f"train.num_steps={STEPS}", f"train.checkpoint_every={EVERY}",
                                 "train.keep_checkpoints=5"]


@pytest.fixture(scope="session")
def two_checkpoint_run(shared_training, run_overrides):
  from genjax import configs
  return shared_training("two_checkpoints", configs.load("tiny", run_overrides))


@pytest.fixture
def run_copy(two_checkpoint_run, tmp_path):
  """A private copy of the two-checkpoint run folder."""
  dest = tmp_path / "run"
  shutil.copytree(two_checkpoint_run, dest)
  return dest
