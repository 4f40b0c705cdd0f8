"""SIGTERM / SIGINT as a flag the training loop checks between steps (a clean stop: the
loop saves a checkpoint and returns), and the stop that every process of a run agrees on."""

import signal

import jax
import numpy as np
from jax.experimental import multihost_utils

# Reasons a run stops early, by code: 0 is "go on". The order is the priority when the
# processes of a run have different reasons (a signal over the time limit).
REASONS = (None, "time_limit", "SIGINT", "SIGTERM")
# A multi-process run agrees on a stop every this many steps (train.stop_check_every, this
# when a config has none): each agreement is a collective that waits for the step in
# flight, so not every step. A single process checks every step, at no cost.
AGREE_EVERY = 10


def agreed_stop(local: str | None) -> str | None:
  """The reason the run stops now, from this process's own (`local`: one of REASONS):
  with several processes the highest-priority reason of any of them, the same on all (a
  collective: every process must call it at the same step), so that they stop at one step
  and save one checkpoint together; one process's signal stops all of them."""
  if jax.process_count() == 1:
    return local
  codes = multihost_utils.process_allgather(np.int32(REASONS.index(local)))
  return REASONS[int(np.max(codes))]


class StopSignal:
  """Turns SIGTERM / SIGINT into a flag (`received`: the signal's name, or None)."""

  def __init__(self):
    self.received = None
    self._previous = {}

  def __enter__(self):
    for sig in (signal.SIGTERM, signal.SIGINT):
      try:
        self._previous[sig] = signal.signal(sig, self._handle)
      except ValueError:  # not the main thread: leave signals alone
        pass
    return self

  def _handle(self, signum, frame):
    self.received = signal.Signals(signum).name

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
