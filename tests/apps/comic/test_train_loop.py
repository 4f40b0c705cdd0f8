"""The comic translator trains through genjax.train's loop: exact resume of unpaired (GAN)
training after SIGKILL, and a 2-device mesh that matches 1 device."""

import pathlib
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from genjax import configs
from genjax.apps.comic import translator as tr
from genjax.apps.comic.train_translator import TranslatorTrainer
from genjax.apps.comic.translator_data import procedural_pool
from genjax.train import sharding

CONFIG = str(pathlib.Path(configs.__file__).parent / "comic_tiny.py")
# Tiny unpaired runs: both discriminators (surface, texture), every unpaired loss term.
TINY = ("model.channels=(8, 16)", "model.num_res_blocks=1", "data.num_photos=8",
        "data.photo_size=(48, 48)", "data.crop_size=32", "data.heldout=0", "train.batch_size=4",
        "train.warmup_steps=1", "train.log_every=1", "model.disc_features=(8, 16)",
        "data.source=procedural", "data.heldout_skimage=()", "train.mode=unpaired",
        "train.num_sample_images=2", "data.max_images=6")
STEPS, EVERY = 12, 4
STATE_FIELDS = ("params", "ema_params", "opt_state", "disc", "disc_opt_state", "rng", "step",
                "skipped")


@pytest.fixture(scope="module")
def comics(tmp_path_factory) -> pathlib.Path:
  """A folder of 'comic pages': flat posterized procedural photos with black outlines."""
  folder = tmp_path_factory.mktemp("comics")
  for i, page in enumerate(procedural_pool(range(500, 506), (48, 48))):
    flat = (page // 64) * 64 + 32
    edges = np.abs(np.diff(flat.astype(int).sum(-1), axis=0, prepend=0)) > 0
    flat[edges] = 0
    Image.fromarray(flat.astype(np.uint8)).save(folder / f"page_{i}.png")
  return folder


def _overrides(comics, *extra):
  return [*TINY, f"data.comics={comics}", *extra]


def _cmd(workdir, overrides):
  return [sys.executable, "-m", "genjax.cli", "train-comic", f"--config={CONFIG}",
          f"--workdir={workdir}", *[f"--config.{o}" for o in overrides]]


@pytest.mark.slow  # three CLI runs of the unpaired (two-discriminator) step
def test_unpaired_sigkill_then_resume_is_bitwise_exact(tmp_path, comics, sigkill_resume):
  overrides = _overrides(comics, f"train.num_steps={STEPS}", f"train.checkpoint_every={EVERY}",
                         "train.keep_checkpoints=5", f"train.sample_every={STEPS}")
  # Every field compared, the discriminators' ("disc") among them, non-empty in both runs.
  straight, killed = sigkill_resume(tmp_path, lambda workdir: _cmd(workdir, overrides),
                                    kill_after=2 * EVERY, final=STEPS, fields=STATE_FIELDS,
                                    logged=("loss", "d_texture"))
  ta, tb = tr.load_translator(straight), tr.load_translator(killed)
  jax.tree.map(np.testing.assert_array_equal, ta.params, tb.params)
  assert (straight / "samples.png").is_file() and (straight / "loss.png").is_file()


def _run_on(trainer, devices, steps: int):
  """(state on the host, metrics of each step, compiled HLO text) of `steps` steps of the
  trainer's jitted step on a mesh over `devices`."""
  mesh = sharding.make_mesh(trainer.config.mesh, devices=devices)
  key = jax.random.PRNGKey(0)
  abstract = jax.eval_shape(trainer.create_state, key)
  shardings = sharding.state_shardings(abstract, mesh)
  state = jax.jit(trainer.create_state, out_shardings=shardings)(key)
  step_fn = trainer.make_step_fn(mesh, shardings)
  batch = trainer.next_batch(mesh)
  hlo = step_fn.lower(state, batch).compile().as_text()
  metrics = []
  for _ in range(steps):
    state, m = step_fn(state, batch)
    metrics.append(jax.device_get(m))
  return jax.device_get(state), metrics, hlo


@pytest.mark.slow  # the unpaired step compiled for two meshes
def test_two_devices_match_one_device(comics):
  config = configs.load(CONFIG, _overrides(comics, "train.num_steps=3"))
  trainer = TranslatorTrainer(config)
  trainer.build()
  one, m1, _ = _run_on(trainer, jax.devices()[:1], 3)
  two, m2, hlo = _run_on(trainer, jax.devices()[:2], 3)
  assert "all-reduce" in hlo   # the batch is split: gradients are summed across devices
  assert all(int(m["finite"]) for m in m1 + m2)
  for name in ("params", "ema_params", "disc"):
    for x, y in zip(jax.tree.leaves(getattr(one, name)), jax.tree.leaves(getattr(two, name))):
      np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=1e-5, atol=1e-5,
                                 err_msg=name)
  for a, b in zip(m1, m2):
    for k in a:
      np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-5, err_msg=k)
  # The step really moved the parameters (the comparison is not of two initial states).
  init = jax.device_get(jax.jit(trainer.create_state)(jax.random.PRNGKey(0)))
  assert any(not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(init.params),
                                                      jax.tree.leaves(one.params)))
