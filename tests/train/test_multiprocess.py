"""Two processes with two CPU devices each (gloo collectives) train like one process with
four devices; a dead peer stops the other process (it exits, non-zero); both resume; a
SIGTERM to one process stops both at the same step, with a checkpoint.

No wall-clock pass criteria: a child that hangs is caught by the generous bound of
tests/conftest.py (`children`), which dumps its stacks and fails saying where it hung."""

import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import genjax
from genjax import configs
from genjax.sample.load import restore_subtrees
from genjax.train import logbook, loop

STEPS = 4
# XLA's gloo collectives give up after 30 s when a peer has not joined a program's first
# run; this start-up shim makes one process reach its first step 35 s after the other.
LATE_FIRST_STEP = """
import runpy, sys, time
from genjax.train import loop
on_time, calls = loop.global_batch, []
def late_global_batch(*args):
  if not calls:
    time.sleep(35)
  calls.append(1)
  return on_time(*args)
loop.global_batch = late_global_batch
sys.argv[0] = "genjax"
runpy.run_module("genjax.cli", run_name="__main__")
"""


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _launch(children, workdir, port, overrides, *, heartbeat=10, late_process=None):
  env = children.env(XLA_FLAGS="--xla_force_host_platform_device_count=2",
                     GENJAX_CPU_COLLECTIVES="gloo", PYTHONUNBUFFERED="1")
  procs = []
  for pid in range(2):
    start = ["-c", LATE_FIRST_STEP] if pid == late_process else ["-m", "genjax.cli"]
    cmd = [sys.executable, *start, "train", "--config=tiny", f"--workdir={workdir}",
           f"--coordinator=127.0.0.1:{port}", "--num-processes=2", f"--process-id={pid}",
           f"--heartbeat-timeout={heartbeat}", *[f"--config.{o}" for o in overrides]]
    log = open(pathlib.Path(workdir).with_suffix(f".{pid}.log"), "ab")
    procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT))
  return procs


def _logs(workdir):
  return lambda: "\n".join(f"---- process {pid} ----\n" + pathlib.Path(workdir).with_suffix(
      f".{pid}.log").read_text(errors="replace")[-3000:] for pid in range(2))


def _wait(children, procs, workdir, what):
  return [children.finish(p, f"{what}, process {i}", _logs(workdir))[0]
          for i, p in enumerate(procs)]


def _params(workdir, step):
  return restore_subtrees(workdir, ("params",), step=step)["params"]


@pytest.mark.slow
def test_two_processes_match_one_process_and_resample(tmp_path, tiny_overrides, children):
  # Some biases sit in the null space of the GroupNorm after them: their gradient is
  # float noise of the reduction order, which Adam with eps=1e-8 turns into +-lr steps.
  # A larger eps keeps that noise at noise level; every other update is unchanged.
  overrides = tiny_overrides + [f"train.num_steps={STEPS}", f"train.checkpoint_every={STEPS}",
                                "train.adam_eps=1e-5"]
  two = tmp_path / "two"
  two.mkdir()
  # Process 1 starts its first step 35 s late: the run must not fail on that.
  codes = _wait(children, _launch(children, two, _free_port(), overrides, late_process=1), two,
                "the 2-process run")
  assert codes == [0, 0], _logs(two)()
  one = tmp_path / "one"
  loop.train(configs.load("tiny", overrides), one, progress=False)  # 1 process, 4 devices

  a, b = _params(two, STEPS), _params(one, STEPS)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-5, rtol=0)
  la = [r["loss"] for r in logbook.read_records(two / "metrics.jsonl")]
  lb = [r["loss"] for r in logbook.read_records(one / "metrics.jsonl")]
  np.testing.assert_allclose(la, lb, rtol=1e-5)

  # The 2-process checkpoint restores in this single process and samples.
  sample_fn, params = genjax.load_sampler(two, sampler="ddim", steps=4)
  images = np.asarray(jax.jit(sample_fn, static_argnums=2)(params, jax.random.PRNGKey(0), 2))
  assert images.shape == (2, 8, 16, 3) and np.isfinite(images).all()


@pytest.mark.slow
def test_dead_peer_stops_the_run_both_resume_and_one_sigterm_stops_both(tmp_path, tiny_overrides, children):
  workdir = tmp_path / "run"
  workdir.mkdir()
  # The restart trains to the same num_steps, so it runs the program the first launch
  # compiled (persistent cache) instead of compiling another (num_steps sets the schedule).
  # The kill comes right after checkpoint 2, and the SIGTERM of the resumed run right after
  # its first checkpoint: long before step 2000, which no launch reaches.
  total = 2000
  overrides = tiny_overrides + [f"train.num_steps={total}", "train.checkpoint_every=2",
                                "train.keep_checkpoints=20"]
  # A heartbeat timeout long enough that a loaded machine (threads starved for seconds while
  # compiling) does not abort the healthy run: measured at load 23 on 2 cores, 5 s did.
  procs = _launch(children, workdir, _free_port(), overrides, heartbeat=30)
  children.wait_until(lambda: (workdir / "checkpoints" / "2" / "_CHECKPOINT_METADATA").exists(),
                      procs, "the 2-process run, before checkpoint 2", _logs(workdir))
  procs[1].send_signal(signal.SIGKILL)
  t = time.monotonic()
  # The property: the survivor exits with an error instead of waiting for its peer forever
  # (a hang is caught by the bound in `children.finish`, with the survivor's stacks).
  code, _, _ = children.finish(procs[0], "the survivor of a killed peer", _logs(workdir))
  waited = time.monotonic() - t
  children.finish(procs[1], "the killed process")
  assert code != 0
  log0 = workdir.with_suffix(".0.log").read_text()
  assert any(word in log0.lower() for word in ("heartbeat", "unavailable", "connection",
                                               "terminated", "peer", "gloo")), log0[-3000:]
  print(f"surviving process exited {waited:.1f} s after its peer was killed")

  steps = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
  last = steps[-1]
  assert last < total
  # The resumed run: SIGTERM to process 1 alone (a preemption that reaches the hosts at
  # different moments) stops both at one step, with one checkpoint, and both exit 128 + 15.
  procs = _launch(children, workdir, _free_port(), overrides, heartbeat=30)
  children.wait_until(
      lambda: (workdir / "checkpoints" / str(last + 2) / "_CHECKPOINT_METADATA").exists(),
      procs, "the resumed 2-process run, before its first checkpoint", _logs(workdir))
  procs[1].send_signal(signal.SIGTERM)
  codes = _wait(children, procs, workdir, "the resumed 2-process run, after SIGTERM to one")
  assert codes == [128 + signal.SIGTERM] * 2, _logs(workdir)()
  logs = [workdir.with_suffix(f".{pid}.log").read_text() for pid in range(2)]
  assert f"at step {last}" in logs[0]
  stops = [re.findall(rf"stopping at step (\d+) of {total}: SIGTERM", log) for log in logs]
  assert stops[0] and stops[0] == stops[1], _logs(workdir)()
  stopped = int(stops[0][0])
  assert last + 2 <= stopped < total
  leftovers = [p.name for p in (workdir / "checkpoints").iterdir() if "tmp" in p.name]
  assert not leftovers
  assert (workdir / "checkpoints" / str(stopped) / "_CHECKPOINT_METADATA").exists()
