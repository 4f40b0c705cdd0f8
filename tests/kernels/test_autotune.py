"""The autotune table: file format, measure-once, bad or unwritable files, small convs,
failing candidates. Nothing here depends on which implementation is faster: timings
are faked, or only their presence is checked."""

import dataclasses
import json
import logging
import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.kernels import autotune, conv
from genjax.kernels.conv_reference import conv2d_reference

KEY = autotune.ConvKey("cpu", "Some CPU x2", "0.10.2", 8, 64, 64, 128, 128, 3, 3, 1,
                       "float32", "SAME")


@pytest.fixture(autouse=True)
def _fresh_memo():
  autotune.clear_memo()
  yield
  autotune.clear_memo()


class FakeMeasure:
  """Stands in for autotune.measure: fixed seconds, counts its calls."""

  def __init__(self, seconds):
    self.seconds, self.calls = seconds, 0

  def __call__(self, key, candidates, *, repeats):
    self.calls += 1
    assert set(candidates) >= set(self.seconds)
    return dict(self.seconds)


def test_key_string():
  assert str(KEY) == "cpu|Some CPU x2|jax0.10.2|8x64x64x128->128|3x3|s1|float32|SAME"
  assert KEY.flops == 2 * 8 * 64 * 64 * 128 * 128 * 9
  strided = autotune.ConvKey.for_call((1, 7, 9, 3), (3, 3, 3, 5), jnp.bfloat16, stride=2,
                                      padding="SPHERE")
  assert (strided.dtype, strided.padding, strided.stride) == ("bfloat16", "SPHERE", 2)
  assert strided.flops == 2 * 1 * 4 * 5 * 3 * 5 * 9  # H' = W' rounded up


def test_measures_once_and_writes_a_version_1_table(tmp_path):
  path = tmp_path / "sub" / "conv_autotune.json"
  fake = FakeMeasure({"xla": 2e-3, "taps": 1e-3})
  assert autotune.choose(KEY, conv.IMPLEMENTATIONS, default="xla", path=path,
                         measure_fn=fake) == "taps"
  table = json.loads(path.read_text())
  assert table["version"] == 1
  entry = table["entries"][str(KEY)]
  assert entry["impl"] == "taps" and entry["seconds"] == {"xla": 2e-3, "taps": 1e-3}
  assert entry["repeats"] >= 1 and entry["measured_at"].endswith("Z")
  # Same process: memo. New process (memo cleared): the file. Never measured again.
  assert autotune.choose(KEY, conv.IMPLEMENTATIONS, default="xla", path=path,
                         measure_fn=fake) == "taps"
  autotune.clear_memo()
  assert autotune.choose(KEY, conv.IMPLEMENTATIONS, default="xla", path=path,
                         measure_fn=fake) == "taps"
  assert fake.calls == 1
  assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary files left


def test_measured_again_when_the_candidates_change(tmp_path):
  """A table made before oneDNN was installed (or after it was removed) is stale."""
  path = tmp_path / "t.json"
  fake = FakeMeasure({"xla": 2e-3, "taps": 1e-3})
  two = {n: conv.IMPLEMENTATIONS[n] for n in ("xla", "taps")}
  assert autotune.choose(KEY, two, default="xla", path=path, measure_fn=fake) == "taps"
  assert autotune.load(path)[str(KEY)]["candidates"] == ["taps", "xla"]
  autotune.clear_memo()
  fake.seconds = {"xla": 2e-3, "taps": 1e-3, "onednn": 0.5e-3}
  three = {**two, "onednn": conv.IMPLEMENTATIONS["onednn"]}
  assert autotune.choose(KEY, three, default="xla", path=path, measure_fn=fake) == "onednn"
  autotune.clear_memo()
  assert autotune.choose(KEY, three, default="xla", path=path, measure_fn=fake) == "onednn"
  assert fake.calls == 2


def test_default_kept_within_the_margin(tmp_path):
  near = FakeMeasure({"xla": 1.14e-3, "taps": 1e-3, "gemm": 1.5e-3})
  assert autotune.choose(KEY, conv.IMPLEMENTATIONS, default="xla", path=tmp_path / "a.json",
                         measure_fn=near) == "xla"
  far = FakeMeasure({"xla": 1.16e-3, "taps": 1e-3, "gemm": 1.5e-3})
  assert autotune.choose(KEY, conv.IMPLEMENTATIONS, default="xla", path=tmp_path / "b.json",
                         measure_fn=far) == "taps"


def test_cache_path_from_environment(monkeypatch, tmp_path):
  monkeypatch.setenv(autotune.CACHE_ENV, str(tmp_path / "t.json"))
  assert autotune.cache_path() == tmp_path / "t.json"
  monkeypatch.delenv(autotune.CACHE_ENV)
  assert autotune.cache_path().parts[-3:] == (".cache", "genjax", "conv_autotune.json")


def test_store_merges_entries(tmp_path):
  path = tmp_path / "t.json"
  autotune.store(path, "a", {"impl": "xla"})
  autotune.store(path, "b", {"impl": "taps"})
  assert autotune.load(path) == {"a": {"impl": "xla"}, "b": {"impl": "taps"}}


@pytest.mark.parametrize("text, message", [
    ("{not json", "not JSON"), ('{"version": 0, "entries": {}}', "version 0"), ("[1]", "object"),
])
def test_load_rejects_bad_files(tmp_path, text, message):
  path = tmp_path / "t.json"
  path.write_text(text)
  with pytest.raises(autotune.AutotuneCacheError, match=message) as e:
    autotune.load(path)
  assert str(path) in str(e.value)


def test_bad_file_is_measured_again_and_rewritten(tmp_path, caplog):
  path = tmp_path / "t.json"
  path.write_text("{not json")
  fake = FakeMeasure({"xla": 1e-3, "taps": 2e-3})
  with caplog.at_level(logging.WARNING, logger=autotune.__name__):
    assert autotune.choose(KEY, conv.IMPLEMENTATIONS, default="taps", path=path,
                           measure_fn=fake) == "xla"
  assert str(path) in caplog.text
  assert autotune.load(path)[str(KEY)]["impl"] == "xla"


def test_entry_naming_an_unknown_implementation_is_measured_again(tmp_path):
  path = tmp_path / "t.json"
  autotune.store(path, str(KEY), {"impl": "winograd_removed"})
  fake = FakeMeasure({"xla": 1e-3, "taps": 2e-3})
  assert autotune.choose(KEY, conv.IMPLEMENTATIONS, default="taps", path=path,
                         measure_fn=fake) == "xla"
  assert fake.calls == 1


def test_unwritable_cache_keeps_the_choice(tmp_path, caplog):
  blocker = tmp_path / "file"
  blocker.write_text("")
  path = blocker / "t.json"  # its parent is a file: cannot be created
  fake = FakeMeasure({"xla": 2e-3, "taps": 1e-3})
  with caplog.at_level(logging.WARNING, logger=autotune.__name__):
    assert autotune.choose(KEY, conv.IMPLEMENTATIONS, default="xla", path=path,
                           measure_fn=fake) == "taps"
    assert autotune.choose(KEY, conv.IMPLEMENTATIONS, default="xla", path=path,
                           measure_fn=fake) == "taps"
  assert "not written" in caplog.text and fake.calls == 1


def test_small_convolutions_use_the_default_unmeasured(tmp_path):
  small = autotune.ConvKey.for_call((1, 8, 8, 4), (3, 3, 4, 4), jnp.float32, stride=1,
                                    padding="SAME")
  fake = FakeMeasure({"xla": 2e-3, "taps": 1e-3})
  path = tmp_path / "t.json"
  assert autotune.choose(small, conv.IMPLEMENTATIONS, default="xla", path=path,
                         measure_fn=fake) == "xla"
  assert fake.calls == 0 and not path.exists()


def _broken(x, w, *, stride, pad_mode):
  raise RuntimeError("does not compile here")


def test_failing_candidates_are_left_out(tmp_path):
  small = autotune.ConvKey.for_call((1, 6, 6, 3), (3, 3, 3, 2), jnp.float32, stride=1,
                                    padding="CIRCULAR_W")
  seconds = autotune.measure(small, {"broken": _broken, "xla": conv.conv2d_xla}, repeats=1)
  assert set(seconds) == {"xla"} and seconds["xla"] > 0
  path = tmp_path / "t.json"
  assert autotune.choose(small, {"broken": _broken}, default="xla", path=path,
                         min_flops=0) == "xla"  # nothing ran: the default


def test_traced_reads_then_tuned_then_used(monkeypatch, tmp_path):
  """conv2d under jit only notes the missing key (the file is not written while
  tracing); `conv.tune` measures it on concrete arrays outside the trace; the next trace
  uses the entry and computes the right convolution with it."""
  path = tmp_path / "t.json"
  monkeypatch.setenv(autotune.CACHE_ENV, str(path))
  monkeypatch.delenv(conv.IMPL_ENV, raising=False)
  monkeypatch.setattr(autotune, "MIN_MEASURE_FLOPS", 0)
  rng = np.random.default_rng(0)
  x, w = rng.standard_normal((2, 5, 6, 3)), rng.standard_normal((3, 3, 3, 4))
  args = jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32)
  ref = conv2d_reference(x, w, padding="SPHERE")

  def run():
    with jax.default_matmul_precision("highest"):
      return jax.jit(lambda x, w: conv.conv2d(x, w, padding="SPHERE"))(*args)

  y = run()
  assert not path.exists() and len(autotune.missing_keys()) == 1
  conv.tune(autotune.missing_keys())
  (entry,) = autotune.load(path).values()
  assert entry["impl"] in conv.IMPLEMENTATIONS
  assert set(entry["seconds"]) == set(entry["candidates"]) == set(conv.autotune_candidates())
  y = run()
  assert list(autotune.used_choices().values()) == [entry["impl"]]
  assert np.linalg.norm(np.asarray(y, np.float64) - ref) <= 1e-5 * np.linalg.norm(ref)


def test_pinned_choice_wins_over_the_table(tmp_path, caplog):
  path = tmp_path / "t.json"
  autotune.store(path, str(KEY), {"impl": "taps", "candidates": ["taps", "xla"]})
  two = {n: conv.IMPLEMENTATIONS[n] for n in ("xla", "taps")}
  assert autotune.lookup(KEY, two, default="xla", path=path) == "taps"
  autotune.pin({str(KEY): "xla"})
  assert autotune.lookup(KEY, two, default="taps", path=path) == "xla"
  autotune.pin({str(KEY): "winograd"})  # pinned, but not available in this process
  with caplog.at_level(logging.WARNING, logger=autotune.__name__):
    assert autotune.lookup(KEY, two, default="xla", path=path) == "xla"
  assert "winograd" in caplog.text and autotune.used_choices() == {str(KEY): "xla"}


def test_answers_are_per_thread(tmp_path):
  """A run traces its train step in a thread of its own while the main thread builds the
  state (genjax.train.runtime.StepAhead): each thread sees the choices of its own traces."""
  path = tmp_path / "t.json"
  autotune.store(path, str(KEY), {"impl": "taps", "candidates": ["taps", "xla"]})
  two = {n: conv.IMPLEMENTATIONS[n] for n in ("xla", "taps")}
  other = autotune.ConvKey(**{**dataclasses.asdict(KEY), "batch": KEY.batch + 1})
  autotune.forget_used()
  assert autotune.lookup(KEY, two, default="xla", path=path) == "taps"
  seen = {}

  def in_thread():
    seen["before"] = autotune.used_choices()
    autotune.lookup(other, two, default="xla", path=path)  # not in the table: missing
    seen["after"] = autotune.used_choices(), [str(k) for k in autotune.missing_keys()]

  thread = threading.Thread(target=in_thread)
  thread.start()
  thread.join()
  assert seen["before"] == {}
  assert seen["after"] == ({str(other): "xla"}, [str(other)])
  assert autotune.used_choices() == {str(KEY): "taps"} and autotune.missing_keys() == []
