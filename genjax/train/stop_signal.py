"""SIGTERM / SIGINT as a flag the training loop checks between steps (a clean stop: the
loop saves a checkpoint and returns)."""

import signal


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
