"""The neural translator: tiles equal crops, receptive field, knobs, discriminator, training."""

import dataclasses
import functools
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import configs
from genjax.train import logbook, run_config
from genjax.apps.comic import discriminator as disc_lib
from genjax.apps.comic import render
from genjax.apps.comic import train_translator as train_lib
from genjax.apps.comic import translator as tr
from genjax.apps.comic import translator_data as data_lib
from genjax.apps.comic import translator_losses as losses_lib
from genjax.apps.comic import translator_net as net_lib
from genjax.apps.comic import translator_step as step_lib
from genjax.apps.comic.translator_step_config import StepConfig
from genjax.apps.comic import translator_tiles as tiles_lib
from genjax.apps.comic.examples import procedural_photo
from genjax.apps.comic.styles import TONE_PATTERNS

# Tiny generator: receptive radius 21 px, grid 4 px.
CFG = tr.TranslatorConfig(style="manga", channels=(8, 16), num_res_blocks=1, patch=2)
TINY = ("model.channels=(8, 16)", "model.num_res_blocks=1", "data.num_photos=8",
        "data.photo_size=(48, 48)", "data.crop_size=32", "data.heldout=0", "train.batch_size=4",
        "train.warmup_steps=1", "train.log_every=1", "train.checkpoint_every=1000",
        "model.disc_features=(8, 16)", "data.source=procedural", "data.heldout_skimage=()")


def random_params(config=CFG, seed=0):
  """Initial parameters plus noise: zero-initialized FiLM and residual branches join in."""
  params = tr.init_params(config, data_lib.make_key(seed))
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(data_lib.make_key(seed + 1), len(leaves))
  return jax.tree.unflatten(tree, [p + 0.1 * jax.random.normal(k, p.shape)
                                   for p, k in zip(leaves, keys)])


@pytest.fixture(scope="module")
def translator():
  return tr.Translator(CFG, random_params())


def photo(h, w, index=0):
  return procedural_photo(index, height=h, width=w)


def test_space_to_depth_reference():
  x = np.arange(2 * 4 * 6 * 3, dtype=np.float32).reshape(2, 4, 6, 3)
  y = np.asarray(net_lib.space_to_depth(jnp.asarray(x), 2))
  assert y.shape == (2, 2, 3, 12)
  # Cell (i, j) holds pixels (2i + a, 2j + b) in order a, b, channel.
  np.testing.assert_array_equal(y[1, 1, 2], x[1, 2:4, 4:6].reshape(-1))
  np.testing.assert_array_equal(net_lib.depth_to_space(jnp.asarray(y), 2), x)


def test_tile_equals_crop_of_whole_frame(translator):
  """No per-image statistics: a tile on the 4-px grid gives the crop, away from its border."""
  apply = jax.jit(lambda x: net_lib.Generator(CFG).apply({"params": translator.params}, x,
                                                    jnp.zeros((1, 3))))
  x = jnp.asarray(photo(96, 96)[None] / 255.0, jnp.float32)
  whole = np.asarray(apply(x))
  r, (oy, ox) = CFG.receptive_radius(), (20, 24)
  assert oy % CFG.align() == 0 and ox % CFG.align() == 0
  tile = np.asarray(apply(x[:, oy:oy + 64, ox:ox + 64]))
  crop = whole[:, oy:oy + 64, ox:ox + 64]
  np.testing.assert_allclose(tile[:, r:-r, r:-r], crop[:, r:-r, r:-r], atol=1e-5, rtol=0)
  # The tile's own border does differ (zero padding): the comparison above is not vacuous.
  assert np.abs(tile - crop).max() > 1e-3


def test_receptive_radius_bounds_the_gradient(translator):
  x = jnp.asarray(photo(96, 96)[None] / 255.0, jnp.float32)
  c = 48
  g = jax.jit(jax.grad(lambda x: net_lib.Generator(CFG).apply({"params": translator.params}, x,
                                                         jnp.zeros((1, 3)))[0, c, c].sum()))(x)
  rows, cols = np.nonzero(np.abs(np.asarray(g[0])).sum(-1))
  r = CFG.receptive_radius()
  reach = max(np.abs(rows - c).max(), np.abs(cols - c).max())
  assert reach <= r
  assert reach >= r - 2 * CFG.align()  # the bound is not loose either


def test_batch_independence_and_determinism(translator):
  x = jnp.asarray(np.stack([photo(32, 48, 0), photo(32, 48, 1)]) / 255.0, jnp.float32)
  both = translator_image(translator, x, {"line_weight": jnp.array([1.0, 2.0])})
  one = translator_image(translator, x[:1], {"line_weight": 1.0})
  np.testing.assert_allclose(both[:1], one, atol=1e-6)
  np.testing.assert_array_equal(both, translator_image(
      translator, x, {"line_weight": jnp.array([1.0, 2.0])}))


def translator_image(translator, x, knobs):
  return np.asarray(tr.translate(translator, x, knobs).image)


def test_translate_contract_knobs_and_no_recompile(translator):
  x = jnp.asarray(photo(30, 45)[None] / 255.0, jnp.float32)  # not on the 4-px grid
  rendering = tr.translate(translator, x, {"smoothing": 0.5, "tone_levels": 3})
  assert rendering.image.shape == (1, 30, 45, 3)
  assert rendering.layers["ink"].shape == rendering.layers["tone"].shape == (1, 30, 45, 1)
  for v in (rendering.image, *rendering.layers.values()):
    assert 0.0 <= float(v.min()) and float(v.max()) <= 1.0
  np.testing.assert_array_equal(rendering.image, render.compose(rendering.layers))
  img = np.asarray(rendering.image[0])
  np.testing.assert_array_equal(img[..., 0], img[..., 2])  # manga is grey
  before = tr._translate._cache_size()
  other = tr.translate(translator, x, {"smoothing": 0.9, "tone_levels": 5, "tone_period": 7.0})
  assert tr._translate._cache_size() == before
  # Conditioned knobs reach the network; procedural ones change only the screen.
  assert np.abs(np.asarray(other.layers["ink"] - rendering.layers["ink"])).max() > 1e-4
  a = tr.translate(translator, x, {"tone_period": 7.0})
  b = tr.translate(translator, x, {"tone_period": 4.0})
  np.testing.assert_array_equal(a.layers["ink"], b.layers["ink"])
  np.testing.assert_array_equal(tr.translate(translator, x[0]).image,
                                tr.translate(translator, x).image[0])


def test_knob_errors(translator):
  x = jnp.zeros((1, 8, 8, 3))
  with pytest.raises(tr.TranslatorError, match=r"line_weight=.* outside the range \[0.6, 2.5\]"):
    tr.translate(translator, x, {"line_weight": 3.5})
  with pytest.raises(tr.TranslatorError, match=r"knob 'exposure' is fixed at 0.0"):
    tr.translate(translator, x, {"exposure": 0.3})
  with pytest.raises(ValueError, match=r"unknown MangaKnobs knob\(s\) \['colour'\]"):
    tr.translate(translator, x, {"colour": 1})
  with pytest.raises(tr.TranslatorError, match="'n_colors' is not a knob of style 'manga'"):
    dataclasses.replace(CFG, cond_knobs=("n_colors",), knob_ranges=((2, 8),))
  with pytest.raises(ValueError, match="unknown comic style 'noir'"):
    dataclasses.replace(CFG, style="noir")


def test_translate_photo_tiled_equals_whole(translator):
  image = photo(100, 77, 2)
  whole = tiles_lib.translate_photo(translator, image, {"tone_levels": 4})
  tiled = tiles_lib.translate_photo(translator, image, {"tone_levels": 4}, tile=16)
  assert tiled.image.shape == (100, 77, 3)
  for name in ("ink", "flat", "tone"):
    np.testing.assert_allclose(tiled.layers[name], whole.layers[name], atol=2e-5)


def test_manga_coverage_reproduces_the_renderers_tone():
  x = jnp.asarray(np.stack([photo(48, 64, 0), photo(48, 64, 3)]) / 255.0, jnp.float32)
  knobs = data_lib.sample_knobs(data_lib.make_key(0), CFG, 2)
  layers, heads = jax.jit(functools.partial(losses_lib.render_targets, config=CFG))(x, knobs=knobs)
  expected = render.render_layers(x, "manga", jax.tree.map(np.asarray, knobs))
  for name in ("ink", "flat", "tone"):
    np.testing.assert_allclose(layers[name], expected[name], atol=1e-5)
  density = np.asarray(knobs.tone_density)[:, None, None, None]
  screen = TONE_PATTERNS["dots"](1.0 - jnp.clip(heads["tone"] * density, 0.0, 1.0), knobs,
                                 jnp.zeros((2, 2)))
  np.testing.assert_allclose(screen * heads["paper"], expected["tone"], atol=1e-5)
  assert 0.05 < float(jnp.mean(expected["tone"])) < 0.95  # screentone is present


def test_discriminator_shape_and_spectral_norm():
  d = disc_lib.PatchDiscriminator((8, 16, 16))
  x = jax.random.uniform(data_lib.make_key(0), (2, 32, 48, 1))
  variables = d.init(data_lib.make_key(1), x, update_stats=False)
  assert d.apply(variables, x, update_stats=False).shape == (2, 4, 6, 1)
  stats = variables["batch_stats"]
  step = jax.jit(lambda s: d.apply({"params": variables["params"], "batch_stats": s}, x,
                                   update_stats=True, mutable=["batch_stats"])[1]["batch_stats"])
  for _ in range(100):  # power iteration converges to the top singular value from below
    stats = step(stats)
  sigmas = {name.split("/")[0]: float(v) for layer in stats.values()
            for name, v in layer.items() if name.endswith("/kernel/sigma")}
  assert sorted(sigmas) == [f"Conv_{i}" for i in range(5)]
  for conv, sigma in sigmas.items():
    kernel = np.asarray(variables["params"][conv]["kernel"], np.float64)
    top = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
    assert top * (1 - 1e-3) <= sigma <= top * (1 + 1e-6), conv


def test_gan_losses_closed_forms():
  ones, zeros = jnp.ones((2, 3)), jnp.zeros((2, 3))
  d, g = disc_lib.get_gan_loss("lsgan")
  assert float(d(ones, zeros)) == 0.0 and float(d(zeros, ones)) == 2.0
  assert float(g(ones)) == 0.0 and float(g(zeros)) == 1.0
  d, g = disc_lib.get_gan_loss("hinge")
  assert float(d(ones, -ones)) == 0.0 and float(d(zeros, zeros)) == 2.0
  assert float(g(2 * ones)) == -2.0
  with pytest.raises(ValueError, match=r"unknown adversarial loss 'wgan'; valid: \['hinge'"):
    disc_lib.get_gan_loss("wgan")


def _setup(overrides=()):
  config = configs.load("genjax/configs/comic_tiny.py", list(TINY) + list(overrides))
  settings = StepConfig.from_config(config)
  g_tx, d_tx = step_lib.make_optimizers(config)
  state = jax.jit(functools.partial(step_lib.create_state, settings=settings, g_tx=g_tx,
                                    d_tx=d_tx))(data_lib.make_key(0))
  train_step = jax.jit(functools.partial(step_lib.train_step, settings=settings, g_tx=g_tx,
                                         d_tx=d_tx))
  step = lambda state, photos, comics: train_step(  # noqa: E731
      state, {"photos": photos, "comics": comics})
  return config, state, step


@pytest.mark.slow  # compiles SLIC, guided filters and two discriminators: ~15 s cold
def test_unpaired_step_updates_both_players():
  config, state, step = _setup(["train.mode=unpaired"])
  photos = jnp.asarray(data_lib.procedural_pool(range(4), (48, 48)))
  comics = jnp.asarray(np.random.default_rng(0).integers(0, 256, (3, 48, 48, 3), np.uint8))
  new, metrics = step(state, photos, comics)
  for name in ("g_surface", "g_texture", "d_surface", "d_texture", "structure", "content"):
    assert np.isfinite(float(metrics[name])), name
  assert "layers" not in metrics  # no renderer targets in pure unpaired mode
  changed = lambda a, b: any(not np.array_equal(x, y) for x, y in zip(
      jax.tree.leaves(a), jax.tree.leaves(b)))
  assert changed(new.disc["batch_stats"], state.disc["batch_stats"])
  # Each player's update lowers its own loss on the same batch against the other's old
  # parameters: the step is replayed (same step, so the same crops, knobs and keys) with only
  # that player's parameters replaced by the updated ones. An update of the wrong sign, or
  # none, does not.
  _, g_after = step(state.replace(params=new.params), photos, comics)
  _, d_after = step(state.replace(disc={"params": new.disc["params"],
                                        "batch_stats": state.disc["batch_stats"]}),
                    photos, comics)
  d_loss = lambda m: float(m["d_surface"]) + float(m["d_texture"])  # noqa: E731
  print(f"\ngenerator loss {float(metrics['loss']):.6f} -> {float(g_after['loss']):.6f}, "
        f"discriminator loss {d_loss(metrics):.6f} -> {d_loss(d_after):.6f}")
  assert float(g_after["loss"]) < float(metrics["loss"])
  assert d_loss(d_after) < d_loss(metrics)


def test_train_translator_learns_resumes_exactly_and_loads(tmp_path):
  """Paired training with the PatchGAN through genjax.train's loop: the loss falls; a run
  resumed from its step-16 checkpoint ends exactly where the uninterrupted run ended, with
  the same logged losses; a changed config is refused on resume; the export loads."""
  config = configs.load("genjax/configs/comic_tiny.py", list(TINY) + [
      "loss.adversarial=0.1", "train.learning_rate=0.005", "train.num_steps=32",
      "train.checkpoint_every=16", "train.keep_checkpoints=3"])
  result = train_lib.train_translator(config, tmp_path, progress=False)
  assert result["step"] == 32
  rows = logbook.read_records(tmp_path / "metrics.jsonl")
  losses = [r["loss"] for r in rows]
  assert set(rows[-1]) >= {"layers", "image_l1", "edge", "psnr", "g_image", "d_image"}
  assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), losses
  whole = tr.load_translator(tmp_path)
  assert whole.config == StepConfig.from_config(config).model
  # As if the run had been killed after step 16: resume from that checkpoint.
  shutil.rmtree(tmp_path / "checkpoints" / "32")
  shutil.rmtree(tmp_path / "translator")
  changed = configs.load("genjax/configs/comic_tiny.py", list(TINY) + [
      "loss.adversarial=0.2", "train.learning_rate=0.005", "train.num_steps=32",
      "train.checkpoint_every=16", "train.keep_checkpoints=3"])
  with pytest.raises(run_config.ConfigChangedError, match=r"loss.adversarial 0.1 -> 0.2"):
    train_lib.train_translator(changed, tmp_path, progress=False)
  assert train_lib.train_translator(config, tmp_path, progress=False)["step"] == 32
  resumed_rows = logbook.read_records(tmp_path / "metrics.jsonl")
  assert [r["step"] for r in resumed_rows] == list(range(1, 33))
  timeless = lambda rs: [{k: v for k, v in r.items() if k != "images_per_second"}  # noqa: E731
                         for r in rs]
  assert timeless(resumed_rows) == timeless(rows)   # steps 17..32 logged the same losses
  resumed = tr.load_translator(tmp_path / "translator")
  jax.tree.map(np.testing.assert_array_equal, resumed.params, whole.params)
  x = jnp.asarray(photo(32, 32)[None] / 255.0, jnp.float32)
  assert tr.translate(resumed, x).image.shape == (1, 32, 32, 3)
  with pytest.raises(tr.TranslatorError, match="no translator found"):
    tr.load_translator(tmp_path / "nothing")


def test_photo_pool_sources_and_errors():
  pytest.importorskip("skimage")
  config = configs.load("genjax/configs/comic_tiny.py", list(TINY) + [
      "data.source=procedural, skimage", "data.skimage_photos=('text',)"])
  pool = data_lib.photo_pool(config)
  # 8 procedural photos + the 3 x 9 whole 48 x 48 tiles of the 172 x 448 "text" photo.
  assert pool.shape == (8 + 27, 48, 48, 3) and pool.dtype == np.uint8
  import skimage.data
  np.testing.assert_array_equal(pool[8, ..., 0], skimage.data.text()[:48, :48])
  with pytest.raises(ValueError, match="share \\['astronaut'\\]"):
    data_lib.photo_pool(configs.load("genjax/configs/comic_tiny.py", list(TINY) + [
        "data.source=skimage", "data.skimage_photos=('astronaut',)",
        "data.heldout_skimage=('astronaut',)"]))
  with pytest.raises(ValueError, match="entries must be .* got 'photos'"):
    data_lib.photo_pool(configs.load("genjax/configs/comic_tiny.py",
                                      list(TINY) + ["data.source=photos"]))


def test_config_errors():
  with pytest.raises(ValueError, match="train.mode must be 'paired' or 'unpaired'"):
    StepConfig.from_config(configs.load("genjax/configs/comic_tiny.py",
                                                    ["train.mode=cyclegan"]))
  with pytest.raises(tr.TranslatorError, match="fixed_knobs entry 'exposure' must look like"):
    StepConfig.from_config(configs.load("genjax/configs/comic_tiny.py",
                                                    ["model.fixed_knobs=('exposure',)"]))


def test_non_finite_step_leaves_both_players_as_they_were():
  """The non-finite guard under lax.cond: one NaN generator weight makes the loss NaN, and
  the step then changes neither player, their optimizer states, the EMA nor the
  discriminator's batch statistics, and counts the skip; without the NaN both update."""
  _, state, step = _setup(["loss.adversarial=0.1"])  # paired, with the grayscale PatchGAN
  photos = jnp.asarray(data_lib.procedural_pool(range(4), (48, 48)))
  comics = jnp.zeros((1, 48, 48, 3), jnp.uint8)
  leaves, tree = jax.tree.flatten(state.params)
  poisoned = state.replace(params=jax.tree.unflatten(
      tree, [leaves[0].at[(0,) * leaves[0].ndim].set(jnp.nan), *leaves[1:]]))
  players = lambda s: (s.params, s.ema_params, s.opt_state, s.disc, s.disc_opt_state)  # noqa: E731

  new, metrics = step(poisoned, photos, comics)
  assert int(metrics["finite"]) == 0 and not np.isfinite(float(metrics["loss"]))
  assert int(new.skipped) == int(state.skipped) + 1 and int(new.step) == int(state.step) + 1
  for a, b in zip(jax.tree.leaves(players(new)), jax.tree.leaves(players(poisoned))):
    np.testing.assert_array_equal(a, b)  # NaN where the NaN was, every other bit the same

  new, metrics = step(state, photos, comics)
  assert int(metrics["finite"]) == 1 and int(new.skipped) == int(state.skipped)
  for name in ("params", "disc_opt_state"):
    assert any(not np.array_equal(a, b) for a, b in zip(
        jax.tree.leaves(getattr(new, name)), jax.tree.leaves(getattr(state, name)))), name
  assert any(not np.array_equal(a, b) for a, b in zip(
      jax.tree.leaves(new.disc["params"]), jax.tree.leaves(state.disc["params"])))
