"""genjax.kernels.compile_cache: the documented folder, the opt-out, and a second process
that reads the first one's entry instead of compiling."""

import os
import pathlib
import subprocess
import sys

import pytest

from genjax.kernels import compile_cache


@pytest.mark.parametrize("environ, expected", [
    ({"HOME": "/h"}, "/h/.cache/genjax/jax"),
    ({"HOME": "/h", "XDG_CACHE_HOME": "/x"}, "/x/genjax/jax"),
    ({"HOME": "/h", "XDG_CACHE_HOME": "/x", "GENJAX_CACHE_DIR": "/g"}, "/g/jax"),
    ({"GENJAX_CACHE_DIR": "/g", "JAX_COMPILATION_CACHE_DIR": "/j"}, "/j"),
])
def test_folder_precedence(environ, expected, monkeypatch):
  monkeypatch.setenv("HOME", environ.get("HOME", "/h"))
  assert compile_cache.cache_dir(environ) == pathlib.Path(expected)


def test_opt_out():
  assert compile_cache.enabled({})
  assert not compile_cache.enabled({compile_cache.OPT_OUT_ENV: "0"})


# Enables the cache as the `genjax` command does, then compiles one program; prints
# whether jax served it from the cache. Threshold 0: the program compiles in milliseconds.
_CHILD = """
import sys
from genjax.kernels import compile_cache
import jax, jax.numpy as jnp
print(compile_cache.enable())
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
from jax._src import compilation_cache as cc
hits = []
orig = cc.get_executable_and_time
def spy(*a, **k):
  out = orig(*a, **k)
  hits.append(out[0] is not None)
  return out
cc.get_executable_and_time = spy
jax.jit(lambda x: jnp.sin(x) @ x.T)(jnp.ones((8, 8))).block_until_ready()
print("HIT" if any(hits) else "MISS")
"""


def _child(env) -> str:
  env = {k: v for k, v in env.items() if k != "JAX_COMPILATION_CACHE_DIR"}
  done = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True,
                        timeout=300)
  assert done.returncode == 0, done.stderr[-2000:]
  return done.stdout.split()[-1]


def test_second_process_hits_the_cache_and_opt_out_writes_nothing(tmp_path):
  env = {**os.environ, "GENJAX_CACHE_DIR": str(tmp_path / "on")}
  env.pop(compile_cache.OPT_OUT_ENV, None)
  assert _child(env) == "MISS"
  assert any((tmp_path / "on" / "jax").iterdir())
  assert _child(env) == "HIT"
  off = {**env, "GENJAX_CACHE_DIR": str(tmp_path / "off"), compile_cache.OPT_OUT_ENV: "0"}
  assert _child(off) == "MISS"
  assert not (tmp_path / "off").exists()
