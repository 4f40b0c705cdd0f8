"""Training the neural comic translator through genjax.train's one training loop.

  from genjax import configs
  train_translator(configs.load("genjax/configs/comic_tiny.py"), "runs/comic")

TranslatorTrainer is the loop's trainer (genjax.train.trainers) for translator configs
(train.trainer = "comic_translator"): the loop gives the mesh and shardings, checkpoints
and exact resume, the refusal of a changed config on resume, metrics / TensorBoard / loss
curve, sample grids and multi-process runs; this module gives the photo and comic pools,
the two-player step (translator_step), the preview (photo | translation), the held-out
PSNR evaluation and the export.

Unpaired training's content term uses VGG19 features with unpaired.vgg_weights (a .npz from
python -m genjax.models.convert_vgg19; perceptual.py), and an optional Gram style term
against the comic crops; without weights the L1 of box-filtered lightness, and the trainer
says so in one log line. The weights file is checked (check) before anything is written,
loaded once (build), and handed to the jitted step with the pools as a non-donated argument.

workdir/: config.json, runtime.json, checkpoints/ (Orbax, the whole state), metrics.jsonl,
tensorboard/, loss.png, samples/ and samples.png, translator/ (the EMA generator, for
genjax comic --translator; translator.load_translator), eval.json.
"""

import functools
import json
import logging
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from genjax import configs, files
from genjax.apps.comic import perceptual
from genjax.apps.comic import render as render_lib
from genjax.apps.comic import translator as tr
from genjax.apps.comic.translator_data import (folder_pool, heldout_photos, make_key,
                                               photo_pool)
from genjax.apps.comic.translator_eval import evaluate, save_samples
from genjax.apps.comic.translator_net import Generator
from genjax.apps.comic.translator_step import create_state, make_optimizers, train_step
from genjax.apps.comic.translator_step_config import StepConfig
from genjax.configs import comic as comic_config
from genjax.image.box_filter import per_image
from genjax.train import logbook, loop, sharding, trainers

log = logging.getLogger("genjax.comic")

TRAINER = "comic_translator"
EVAL_FILE = "eval.json"


def _replicated(pool: np.ndarray, mesh) -> jax.Array:
  """A host array (the same on every process) as one jax.Array replicated over the mesh."""
  return jax.make_array_from_callback(pool.shape, sharding.replicated(mesh), lambda i: pool[i])


def _gather(tree, mesh):
  """Host NumPy copies of a (small) tree of global arrays, on every process."""
  tree = jax.jit(lambda t: t, out_shardings=sharding.replicated(mesh))(tree)
  return jax.tree.map(lambda a: np.asarray(a.addressable_data(0)), tree)


class TranslatorTrainer:
  """The comic translator as a genjax.train trainer (see the module docstring)."""

  def __init__(self, config):
    self.config = config
    self.settings = StepConfig.from_config(config)
    self.skipped_files = []

  def base_config(self):
    return comic_config.get_config()

  def check(self, mesh) -> None:
    b = self.config.train.batch_size
    if b % mesh.size:
      raise ValueError(f"train.batch_size={b} is not divisible by the {mesh.size} devices of "
                       "the mesh")
    if self.settings.mode == "unpaired":
      if not self.config.data.comics:
        raise ValueError("train.mode='unpaired' needs data.comics (a folder of comic images)")
      perceptual.check_weights(self.settings.perceptual)

  def build(self) -> None:
    config, settings = self.config, self.settings
    self.g_tx, self.d_tx = make_optimizers(config)
    self.pools = {"photos": photo_pool(config)}
    if settings.mode == "unpaired":
      self.pools["comics"] = folder_pool(config.data.comics, tuple(config.data.photo_size),
                                         max_images=config.data.max_images,
                                         max_pixels=config.data.max_image_pixels)
    self.heldout = heldout_photos(config)
    self.vgg = None
    if settings.mode == "unpaired":
      self.vgg = perceptual.load_vgg(settings.perceptual, content_weight=settings.content,
                                     radius=settings.content_radius)
    log.info("%s; %d photos%s", tr.describe(settings.model), len(self.pools["photos"]),
             f", {len(self.pools['comics'])} comic images" if "comics" in self.pools else "")
    self._batches = {}

  def create_state(self, key):
    """The loop's key is not used: the translator's keys are RNG_IMPL keys of config.seed."""
    del key
    return create_state(make_key(self.config.seed), self.settings, self.g_tx, self.d_tx)

  def data_iterator(self):
    return None   # batches are drawn inside the step from fold_in(rng, step)

  def next_batch(self, mesh):
    """The pools and the VGG19 params (if any), replicated over the mesh (the same arrays at
    every step)."""
    if mesh not in self._batches:
      batch = {k: _replicated(v, mesh) for k, v in self.pools.items()}
      if self.vgg is not None:
        batch["vgg"] = jax.tree.map(lambda a: _replicated(np.asarray(a), mesh), self.vgg)
      self._batches[mesh] = batch
    return self._batches[mesh]

  def make_step_fn(self, mesh, state_shardings):
    step = functools.partial(train_step, settings=self.settings, g_tx=self.g_tx, d_tx=self.d_tx,
                             batch_sharding=sharding.batch_sharding(mesh))
    return jax.jit(step, in_shardings=(state_shardings, sharding.replicated(mesh)),
                   out_shardings=(state_shardings, sharding.replicated(mesh)), donate_argnums=0)

  def make_preview_fn(self, mesh):
    """fn(params, key) -> [2n, c, c, 3] in [-1, 1]: n pool photos (centre crops), each
    followed by its translation with the default knobs."""
    cfg, n = self.settings.model, self.config.train.num_sample_images
    pool = self.pools["photos"][:n]
    c = self.settings.crop - self.settings.crop % cfg.align()
    top, left = (pool.shape[1] - c) // 2, (pool.shape[2] - c) // 2
    photos = pool[:, top:top + c, left:left + c].astype(np.float32) / 255.0
    n = len(photos)
    knobs = jax.tree.map(lambda v: per_image(v, n), cfg.default_knobs())

    def fn(params, key):
      del key   # deterministic
      x = jnp.asarray(photos)
      logits = Generator(cfg).apply({"params": params}, x, tr.knob_vector(cfg, knobs, n))
      origin = jnp.zeros((n, 2), jnp.float32)
      pred = render_lib.compose(tr.layers_from_logits(logits, cfg.style, knobs, origin))
      return jnp.stack([x, pred], axis=1).reshape(2 * n, c, c, 3) * 2.0 - 1.0

    return jax.jit(fn, out_shardings=sharding.replicated(mesh))

  def _paired_eval(self) -> bool:
    return bool(self.heldout) and self.settings.needs_targets

  def make_evaluator(self, mesh, workdir):
    if self.config.train.eval_every <= 0 or not self._paired_eval():
      return None
    return _HeldoutPsnr(self, mesh)

  def translator(self, state, mesh) -> tr.Translator:
    return tr.Translator(self.settings.model, _gather(state.ema_params, mesh))

  def finish(self, state, workdir) -> None:
    """Exports the EMA generator to workdir/translator and writes eval.json (and, with
    paired targets, the held-out photo | renderer | translator sheet as samples.png)."""
    mesh = jax.tree.leaves(state.params)[0].sharding.mesh
    translator = self.translator(state, mesh)
    if jax.process_index() != 0:
      return
    workdir = pathlib.Path(workdir)
    tr.save_translator(workdir / "translator", translator)
    result = {"step": int(state.step),
              "params": tr.count_params(translator.params)}
    if self._paired_eval():
      result["heldout"] = {group: evaluate(translator, photos)
                           for group, photos in self.heldout.items()}
      save_samples(workdir / "samples.png", translator,
                   [p for photos in self.heldout.values() for p in photos[:3]])
    files.write_json(workdir / EVAL_FILE, result, indent=1)


class _HeldoutPsnr:
  """evaluate(state, key) -> {"eval/<group>_psnr_default": dB, ...} of the EMA generator."""

  def __init__(self, trainer: TranslatorTrainer, mesh):
    self.trainer, self.mesh = trainer, mesh

  def __call__(self, state, key) -> dict[str, float]:
    translator = self.trainer.translator(state, self.mesh)
    return {f"eval/{group}_{k}": v for group, photos in self.trainer.heldout.items()
            for k, v in evaluate(translator, photos).items()}

  def close(self) -> None:
    pass


trainers.register(TRAINER, TranslatorTrainer)


def initial_translator(config) -> tr.Translator:
  """The translator a run of config starts from (the EMA generator at step 0), on the host."""
  settings = StepConfig.from_config(config)
  state = create_state(make_key(config.seed), settings, *make_optimizers(config))
  return tr.Translator(settings.model, jax.device_get(state.ema_params))


def train_translator(config, workdir, *, progress: bool = True,
                     accept_config_change: bool = False) -> dict[str, Any]:
  """Trains (or resumes) a translator in workdir; returns eval.json's record with the
  training time, whether it stopped early and what stopped it (interrupted_by: "time_limit",
  a signal's name, or None), and the last metrics record.

  Resuming with a changed config is refused as `genjax train` refuses it (ConfigError)
  unless accept_config_change.
  """
  configs.require_kind(config, "translator", "the config")
  workdir = pathlib.Path(workdir)
  summary = loop.train(config, workdir, progress=progress,
                       accept_config_change=accept_config_change, trainer=TranslatorTrainer)
  path = workdir / EVAL_FILE
  result = json.loads(path.read_text()) if path.is_file() else {}
  records = [r for r in logbook.read_records(workdir / "metrics.jsonl") if "loss" in r]
  return {**result, "step": summary.final_step, "train_seconds": round(summary.seconds, 1),
          "stopped_early": summary.interrupted_by is not None,
          "interrupted_by": summary.interrupted_by,
          "last": records[-1] if records else {}}
