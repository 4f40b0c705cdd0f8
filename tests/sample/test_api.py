"""The embedding API on a trained tiny model: the README example, determinism,
batch-size invariance, export, inpainting, and bad input."""

import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import genjax
from genjax import configs, data
from genjax.metrics.evaluate import swd_config_for
from genjax.metrics.swd import swd
from genjax.sample import export, per_sample_keys
from genjax.sample.load import load_run

README = pathlib.Path(__file__).parents[2] / "README.md"


def test_readme_embedding_example_runs(trained_run):
  block = re.search(r"```python\n(# embed-example.*?)```", README.read_text(), re.S)
  assert block, "README has no embed-example block"
  code = block.group(1).replace('"genjax_demo/train"', repr(str(trained_run)))
  scope = {}
  exec(compile(code, "README embed-example", "exec"), scope)
  images = np.asarray(scope["images"])
  assert images.shape == (8, 8, 16, 3) and np.isfinite(images).all()


@pytest.fixture(scope="module")
def sampler(trained_run):
  sample_fn, params = genjax.load_sampler(trained_run, sampler="ddim", steps=10, clip_x0=1.0)
  return jax.jit(sample_fn, static_argnums=2), params


def test_same_key_same_images_and_batch_size_invariance(sampler):
  fn, params = sampler
  key = jax.random.PRNGKey(7)
  a = np.asarray(fn(params, key, 6))
  b = np.asarray(fn(params, key, 6))
  np.testing.assert_array_equal(a, b)
  c = np.asarray(fn(params, key, 3))
  np.testing.assert_allclose(c, a[:3], atol=1e-5)
  # Explicit per-sample keys: samples 4, 5 alone equal samples 4, 5 of the batch of 6.
  d = np.asarray(fn(params, per_sample_keys(key, 4, 2), 2))
  np.testing.assert_allclose(d, a[4:], atol=1e-5)


def _data(config, n, seed):
  return next(iter(data.make_loader(config.data, global_batch_size=n, seed=seed, shard_index=0,
                                    shard_count=1)))["image"]


def _noised(images, std, seed=0):
  """The noised baseline of tests/metrics/test_evaluate.py: data plus N(0, std), clipped."""
  rng = np.random.default_rng(seed)
  return np.clip(images + rng.normal(0, std, images.shape), -1, 1).astype(np.float32)


def test_samples_look_like_the_data(sampler, trained_run):
  """Sky over ground as in the data, and by SWD nearer the data than other data with noise
  of std 0.3 added (test_evaluate's baseline). Measured (x 1e3, 32 images): other data
  91, samples 160, data + noise 0.2 151, + noise 0.3 208, 2x-blurred data 171, clipped
  unit noise 617."""
  fn, params = sampler
  images = np.asarray(fn(params, jax.random.PRNGKey(0), 32))
  config = configs.from_json((trained_run / "config.json").read_text())
  real, other = _data(config, 32, seed=1), _data(config, 32, seed=3)
  for name, x in (("data", real), ("samples", images)):
    top, bottom = x[:, :3].mean(axis=(0, 1, 2)), x[:, -3:].mean(axis=(0, 1, 2))
    assert top[2] > bottom[2] + 0.1, (name, top, bottom)
  key, cfg = jax.random.PRNGKey(0), swd_config_for(*images.shape[1:3])
  d_samples = swd(real, images, key, cfg).average
  d_noised = swd(real, _noised(other, 0.3), key, cfg).average
  print(f"\nSWD x 1e3 to the data: samples {d_samples:.1f}, noised data {d_noised:.1f}")
  assert d_samples < d_noised, (d_samples, d_noised)


def test_export_matches_in_process(trained_run, tmp_path):
  path = export.export_sampler(trained_run, tmp_path / "s.jaxexport", sampler="ddim", steps=6)
  config, model, spec, params = load_run(trained_run)
  fn = genjax.make_sampler(model, spec, image_shape=(8, 16), sampler="ddim", steps=6,
                           clip_x0=1.0)
  for b in (2, 3):  # one artifact, two batch sizes: the batch dimension is symbolic
    keys = per_sample_keys(jax.random.PRNGKey(3), 0, b)
    noise = np.asarray(jax.random.normal(jax.random.PRNGKey(4), (b, 8, 16, 3)))
    ours = np.asarray(jax.jit(fn)(params, keys, jnp.asarray(noise)))
    theirs = export.call_exported(path, noise, np.asarray(jax.random.key_data(keys)))
    np.testing.assert_allclose(theirs, ours, atol=1e-5)


def test_inpainting_keeps_left_half_and_fills_like_data(trained_run):
  config, model, spec, params = load_run(trained_run)
  real = next(iter(data.make_loader(config.data, global_batch_size=8, seed=2, shard_index=0,
                                    shard_count=1)))["image"]
  keep = np.zeros((8, 8, 16, 1), np.float32)
  keep[:, :, :8] = 1.0
  fn = jax.jit(genjax.make_inpainter(model, spec, steps=10, resample=2, clip_x0=1.0))
  out = np.asarray(fn(params, jax.random.PRNGKey(0), jnp.asarray(real), jnp.asarray(keep)))
  np.testing.assert_array_equal(out[:, :, :8], real[:, :, :8])
  # The fill continues each image: nearer its true right half than the right halves of the
  # other images of the batch are (data, but not this image's). Measured (mean abs error):
  # fill 0.116, other images 0.187, unconditional samples 0.191, zeros 0.41.
  truth = real[:, :, 8:]
  err_fill = float(np.abs(out[:, :, 8:] - truth).mean())
  err_other = float(np.mean([np.abs(np.roll(truth, k, axis=0) - truth).mean()
                             for k in range(1, 8)]))
  print(f"\ninpainted right halves: mean abs error {err_fill:.3f}, other images' {err_other:.3f}")
  assert err_fill < err_other, (err_fill, err_other)


@pytest.mark.parametrize("kwargs, message", [
    ({"sampler": "rk45"}, "unknown sampler"),
    ({"steps": 0}, "steps"),
])
def test_bad_sampler_arguments(trained_run, kwargs, message):
  with pytest.raises(ValueError, match=message):
    genjax.load_sampler(trained_run, **kwargs)


def test_cli_sample_writes_images_and_rejects_bad_input(trained_run, tmp_path, capsys):
  from PIL import Image
  from genjax import cli
  out = tmp_path / "out"
  assert cli.main(["sample", f"--workdir={trained_run}", "-o", str(out), "--n", "3",
                   "--batch", "2", "--sampler", "ddim", "--steps", "4"]) == 0
  assert sorted(p.name for p in out.iterdir()) == ["grid.png", "sample_00000.png",
                                                   "sample_00001.png", "sample_00002.png"]
  Image.new("RGB", (16, 8), (90, 120, 200)).save(tmp_path / "photo.png")
  Image.new("L", (16, 8), 255).convert("RGBA").save(tmp_path / "rgba.png")
  Image.new("L", (10, 8), 255).save(tmp_path / "mask.png")
  capsys.readouterr()
  cases = [(["--sampler", "rk45"], "unknown sampler"),
           (["--steps", "0"], "steps"),
           (["--init", str(tmp_path / "rgba.png")], "not RGB"),
           (["--init", str(tmp_path / "photo.png"), "--mask", str(tmp_path / "mask.png")],
            "same size")]
  for extra, message in cases:
    code = cli.main(["sample", f"--workdir={trained_run}", "-o", str(tmp_path / "bad"), *extra])
    assert code != 0 and message in capsys.readouterr().err, extra


def test_cli_img2img_strength_controls_distance_to_init(trained_run, tmp_path):
  """SDEdit: low strength keeps the photo, high strength moves towards the model's data."""
  from PIL import Image
  from genjax import cli
  rng = np.random.default_rng(0)
  photo = (rng.uniform(size=(8, 16, 3)) * 255).astype(np.uint8)  # far from the sky/ground data
  Image.fromarray(photo).save(tmp_path / "photo.png")
  errors = {}
  for strength in (0.1, 0.9):
    out = tmp_path / f"s{strength}"
    assert cli.main(["sample", f"--workdir={trained_run}", "-o", str(out), "--n", "2",
                     "--sampler", "ddim", "--steps", "10", "--init", str(tmp_path / "photo.png"),
                     "--strength", str(strength)]) == 0
    imgs = [np.asarray(Image.open(out / f"sample_{i:05d}.png"), np.float32) for i in range(2)]
    assert all(i.shape == photo.shape for i in imgs)
    errors[strength] = np.mean([np.abs(i - photo).mean() for i in imgs])
  print("img2img mean abs error to the photo (8-bit) by strength:", errors)
  assert errors[0.1] < 25 < errors[0.9], errors  # 8-bit units; noise photo vs smooth data ~ 60


def test_load_sampler_images_are_in_range_and_match_the_cli(trained_run, tmp_path):
  """Issue 15.9: load_sampler returned values outside [-1, 1] (the CLI and export clipped);
  now it draws, for the same seed, the very images `genjax sample` writes."""
  from PIL import Image
  from genjax import cli
  sample_fn, params = genjax.load_sampler(trained_run, sampler="ddim", steps=4)
  images = np.asarray(jax.jit(sample_fn, static_argnums=2)(params, jax.random.PRNGKey(5), 4))
  assert images.min() >= -1.0 and images.max() <= 1.0
  assert cli.main(["sample", f"--workdir={trained_run}", "-o", str(tmp_path), "--n", "4",
                   "--sampler", "ddim", "--steps", "4", "--seed", "5"]) == 0
  for i, img in enumerate(images):
    png = np.asarray(Image.open(tmp_path / f"sample_{i:05d}.png"), np.float32)
    np.testing.assert_allclose(png, np.round((img + 1) / 2 * 255), atol=1.0)
