"""Building and finding the oneDNN glue, and what conv2d does without it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.kernels import conv, onednn_build
from genjax.kernels.conv_reference import conv2d_reference


def test_no_compiler_is_named(tmp_path):
  with pytest.raises(onednn_build.OneDnnUnavailable, match="no C.. compiler.*clang-0"):
    onednn_build.find_toolchain({"CXX": "clang-0", "PATH": str(tmp_path)})


def test_root_without_headers_is_named(tmp_path):
  env = {onednn_build.ROOT_ENV: str(tmp_path), "PATH": "/usr/bin:/bin"}
  if onednn_build.shutil.which("g++") is None:
    pytest.skip("no g++ on this machine")
  with pytest.raises(onednn_build.OneDnnUnavailable, match=str(tmp_path) + ".*dnnl.hpp"):
    onednn_build.find_toolchain(env)


def test_failed_build_reports_the_compiler_and_leaves_no_file(tmp_path, monkeypatch):
  if onednn_build.shutil.which("g++") is None:
    pytest.skip("no g++ on this machine")
  bad = tmp_path / "bad.cc"
  bad.write_text("this is not C++;\n")
  monkeypatch.setattr(onednn_build, "SOURCE", bad)
  tools = onednn_build.Toolchain("g++", tmp_path, None)
  out = tmp_path / "cache" / "lib.so"
  with pytest.raises(onednn_build.OneDnnUnavailable, match="(?s)compiling bad.cc failed.*error"):
    onednn_build.build(tools, out)
  assert list(out.parent.iterdir()) == []  # no half-written library


def test_library_name_follows_the_source(tmp_path, monkeypatch):
  src = tmp_path / "a.cc"
  src.write_text("int a;\n")
  monkeypatch.setattr(onednn_build, "SOURCE", src)
  env = {onednn_build.CACHE_ENV: str(tmp_path / "cache"), "PATH": str(tmp_path)}
  first = onednn_build.library_path(env)  # no compiler on that PATH: not needed to find it
  assert first.parent == tmp_path / "cache" and first == onednn_build.library_path(env)
  src.write_text("int b;\n")
  assert onednn_build.library_path(env) != first


def test_loading_never_compiles(tmp_path, monkeypatch):
  """Not built: one line naming the opt-in step; no compiler run, no file written."""
  def no_compiling(*args, **kwargs):
    raise AssertionError("compiled at load time")
  monkeypatch.setattr(onednn_build, "build", no_compiling)
  monkeypatch.setattr(onednn_build.subprocess, "run", no_compiling)
  monkeypatch.setenv(onednn_build.CACHE_ENV, str(tmp_path / "empty"))
  monkeypatch.delenv(onednn_build.OPT_OUT_ENV, raising=False)
  onednn_build._load.cache_clear()  # pylint: disable=protected-access
  try:
    reason = onednn_build.status()
    assert "not built" in reason and "python -m genjax.kernels.onednn_build" in reason
    assert "\n" not in reason and not (tmp_path / "empty").exists()
    assert "winograd" not in conv.available_implementations()
  finally:
    onednn_build._load.cache_clear()  # pylint: disable=protected-access


def test_unavailable_onednn_is_never_chosen_and_names_why_when_forced(monkeypatch):
  monkeypatch.setattr(onednn_build, "status", lambda: "no oneDNN on this test machine")
  monkeypatch.setattr(jax, "device_count", lambda: 1)
  assert "onednn" not in conv.available_implementations()
  assert "onednn" not in conv.autotune_candidates()
  with pytest.raises(onednn_build.OneDnnUnavailable, match="no oneDNN on this test machine"):
    conv.conv2d(jnp.zeros((1, 4, 4, 2)), jnp.zeros((3, 3, 2, 2)), impl="onednn")


def test_left_out_of_the_autotune_in_multi_device_programs(monkeypatch):
  monkeypatch.setattr(onednn_build, "status", lambda: None)
  monkeypatch.setattr(jax, "device_count", lambda: 4)
  assert "onednn" in conv.available_implementations()
  assert "onednn" not in conv.autotune_candidates()
  monkeypatch.setattr(jax, "device_count", lambda: 1)
  assert "onednn" in conv.autotune_candidates()


def test_vmap_over_a_leading_axis():
  if not onednn_build.available():
    pytest.skip(f"oneDNN not available: {onednn_build.status()}")
  rng = np.random.default_rng(0)
  x, w = rng.standard_normal((3, 2, 5, 6, 4)), rng.standard_normal((3, 3, 4, 5)) / 3
  f = jax.vmap(lambda x: conv.conv2d(x, jnp.asarray(w, jnp.float32), impl="onednn"))
  y = np.asarray(jax.jit(f)(jnp.asarray(x, jnp.float32)), np.float64)
  for i in range(3):
    ref = conv2d_reference(x[i], w)
    assert np.linalg.norm(y[i] - ref) <= 1e-5 * np.linalg.norm(ref)
