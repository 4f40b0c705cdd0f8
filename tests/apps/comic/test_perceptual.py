"""The unpaired content and style terms on VGG19 features (random VGG19 weights: the
properties tested do not depend on them)."""

import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import configs
from genjax.apps.comic import perceptual
from genjax.apps.comic import translator_losses as losses_lib
from genjax.apps.comic.translator_step_config import StepConfig
from genjax.models import vgg19

# Shallow taps keep the compiled VGG small: blocks 1-2 only.
PC = perceptual.PerceptualConfig(weights="unused.npz", content_layer="relu2_1",
                                 style_layers=("relu1_1", "relu2_1"), style_weight=1.0)
# Jitted once for the module (eager VGG ops are slower than their compilation).
losses = jax.jit(perceptual.losses, static_argnames="pc")


@pytest.fixture(scope="module")
def params():
  return vgg19.init_params(jax.random.key(0), taps=PC.taps)


def _images(seed, n=2, size=16):
  return jnp.asarray(np.random.default_rng(seed).uniform(0, 1, (n, size, size, 3)), jnp.float32)


def test_gram_closed_form():
  f = np.random.default_rng(0).normal(size=(2, 3, 4, 5))
  expected = np.einsum("bhwc,bhwd->bcd", f, f) / 12.0
  np.testing.assert_allclose(perceptual.gram(jnp.asarray(f, jnp.float32)), expected, rtol=1e-5)


def test_terms_vanish_at_the_target_and_are_scale_free(params):
  photo, comics = _images(1), _images(2)
  same = losses(params, photo, photo, photo[:1], pc=PC)
  assert float(same["content"]) == 0.0
  # One comic image as the style set: its own Gram matrices are the target.
  assert float(losses(params, comics[:1], photo[:1], comics[:1], pc=PC)["style"]) == 0.0
  terms = losses(params, comics, photo, comics[::-1], pc=PC)
  assert float(terms["content"]) > 0.05 and float(terms["style"]) > 0.0
  # Relative terms: scaling the last conv (features x 3 after the ReLU) changes nothing.
  scaled = dict(params, conv2_1=jax.tree.map(lambda v: 3.0 * v, params["conv2_1"]))
  again = losses(scaled, comics, photo, comics[::-1], pc=PC)
  np.testing.assert_allclose(float(again["content"]), float(terms["content"]), rtol=1e-5)


def test_content_gradient_moves_the_output_toward_the_photo(params):
  photo, pred = _images(3), _images(4)
  loss = lambda x: losses(params, x, photo, None, pc=PC)["content"]
  value, grad = jax.value_and_grad(loss)(pred)
  assert "style" not in losses(params, pred, photo, None, pc=PC)
  assert float(loss(pred - 0.05 * grad / jnp.linalg.norm(grad) * jnp.sqrt(grad.size))) < float(
      value)


def _config(overrides=()):
  return configs.load("genjax/configs/comic_tiny.py", ["train.mode=unpaired", *overrides])


def test_filtered_l1_without_weights_and_one_log_line(caplog):
  settings = StepConfig.from_config(_config())
  assert settings.perceptual == perceptual.PerceptualConfig()
  with caplog.at_level(logging.INFO, logger="genjax.comic"):
    assert perceptual.load_vgg(settings.perceptual, content_weight=2.0, radius=2) is None
  assert len(caplog.records) == 1
  assert "box-filtered lightness (radius 2 px, weight 2)" in caplog.records[0].getMessage()
  pred, photo = _images(5, size=12), _images(6, size=12)
  # Reference: NumPy box filter (edge-clamped mean over (2r+1)^2) of the lightness.
  from genjax.image import color
  from genjax.image.box_filter import box_filter
  term = losses_lib.content_loss(pred, photo, settings)
  ref = np.mean(np.abs(box_filter(color.lightness(pred), 2) - box_filter(color.lightness(photo), 2)))
  np.testing.assert_allclose(float(term["content"]), float(ref), rtol=1e-6)
  assert set(term) == {"content"}


def test_vgg_terms_through_the_translator_losses(params, tmp_path, caplog):
  path = tmp_path / "vgg19.npz"
  vgg19.save_npz(path, vgg19.init_params(jax.random.key(0)))
  settings = StepConfig.from_config(_config([
      f"unpaired.vgg_weights={path}", "unpaired.content_layer=relu2_1",
      "unpaired.style_layers=('relu1_1', 'relu2_1')", "unpaired.style_weight=0.5"]))
  with caplog.at_level(logging.INFO, logger="genjax.comic"):
    loaded = perceptual.load_vgg(settings.perceptual, content_weight=2.0, radius=2)
  assert sorted(loaded) == ["conv1_1", "conv1_2", "conv2_1"]   # only what the taps need
  assert "VGG19 relu2_1 feature L1" in caplog.records[0].getMessage()
  pred, photo, comics = _images(7), _images(8), _images(9)
  terms = losses_lib.content_loss(pred, photo, settings, comics=comics, vgg=loaded)
  ref = losses(params, pred, photo, comics, pc=PC)
  np.testing.assert_allclose([terms["content"], terms["style"]], [ref["content"], ref["style"]],
                             rtol=1e-5)


def test_config_errors(tmp_path):
  with pytest.raises(ValueError, match="unpaired.style_weight > 0 needs unpaired.vgg_weights"):
    StepConfig.from_config(_config(["unpaired.style_weight=1.0"]))
  with pytest.raises(ValueError, match="'relu9_9'.*valid: conv1_1"):
    StepConfig.from_config(_config(["unpaired.content_layer=relu9_9"]))
  pc = perceptual.PerceptualConfig(weights=str(tmp_path / "missing.npz"))
  with pytest.raises(FileNotFoundError, match="missing.npz.*convert_vgg19"):
    perceptual.load_vgg(pc, content_weight=1.0, radius=2)


def test_trainer_hands_vgg_to_the_step_as_an_argument(tmp_path):
  """The loop's trainer: a missing weights file fails in check (before any run folder); with
  weights, the jitted step takes the VGG params as a non-donated argument (not constants in
  the program) and its loss has the content and style terms."""
  from PIL import Image

  from genjax.apps.comic.train_translator import TranslatorTrainer
  from genjax.train import sharding
  for i in range(2):
    Image.fromarray(np.asarray(_images(10 + i, n=1, size=48)[0] * 255, np.uint8)).save(
        tmp_path / f"page{i}.png")
  path = tmp_path / "vgg19.npz"
  tiny = ["model.channels=(8, 16)", "model.num_res_blocks=1", "data.num_photos=4",
          "data.photo_size=(48, 48)", "data.crop_size=32", "data.heldout=0",
          "train.batch_size=2", "model.disc_features=(8, 16)", "data.source=procedural",
          "data.heldout_skimage=()", f"data.comics={tmp_path}", f"unpaired.vgg_weights={path}",
          "unpaired.content_layer=relu2_1", "unpaired.style_layers=('relu1_1', 'relu2_1')",
          "unpaired.style_weight=0.5"]
  trainer = TranslatorTrainer(_config(tiny))
  mesh = sharding.make_mesh(trainer.config.mesh, devices=jax.devices()[:1])
  with pytest.raises(FileNotFoundError, match="unpaired.vgg_weights: .*vgg19.npz' not found"):
    trainer.check(mesh)
  vgg19.save_npz(path, vgg19.init_params(jax.random.key(0)))
  trainer.check(mesh)
  trainer.build()
  abstract = jax.eval_shape(trainer.create_state, jax.random.PRNGKey(0))
  shardings = sharding.state_shardings(abstract, mesh)
  state = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                       abstract, shardings)
  lowered = trainer.make_step_fn(mesh, shardings).lower(state, trainer.next_batch(mesh))
  state_info, batch_info = lowered.args_info[0]
  assert sorted(batch_info["vgg"]) == ["conv1_1", "conv1_2", "conv2_1"]
  assert not any(a.donated for a in jax.tree.leaves(batch_info["vgg"]))
  assert all(a.donated for a in jax.tree.leaves(state_info.params))
  main = next(line for line in lowered.as_text().splitlines() if "@main(" in line)
  assert "tensor<3x3x64x128xf32>" in main   # conv2_1's kernel is a parameter of the program
  assert {"content", "style", "structure", "loss"} <= set(lowered.out_info[1])
