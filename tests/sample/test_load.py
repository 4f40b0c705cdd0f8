"""Loading a run's parameters says nothing when nothing is wrong."""

import logging

import jax
import numpy as np

from genjax.sample.load import restore_subtrees


def test_loading_parameters_logs_no_warning(two_checkpoint_run, caplog):
  with caplog.at_level(logging.INFO):
    restored = restore_subtrees(two_checkpoint_run, ("ema_params", "step"))
  assert int(restored["step"]) == 4
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(restored["ema_params"]))
  noisy = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
  assert noisy == []
