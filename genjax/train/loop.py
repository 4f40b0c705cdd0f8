"""`train(config, workdir)`: the one training loop, behind `genjax train`, `genjax demo` and
`genjax train-comic`.

Builds the state from shapes (eval_shape -> shardings -> jit(create) or restore),
then runs the jitted, donated train step over the trainer's batches, saving
checkpoints, metrics, sample grids and a loss curve into `workdir`. What is trained
comes from a trainer (genjax.train.trainers): DiffusionTrainer here, the default.
"""

import dataclasses
import functools
import logging
import os
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from genjax import data, diffusion, files, models
from genjax.image import io as image_io
from genjax.train import (checkpoint, depth, distributed, evaluation, frozen, logbook, optimizer,
                          plots, preview, run_config, runtime, sharding, startup,
                          trainers)
from genjax.train.state import create_train_state, start_from
from genjax.train.step import StepConfig, train_step
from genjax.train.stop_signal import AGREE_EVERY, StopSignal, agreed_stop

log = logging.getLogger("genjax.train")


class TrainingDiverged(RuntimeError):
  """Too many non-finite steps in a row; the last good checkpoint is left as it was."""


@dataclasses.dataclass
class RunSummary:
  workdir: str
  start_step: int
  final_step: int
  final_loss: float | None
  skipped_steps: int
  skipped_files: list
  seconds: float
  images_per_second: float
  interrupted_by: str | None = None


def _compute_dtype(name: str):
  dtypes = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
  if name not in dtypes:
    raise ValueError(f"train.compute_dtype must be one of {sorted(dtypes)}, got {name!r}")
  return dtypes[name]


def build(config):
  """The static pieces of a run: model, diffusion spec, optimizer, step config, state factory."""
  model = models.build_model(config.model, dtype=_compute_dtype(config.train.compute_dtype),
                             conv_impl=os.environ.get("GENJAX_CONV_IMPL",
                                                      config.kernels.conv_impl))
  spec = diffusion.DiffusionSpec.from_config(config.diffusion)
  tx = optimizer.make_optimizer(config.train)
  create = functools.partial(
      create_train_state, model=model, tx=tx, image_shape=tuple(config.data.image_size),
      num_classes=config.model.num_classes, cond_channels=config.model.cond_channels)
  return model, spec, tx, StepConfig.from_config(config), create


def make_step_fn(config, mesh, state_shardings, frozen_params=None):
  """The train step, jitted with shardings and the state donated. frozen_params (a params
  tree, host or device; a distillation teacher): placed like the state's params and bound as
  the step's third, non-donated argument (genjax.train.frozen)."""
  model, spec, tx, step_cfg, _ = build(config)
  in_shardings = (state_shardings, sharding.batch_sharding(mesh))
  if frozen_params is not None:
    in_shardings += (state_shardings.params,)
  jitted = jax.jit(
      functools.partial(train_step, model=model, spec=spec, tx=tx, cfg=step_cfg),
      in_shardings=in_shardings, out_shardings=(state_shardings, sharding.replicated(mesh)),
      donate_argnums=0)
  if frozen_params is None:
    return jitted
  return frozen.WithFrozen(jitted, jax.device_put(frozen_params, state_shardings.params))


def global_batch(local_batch: dict, mesh) -> dict:
  """Each process's numpy batch -> one global jax.Array per key, split over all devices."""
  bs = sharding.batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(bs, np.asarray(v))
          for k, v in local_batch.items()}


def _check_batch(config, mesh):
  b, n = config.train.batch_size, config.train.grad_accum_steps
  if b % n:
    raise ValueError(f"train.batch_size={b} is not divisible by train.grad_accum_steps={n}")
  if (b // n) % mesh.size:
    raise ValueError(f"train.batch_size / grad_accum_steps = {b // n} is not divisible by the "
                     f"{mesh.size} devices of the mesh")


@jax.jit
def _tree_is_finite(tree):
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(x.dtype, jnp.floating)]
  return jnp.all(jnp.stack(leaves))


def _has_steps(directory: pathlib.Path) -> bool:
  return directory.is_dir() and any(p.name.isdigit() for p in directory.iterdir())


class DiffusionTrainer:
  """The default trainer (see genjax.train.trainers): a diffusion or depth model on a Grain
  pipeline, its train step `step.train_step`, DDIM sample grids, sample-quality evaluation.
  A distillation student (train.objective "distill") holds its teacher's params, `frozen`."""

  def __init__(self, config):
    self.config = config
    self.info = data.dataset_info(config.data)
    self.skipped_files = [list(s) for s in self.info.skipped]

  def base_config(self):
    return None   # run_config's default: genjax.configs.base

  def check(self, mesh) -> None:
    config, info = self.config, self.info
    _check_batch(config, mesh)
    frozen.check(config)
    if config.data.class_labels and config.model.num_classes != len(info.class_names):
      raise ValueError(f"model.num_classes={config.model.num_classes} but the folder "
                       f"{config.data.path} has {len(info.class_names)} classes")

  def build(self) -> None:
    self.model, self.spec, self.tx, self.step_cfg, self.create_state = build(self.config)
    self.frozen = frozen.teacher_params(self.config)   # None unless a distillation student
    loader = data.make_loader(self.config.data, global_batch_size=self.config.train.batch_size,
                              seed=self.config.seed, info=self.info)
    self._data_iter = iter(loader)

  def data_iterator(self):
    return self._data_iter

  def next_batch(self, mesh):
    return global_batch(next(self._data_iter), mesh)

  def make_step_fn(self, mesh, state_shardings):
    return make_step_fn(self.config, mesh, state_shardings, self.frozen)

  def start_from(self, state, path, shardings):
    return start_from(state, path, self.tx, shardings)

  def make_preview_fn(self, mesh):
    config, model = self.config, self.model
    if self.step_cfg.objective == "depth":      # held-out rooms beside their predicted depth
      return depth.make_preview_fn(model, mesh, num_images=config.train.num_sample_images,
                                   image_shape=tuple(config.data.image_size))
    return preview.make_preview_fn(
        model, self.spec, mesh, num_images=config.train.num_sample_images,
        steps=config.train.sample_steps, image_shape=tuple(config.data.image_size),
        num_classes=config.model.num_classes, cond_channels=config.model.cond_channels)

  def make_evaluator(self, mesh, workdir):
    if self.config.train.eval_every <= 0:
      return None
    return _Evaluation(self.config, self.model, self.spec, mesh, workdir)

  def finish(self, state, workdir) -> None:
    pass


class _Evaluation:
  """Sample-quality metrics of the EMA parameters, and the best checkpoint by one of them."""

  def __init__(self, config, model, spec, mesh, workdir):
    self.evaluator = evaluation.Evaluator(config, model, spec, mesh)
    self.best = None
    if config.train.keep_best_by:
      self.best = evaluation.BestCheckpoint(workdir, config.train.keep_best_by,
                                            config.train.eval_metrics)

  def __call__(self, state, key) -> dict:
    results = self.evaluator(state.ema_params, key)
    step = int(state.step)
    if self.best is not None and self.best.update(step, results, state):
      log.info("step %d: best %s so far; saved to %s", step, self.best.metric,
               self.best.directory)
    return results

  def close(self) -> None:
    if self.best is not None:
      self.best.close()


trainers.register("diffusion", DiffusionTrainer)


def train(config, workdir: str | pathlib.Path, *, progress: bool = True,
          accept_config_change: bool = False, trainer=None) -> RunSummary:
  """Trains (or resumes) the run in `workdir`. Returns its summary; see module docstring.

  `trainer`: a trainer class (genjax.train.trainers); default the one train.trainer names.
  A bad config value, or (on resume) a config that differs from the run's config.json in a
  key outside `run_config.FREE_ON_RESUME`, raises ConfigError before anything is written or
  compiled; `accept_config_change` accepts such a change and records it in the run folder.
  """
  workdir = pathlib.Path(workdir)
  is_main = jax.process_index() == 0
  run_config.check_values(config)
  mesh = sharding.make_mesh(config.mesh)
  trainer = (trainer or trainers.get(trainers.name_of(config)))(config)
  trainer.check(mesh)
  config_diff = {}
  if _has_steps(workdir / "checkpoints"):
    config_diff = run_config.check_resume(workdir, config, accept=accept_config_change,
                                          base=trainer.base_config())
  if is_main:
    workdir.mkdir(parents=True, exist_ok=True)

  # Before the model is built: a resumed run pins its recorded conv choices (runtime.json).
  recorded = runtime.restore_settings(workdir)
  trainer.build()
  create = trainer.create_state
  root = jax.random.PRNGKey(config.seed)
  init_key, sample_key = jax.random.split(root)
  abstract = jax.eval_shape(create, init_key)
  shardings = sharding.state_shardings(abstract, mesh)

  data_iter = trainer.data_iterator()
  ckpt = checkpoint.Checkpointer(workdir / "checkpoints", every=config.train.checkpoint_every,
                                 keep=config.train.keep_checkpoints,
                                 with_data=data_iter is not None)
  state, first_batch, step_fn = startup.state_and_step(
      trainer, config, workdir, mesh=mesh, ckpt=ckpt, abstract=abstract, shardings=shardings,
      init_key=init_key, recorded=recorded, config_diff=config_diff)
  start = int(state.step)
  n_params = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(abstract.params))
  log.info("model: %.2fM parameters; mesh %s; global batch %d", n_params / 1e6,
           dict(mesh.shape), config.train.batch_size)

  sample_fn = distributed.CompiledTogether(trainer.make_preview_fn(mesh), "preview")

  def write_samples(state):
    images = sample_fn(state.ema_params, jax.random.fold_in(sample_key, state.step))
    if is_main:
      step = int(state.step)
      image_io.save_grid(workdir / "samples" / f"step_{step:07d}.png", np.asarray(images),
                         value_range=(-1.0, 1.0))
      image_io.save_grid(workdir / "samples.png", np.asarray(images), value_range=(-1.0, 1.0))

  book = logbook.Logbook(workdir, resume_step=start, enabled=is_main)
  evaluator = trainer.make_evaluator(mesh, workdir)
  eval_key = jax.random.fold_in(sample_key, 1)

  def evaluate(state):
    # The same key at every evaluation: the curve then reflects the model, not the draw.
    results = evaluator(state, eval_key)
    step = int(state.step)
    book.write(step, results)
    log.info("step %d: %s", step, ", ".join(f"{k} {v:.4g}" for k, v in results.items()))
  train_cfg = config.train
  lr_at = _logged_learning_rates(train_cfg, start)
  time_limit = 60.0 * train_cfg.get("time_limit_minutes", 0.0)
  agree_every = 1 if jax.process_count() == 1 else train_cfg.get("stop_check_every", AGREE_EVERY)
  window, in_row, last_loss = [], 0, None
  # state.skipped plus the non-finite steps consumed since: a step's record then waits for
  # that step alone, not for the one dispatched after it.
  skipped = int(jax.device_get(state.skipped))
  t_start = t_window = time.perf_counter()
  images_done = 0
  bar = tqdm.tqdm(total=train_cfg.num_steps, initial=start, desc="train", unit="step",
                  disable=not (progress and is_main), dynamic_ncols=True)

  def consume(step: int, metrics) -> None:
    """Host side of a finished step (one step behind dispatch, to keep the device busy)."""
    nonlocal in_row, last_loss, t_window, window, skipped
    m = jax.device_get(metrics)
    finite = bool(m["finite"])
    in_row = 0 if finite else in_row + 1
    skipped += not finite
    if finite:
      last_loss = float(m["loss"])
      window.append({k: float(v) for k, v in m.items() if k != "finite"})
    else:
      log.warning("step %d: non-finite loss or gradient (%s); update skipped", step, m["loss"])
    if in_row >= train_cfg.max_nonfinite_in_row:
      raise TrainingDiverged(
          f"{in_row} non-finite steps in a row up to step {step} "
          f"(train.max_nonfinite_in_row={train_cfg.max_nonfinite_in_row}); stopping. The last "
          f"good checkpoint in {ckpt.directory} is intact.")
    if step % train_cfg.log_every == 0 or step == train_cfg.num_steps:
      now = time.perf_counter()
      n_steps = max(len(window), 1)
      ips = n_steps * train_cfg.batch_size / max(now - t_window, 1e-9)
      names = [k for k in m if k != "finite"]
      record = {k: float(np.mean([w[k] for w in window])) if window else float("nan")
                for k in names}
      record.update({"learning_rate": lr_at(step), "images_per_second": ips,
                     "skipped_steps": skipped})
      book.write(step, record)
      bar.set_postfix(loss=f"{record['loss']:.4f}", img_s=f"{ips:.0f}")
      window, t_window = [], now
    bar.update(1)

  pending = None
  interrupted = None
  try:
    with StopSignal() as stop:
      for step in range(start, train_cfg.num_steps):
        batch = first_batch if step == start else trainer.next_batch(mesh)
        state, metrics = step_fn(state, batch)
        images_done += train_cfg.batch_size
        if pending is not None:
          consume(*pending)
        pending = (step + 1, metrics)
        if (step + 1) % train_cfg.checkpoint_every == 0:
          _save(ckpt, state, data_iter, force=False)
        if (step + 1) % train_cfg.sample_every == 0:
          write_samples(state)
        if evaluator is not None and (step + 1) % train_cfg.eval_every == 0:
          evaluate(state)
        if (step + 1) % agree_every == 0 and step + 1 < train_cfg.num_steps:
          # Every process must stop at the same step (the final save is collective).
          late = time_limit and time.perf_counter() - t_start > time_limit
          interrupted = agreed_stop(stop.received or ("time_limit" if late else None))
          if interrupted:
            log.warning("stopping at step %d of %d: %s", step + 1, train_cfg.num_steps,
                        "train.time_limit_minutes reached" if interrupted == "time_limit"
                        else interrupted)
            break
      if pending is not None:
        consume(*pending)
      final = int(state.step)
      _save(ckpt, state, data_iter, force=True)
      if interrupted is None and final > start and final % train_cfg.sample_every:
        write_samples(state)
  finally:
    bar.close()
    ckpt.close()
    book.close()
    if evaluator is not None:
      evaluator.close()
    if hasattr(data_iter, "close"):
      # Grain's worker processes (data.worker_count > 0) stop now: left to the interpreter's
      # shutdown, their queues are closed first and each finalizer prints a traceback.
      data_iter.close()

  seconds = time.perf_counter() - t_start
  summary = RunSummary(
      workdir=str(workdir), start_step=start, final_step=final, final_loss=last_loss,
      skipped_steps=int(jax.device_get(state.skipped)),
      skipped_files=trainer.skipped_files, seconds=seconds,
      images_per_second=images_done / max(seconds, 1e-9), interrupted_by=interrupted)
  trainer.finish(state, workdir)   # every process (it may gather); it writes on process 0
  if is_main:
    records = logbook.read_records(book.path)
    plots.plot_loss_curve(records, workdir / "loss.png")
    plots.plot_eval_curves(records, workdir / "eval.png")
    files.write_json(workdir / "summary.json", dataclasses.asdict(summary))
  return summary


def _logged_learning_rates(train_cfg, start: int):
  """step -> the schedule's learning rate, for each step past `start` that gets a log record,
  computed in one program before the first step: a device computation at log time would wait
  for the step dispatched after the logged one. Two arrays, not a dict (4 bytes a record)."""
  steps = np.arange(start + 1, train_cfg.num_steps + 1, dtype=np.int32)
  steps = steps[(steps % train_cfg.log_every == 0) | (steps == train_cfg.num_steps)]
  rates = np.asarray(jax.jit(optimizer.learning_rate_schedule(train_cfg))(steps))
  return lambda step: float(rates[np.searchsorted(steps, step)])


def _save(ckpt: checkpoint.Checkpointer, state, data_iter, *, force: bool) -> None:
  """Saves unless a parameter is non-finite: a NaN never overwrites a good checkpoint."""
  step = int(state.step)
  if ckpt.latest_step() == step:
    return
  if not bool(_tree_is_finite(state.params)):
    log.error("step %d: parameters are not finite; checkpoint not written", step)
    return
  ckpt.save(step, state, data_iter, force=force)
