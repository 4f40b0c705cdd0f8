"""How conv2d picks its implementation: argument, environment, autotune, backend."""

import dataclasses
import functools

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

  def lookup(key, candidates, *, default):
    asked.append(key)
    return "taps"

  monkeypatch.setattr(autotune, "lookup", lookup)
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


@pytest.mark.parametrize("platform", ["gpu", "cuda", "rocm", "tpu"])
def test_other_backends_use_xla_unmeasured(tuned, platform):
  assert conv.select_impl(**SHAPES, device=FakeDevice(platform)) == "xla"
  assert conv.select_impl(**SHAPES, platform=platform) == "xla"
  assert not tuned


def test_conv2d_calls_the_selected_implementation(tuned, monkeypatch):
  monkeypatch.setenv(conv.IMPL_ENV, "taps")  # outside a trace platform_dependent runs eagerly
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
  monkeypatch.setattr(autotune, "lookup", lambda key, candidates, *, default: asked.append(key))
  monkeypatch.delenv(conv.IMPL_ENV, raising=False)
  assert conv.select_impl((1, 4, 4, 2), (3, 3, 2, 3), jnp.float32, stride=1,
                          padding="SAME") == conv.DEFAULTS["cpu"]
  assert not asked


def test_winograd_is_the_default_to_beat_where_available(monkeypatch):
  from genjax.kernels import onednn_build
  defaults = []
  monkeypatch.setattr(autotune, "lookup",
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


class CountingMeasure:
  def __init__(self):
    self.calls = 0

  def __call__(self, key, candidates, *, repeats):
    self.calls += 1
    return {n: 1e-3 for n in candidates}


def _tiny_step_and_args():
  """The train step of a small UNet and abstract (state, batch) arguments."""
  from genjax import configs
  from genjax.train import loop
  config = configs.load("tiny", ["data.image_size=(16, 16)", "model.base_channels=32",
                                 "model.channel_mult=(1, 2)", "model.attn_resolutions=(8,)",
                                 "model.num_heads=1", "train.batch_size=16", "mesh.data=1"])
  from genjax.train.step import train_step
  model, spec, tx, step_cfg, create = loop.build(config)
  state = jax.eval_shape(create, jax.random.PRNGKey(0))
  batch = {"image": jax.ShapeDtypeStruct((16, 16, 16, 3), jnp.float32),
           "label": jax.ShapeDtypeStruct((16,), jnp.int32)}
  step = functools.partial(train_step, model=model, spec=spec, tx=tx, cfg=step_cfg)
  return step, state, batch


@pytest.fixture
def empty_table(monkeypatch, tmp_path):
  monkeypatch.setenv(autotune.CACHE_ENV, str(tmp_path / "table.json"))
  monkeypatch.delenv(conv.IMPL_ENV, raising=False)
  monkeypatch.setattr(autotune, "MIN_MEASURE_FLOPS", 0)  # every convolution asks the table
  counter = CountingMeasure()
  monkeypatch.setattr(autotune, "measure", counter)
  autotune.clear_memo()
  yield tmp_path / "table.json", counter
  autotune.clear_memo()


def test_lowering_for_tpu_from_a_cpu_host_never_measures(empty_table):
  """Default settings (auto, empty table): tracing and lowering for TPU run no timing,
  the keys are only noted as missing, and the TPU program has no CPU custom call."""
  path, counter = empty_table
  step, state, batch = _tiny_step_and_args()
  lowered = jax.jit(step).trace(state, batch).lower(lowering_platforms=("tpu",))
  assert counter.calls == 0 and not path.exists()
  assert autotune.missing_keys()  # noted, for `genjax tune`
  assert "custom_call_target = \"genjax" not in lowered.as_text()


def test_a_cpu_choice_is_lowered_for_the_cpu_only(empty_table, monkeypatch):
  """A table entry naming a CPU-only implementation: the CPU program runs it, a TPU
  program lowered from the same trace runs XLA's convolution."""
  calls = []

  def marked(x, w, *, stride, pad_mode):  # "xla" plus an op XLA cannot remove
    calls.append(x.shape)
    return conv.conv2d_xla(x, w, stride=stride, pad_mode=pad_mode) + jax.lax.reduce_precision(
        jnp.zeros((), x.dtype), exponent_bits=5, mantissa_bits=2)

  monkeypatch.setitem(conv.IMPLEMENTATIONS, "taps", marked)
  x, w = jax.ShapeDtypeStruct((2, 8, 8, 4), jnp.float32), jax.ShapeDtypeStruct((3, 3, 4, 4),
                                                                               jnp.float32)
  key = conv.conv_key(x.shape, w.shape, x.dtype, stride=1, padding="SAME")
  autotune.pin({str(key): "taps"})
  traced = jax.jit(lambda x, w: conv.conv2d(x, w)).trace(x, w)
  assert calls  # traced once, both branches staged
  assert "reduce_precision" in traced.lower(lowering_platforms=("cpu",)).as_text()
  assert "reduce_precision" not in traced.lower(lowering_platforms=("tpu",)).as_text()
  assert conv.select_impl(x.shape, w.shape, x.dtype, stride=1, padding="SAME",
                          platform="tpu") == "xla"
  assert empty_table[1].calls == 0


def test_tune_measures_the_missing_keys_once(empty_table):
  path, counter = empty_table
  x = (4, 8, 8, 4)
  conv.select_impl(x, (3, 3, 4, 4), jnp.float32, stride=1, padding="SAME", platform="cpu")
  (key,) = autotune.missing_keys()
  choices = conv.tune(autotune.missing_keys())
  assert counter.calls == 1 and set(choices) == {str(key)} and not autotune.missing_keys()
  assert autotune.load(path)[str(key)]["impl"] == choices[str(key)]
  conv.tune([key])
  assert counter.calls == 1
