"""How conv2d picks its implementation: argument, environment, autotune, backend."""

import dataclasses

import jax
import jax.numpy as jnp
import pytest

from genjax.kernels import autotune, conv

SHAPES = dict(x_shape=(8, 32, 32, 64), w_shape=(3, 3, 64, 64), dtype=jnp.float32, stride=1,
              padding="SAME")


@dataclasses.dataclass
class FakeDevice:
  platform: str
  device_kind: str = "fake"


@pytest.fixture
def tuned(monkeypatch):
  """Autotune answers "taps" and records that it was asked."""
  asked = []

  def choose(key, candidates, *, default):
    asked.append(key)
    return "taps"

  monkeypatch.setattr(autotune, "choose", choose)
  monkeypatch.setattr(autotune, "MIN_MEASURE_FLOPS", 0)  # every size asks the table
  monkeypatch.delenv(conv.IMPL_ENV, raising=False)
  return asked


def test_auto_on_cpu_asks_the_autotune_table(tuned):
  assert conv.select_impl(**SHAPES) == "taps"
  assert conv.select_impl(**SHAPES, impl="auto") == "taps"
  assert [(k.batch, k.cin, k.padding) for k in tuned] == [(8, 64, "SAME")] * 2


def test_environment_overrides_auto(tuned, monkeypatch):
  monkeypatch.setenv(conv.IMPL_ENV, "xla")
  assert conv.select_impl(**SHAPES) == "xla"
  monkeypatch.setenv(conv.IMPL_ENV, "auto")
  assert conv.select_impl(**SHAPES) == "taps"
  assert len(tuned) == 1


def test_argument_overrides_environment(tuned, monkeypatch):
  monkeypatch.setenv(conv.IMPL_ENV, "xla")
  assert conv.select_impl(**SHAPES, impl="taps") == "taps"
  assert not tuned


def test_bad_environment_value_names_the_variable(tuned, monkeypatch):
  monkeypatch.setenv(conv.IMPL_ENV, "cudnn9")
  with pytest.raises(ValueError, match=r"'cudnn9' from \$GENJAX_CONV_IMPL.*xla, taps, gemm"):
    conv.select_impl(**SHAPES)


@pytest.mark.parametrize("platform", ["gpu", "tpu"])
def test_other_backends_use_xla_unmeasured(tuned, platform):
  assert conv.select_impl(**SHAPES, device=FakeDevice(platform)) == "xla"
  assert not tuned


def test_conv2d_calls_the_selected_implementation(tuned, monkeypatch):
  calls = []

  def spy(x, w, *, stride, pad_mode):
    calls.append((x.shape, stride, pad_mode))
    return conv.conv2d_xla(x, w, stride=stride, pad_mode=pad_mode)

  monkeypatch.setitem(conv.IMPLEMENTATIONS, "taps", spy)
  y = conv.conv2d(jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 2, 3)), stride=2, padding="CIRCULAR_W")
  assert y.shape == (1, 2, 2, 3)
  assert calls == [((1, 4, 4, 2), 2, "CIRCULAR_W")]


def test_symbolic_batch_uses_the_default_without_measuring(monkeypatch):
  """jax.export traces with a symbolic batch: nothing concrete to measure, no error."""
  import jax
  import numpy as np
  from genjax.kernels import conv as conv_lib
  monkeypatch.delenv("GENJAX_CONV_IMPL", raising=False)
  b, = jax.export.symbolic_shape("b")
  assert conv_lib.select_impl((b, 64, 64, 128), (3, 3, 128, 128), np.float32, stride=1,
                              padding="SAME") == conv_lib.DEFAULTS["cpu"]
  x = jax.ShapeDtypeStruct((b, 8, 16, 3), np.float32)
  w = jax.ShapeDtypeStruct((3, 3, 3, 4), np.float32)
  exported = jax.export.export(jax.jit(conv_lib.conv2d))(x, w)
  assert str(exported.out_avals[0].shape[0]) == "b"


def test_small_convolutions_use_the_default_without_asking(monkeypatch):
  asked = []
  monkeypatch.setattr(autotune, "choose", lambda key, candidates, *, default: asked.append(key))
  monkeypatch.delenv(conv.IMPL_ENV, raising=False)
  assert conv.select_impl((1, 4, 4, 2), (3, 3, 2, 3), jnp.float32, stride=1,
                          padding="SAME") == conv.DEFAULTS["cpu"]
  assert not asked


def test_winograd_is_the_default_to_beat_where_available(monkeypatch):
  from genjax.kernels import onednn_build
  defaults = []
  monkeypatch.setattr(autotune, "choose",
                      lambda key, candidates, *, default: defaults.append(default) or default)
  monkeypatch.delenv(conv.IMPL_ENV, raising=False)
  monkeypatch.setattr(onednn_build, "status", lambda: None)
  monkeypatch.setattr(jax, "device_count", lambda: 1)
  assert conv.select_impl(**SHAPES) == "winograd"
  monkeypatch.setattr(jax, "device_count", lambda: 4)  # left out of multi-device programs
  assert conv.select_impl(**SHAPES) == "xla"
  monkeypatch.setattr(jax, "device_count", lambda: 1)
  monkeypatch.setattr(onednn_build, "status", lambda: "not installed")
  assert conv.select_impl(**SHAPES) == "xla"
  assert defaults == ["winograd", "xla", "xla"]
