"""runtime.json: the conv choices and the environment of a run, recorded when it starts and
used again when it resumes, whatever the autotune table says by then."""

import json
import threading

import pytest

from genjax import configs
from genjax.kernels import autotune, conv
from genjax.train import loop, runtime


class FakeMeasure:
  """autotune.measure stand-in: `fastest` wins by far; counts its calls and notes, for each,
  its thread and whether `workdir` had its config.json (written once the state is built)."""

  def __init__(self, fastest, workdir=None):
    self.fastest, self.calls, self.workdir, self.seen = fastest, 0, workdir, set()

  def __call__(self, key, candidates, *, repeats):
    self.calls += 1
    self.seen.add((threading.current_thread().name,
                   self.workdir is not None and (self.workdir / "config.json").is_file()))
    return {n: (1e-3 if n == self.fastest else 1.0) for n in candidates}


def _note_step_threads(monkeypatch) -> list:
  """The threads in which the runs' train steps are made (and then traced)."""
  threads = []
  make = loop.DiffusionTrainer.make_step_fn

  def noted(self, mesh, shardings):
    threads.append(threading.current_thread().name)
    return make(self, mesh, shardings)
  monkeypatch.setattr(loop.DiffusionTrainer, "make_step_fn", noted)
  return threads


@pytest.fixture
def fresh_tuning(monkeypatch, tmp_path):
  monkeypatch.setenv(autotune.CACHE_ENV, str(tmp_path / "table.json"))
  monkeypatch.setenv(conv.IMPL_ENV, "auto")
  monkeypatch.delenv(conv.IMPL_ENV)  # teardown restores the variable's absence
  monkeypatch.setattr(autotune, "MIN_MEASURE_FLOPS", 0)  # the tiny model's convs are tuned
  autotune.clear_memo()
  yield tmp_path
  autotune.clear_memo()


def _config(tiny_overrides, steps):
  return configs.load("tiny", list(tiny_overrides) + [
      f"train.num_steps={steps}", "train.checkpoint_every=1", "train.sample_every=1000"])


@pytest.mark.slow  # two short training runs with their own programs (~1 min on 2 idle cores)
def test_choices_recorded_then_pinned_on_resume(fresh_tuning, tiny_overrides, monkeypatch):
  workdir = fresh_tuning / "run"
  first = FakeMeasure("taps", workdir)
  monkeypatch.setattr(autotune, "measure", first)
  threads = _note_step_threads(monkeypatch)
  loop.train(_config(tiny_overrides, 1), workdir, progress=False)
  record = json.loads((workdir / runtime.FILE).read_text())
  choices = record["conv"]["choices"]
  assert first.calls >= 1 and choices and set(choices.values()) == {"taps"}
  # A new run makes, traces and compiles its step in a thread of its own (runtime.StepAhead)
  # while the state is built, and measures only once the state is built.
  assert set(threads) == {"genjax-train-step"} and first.seen == {("genjax-train-step", True)}
  assert (record["version"], record["backend"], record["conv"]["setting"]) == (1, "cpu", "auto")
  assert "XLA_FLAGS" in record["environment"]
  assert record["process_settings"]["compile_cache"]["enabled"] is True

  # The table is gone and would now pick "xla": the resumed run uses the recorded "taps",
  # measuring nothing.
  (fresh_tuning / "table.json").unlink()
  autotune.clear_memo()
  later = FakeMeasure("xla")
  monkeypatch.setattr(autotune, "measure", later)
  threads.clear()
  answered = []  # (thread, key, implementation) of every dispatcher lookup
  lookup = autotune.lookup

  def noted_lookup(key, *args, **kwargs):
    impl = lookup(key, *args, **kwargs)
    answered.append((threading.current_thread().name, str(key), impl))
    return impl
  monkeypatch.setattr(autotune, "lookup", noted_lookup)
  loop.train(_config(tiny_overrides, 2), workdir, progress=False)
  # A resume too makes and traces its step in its own thread, while the main thread restores.
  assert later.calls == 0 and threads == ["genjax-train-step"]
  used = {k: impl for thread, k, impl in answered if thread == "genjax-train-step"}
  assert {k: used[k] for k in choices} == choices
  assert json.loads((workdir / runtime.FILE).read_text()) == record  # written once


def test_environment_override_recorded_and_reused(fresh_tuning, tiny_overrides, monkeypatch):
  workdir = fresh_tuning / "run"
  monkeypatch.setenv(conv.IMPL_ENV, "gemm")
  autotune.forget_used()
  runtime.files.write_json(workdir / runtime.FILE, runtime.record(_config(tiny_overrides, 1)))
  record = json.loads((workdir / runtime.FILE).read_text())
  assert record["conv"]["setting"] == "gemm" and record["conv"]["source"] == conv.IMPL_ENV
  assert record["environment"][conv.IMPL_ENV] == "gemm" and record["conv"]["choices"] == {}
  monkeypatch.delenv(conv.IMPL_ENV)
  recorded = runtime.restore_settings(workdir)  # what a resume does first
  assert recorded == record
  import os
  assert os.environ[conv.IMPL_ENV] == "gemm"


def test_bad_runtime_file_is_named(tmp_path):
  (tmp_path / runtime.FILE).write_text('{"version": 7}')
  with pytest.raises(ValueError, match="runtime.json: not a version-1"):
    runtime.read(tmp_path)


def test_failed_start_stops_the_step_thread_before_it_measures(fresh_tuning, tiny_overrides,
                                                                monkeypatch):
  """A new run's step thread waits for the state before measuring; when building the state
  fails (here train.init_params holds another model's weights), it is told to stop."""
  from flax import serialization
  import numpy as np
  weights = fresh_tuning / "other_model.msgpack"
  weights.write_bytes(serialization.msgpack_serialize({"params": {"w": np.zeros(3, np.float32)}}))
  measure = FakeMeasure("taps")
  monkeypatch.setattr(autotune, "measure", measure)
  threads = _note_step_threads(monkeypatch)
  config = _config(tiny_overrides, 1)
  config.train.init_params = str(weights)
  with pytest.raises(ValueError, match="do not match the model"):
    loop.train(config, fresh_tuning / "run", progress=False)
  for thread in threading.enumerate():
    if thread.name == "genjax-train-step":
      thread.join(timeout=600)  # a hang guard only: it ends once told to stop
      assert not thread.is_alive()
  assert threads == ["genjax-train-step"] and measure.calls == 0
  assert not (fresh_tuning / "run" / "config.json").exists()
