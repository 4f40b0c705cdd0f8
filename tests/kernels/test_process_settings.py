"""Process-wide settings only on CPU backends; what was applied is kept for the run folder."""

import pytest

from genjax.kernels import compile_cache, process_settings, xla_flags


@pytest.mark.parametrize("platforms, cpu", [("cpu", True), ("tpu", False), ("cuda,cpu", False),
                                            ("", True)])
def test_cpu_backend_expected_from_jax_platforms(platforms, cpu):
  assert process_settings.cpu_backend_expected({"JAX_PLATFORMS": platforms}) == cpu


def test_an_installed_accelerator_plugin_means_no_cpu_settings(monkeypatch):
  monkeypatch.setattr(process_settings.importlib.metadata, "entry_points",
                      lambda group: ["jax_cuda12_plugin"] if group == "jax_plugins" else [])
  assert not process_settings.cpu_backend_expected({})


@pytest.fixture
def no_cache_change(monkeypatch):
  """apply() without touching this process's compilation cache settings, nor what it records
  as applied (a later run in this process writes that to its runtime.json)."""
  monkeypatch.setattr(compile_cache, "enable", lambda environ: {"enabled": False, "why": "test"})
  monkeypatch.setattr(process_settings, "_applied", dict(process_settings.applied()))


def test_accelerator_gets_neither_flags_nor_malloc(no_cache_change, monkeypatch):
  calls = []
  monkeypatch.setattr(process_settings.host_memory, "apply", lambda environ: calls.append(1))
  env = {"JAX_PLATFORMS": "tpu", "XLA_FLAGS": "--xla_dump_to=/tmp/x"}
  settings = process_settings.apply(env)
  assert env["XLA_FLAGS"] == "--xla_dump_to=/tmp/x" and not calls
  assert settings["xla_cpu_flags_added"] is False and settings["malloc_tuned"] is False
  assert process_settings.applied() == settings


def test_cpu_gets_flags_and_cache_opt_out_reaches_subprocesses(no_cache_change, monkeypatch):
  monkeypatch.setattr(process_settings.host_memory, "apply", lambda environ: True)
  env = {"JAX_PLATFORMS": "cpu"}
  settings = process_settings.apply(env, compile_cache_on=False)
  assert xla_flags.CPU_CONV_FLAGS[0] in env["XLA_FLAGS"]
  assert settings["xla_cpu_flags_added"] and settings["malloc_tuned"]
  assert env[compile_cache.OPT_OUT_ENV] == "0"


def test_recorded_environment_lists_only_what_is_set():
  env = {"GENJAX_CONV_IMPL": "xla", "XLA_FLAGS": "--a", "HOME": "/h"}
  assert process_settings.recorded_environment(env) == {"GENJAX_CONV_IMPL": "xla",
                                                        "XLA_FLAGS": "--a"}
