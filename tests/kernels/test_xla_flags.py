"""The XLA:CPU flags of genjax.kernels.xla_flags: added once, never over the user's own,
off with GENJAX_XLA_FLAGS=0, part of the autotune key, and set before jax starts."""

import subprocess
import sys

from genjax.kernels import autotune, xla_flags

FLAG = xla_flags.CPU_CONV_FLAGS[0]
NAME = FLAG.split("=")[0]


def test_apply_adds_the_flags_once_and_keeps_other_flags():
  env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
  assert xla_flags.apply(env)
  assert env["XLA_FLAGS"].split() == ["--xla_force_host_platform_device_count=4", FLAG]
  assert not xla_flags.apply(env)  # idempotent
  assert env["XLA_FLAGS"].split() == ["--xla_force_host_platform_device_count=4", FLAG]
  empty = {}
  assert xla_flags.apply(empty) and empty["XLA_FLAGS"] == FLAG


def test_a_flag_the_user_set_is_kept_and_opt_out_changes_nothing():
  env = {"XLA_FLAGS": f"{NAME}=-individual_dot"}
  assert not xla_flags.apply(env)
  assert env["XLA_FLAGS"] == f"{NAME}=-individual_dot"
  env = {xla_flags.OPT_OUT_ENV: "0", "XLA_FLAGS": "--xla_cpu_enable_fast_math=false"}
  assert not xla_flags.apply(env)
  assert env["XLA_FLAGS"] == "--xla_cpu_enable_fast_math=false"


def test_cpu_flags_are_part_of_the_autotune_key(monkeypatch):
  key = lambda: str(autotune.ConvKey.for_call((8, 64, 64, 128), (3, 3, 128, 128), "float32",
                                              stride=1, padding="SAME"))
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
  plain = key()
  monkeypatch.setenv("XLA_FLAGS", f"--xla_force_host_platform_device_count=4 {FLAG}")
  flagged = key()
  assert plain != flagged and flagged.endswith(f"|{FLAG}")
  assert xla_flags.cpu_flags_in_effect() == FLAG  # the device count is not a CPU flag


def test_importing_genjax_starts_no_jax_backend(children):
  # apply() works only before the CPU backend starts: the CLI calls it after its imports.
  source = ("import genjax, genjax.cli, genjax.demo, genjax.train.loop, genjax.apps.vr.run, "
            "genjax.apps.comic.run, benchmarks.common\n"
            "from jax._src import xla_bridge\n"
            "assert not xla_bridge.backends_are_initialized()")
  code, _, err = children.finish(subprocess.Popen(
      [sys.executable, "-c", source], env=children.env(), stdout=subprocess.PIPE,
      stderr=subprocess.PIPE), "importing genjax in a child")
  assert code == 0, err[-3000:]
