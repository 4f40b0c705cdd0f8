"""`train(config, workdir)`: the training run behind `genjax train` and `genjax demo`.

Builds the state from shapes (eval_shape -> shardings -> jit(create) or restore),
then runs the jitted, donated train step over the Grain iterator, saving
checkpoints, metrics, sample grids and a loss curve into `workdir`.
"""

import dataclasses
import functools
import logging
import os
import pathlib
import signal
import time

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from genjax import data, diffusion, files, models
from genjax.image import io as image_io
from genjax.train import (checkpoint, depth, distributed, evaluation, frozen, logbook, optimizer,
                          plots, preview, run_config, runtime, sharding)
from genjax.train.state import create_train_state
from genjax.train.step import StepConfig, train_step

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


class _StopSignal:
  """Turns SIGTERM / SIGINT into a flag the loop checks between steps."""

  def __init__(self):
    self.received = None
    self._previous = {}

  def __enter__(self):
    for sig in (signal.SIGTERM, signal.SIGINT):
      try:
        self._previous[sig] = signal.signal(sig, self._handle)
      except ValueError:  # not the main thread: leave signals alone
        pass
    return self

  def _handle(self, signum, frame):
    self.received = signal.Signals(signum).name

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


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
  """The train step, jitted with shardings and the state donated. frozen_params (placed
  like the state's params): bound as the step's third, non-donated argument."""
  model, spec, tx, step_cfg, _ = build(config)
  in_shardings = (state_shardings, sharding.batch_sharding(mesh))
  if frozen_params is not None:
    in_shardings += (state_shardings.params,)
  jitted = jax.jit(
      functools.partial(train_step, model=model, spec=spec, tx=tx, cfg=step_cfg),
      in_shardings=in_shardings,
      out_shardings=(state_shardings, sharding.replicated(mesh)),
      donate_argnums=0)
  return jitted if frozen_params is None else frozen.WithFrozen(jitted, frozen_params)


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


def train(config, workdir: str | pathlib.Path, *, progress: bool = True,
          accept_config_change: bool = False, frozen_params=None,
          init_params=None) -> RunSummary:
  """Trains (or resumes) the run in `workdir`. Returns its summary; see module docstring.

  frozen_params: a params tree the loss reads and never trains (`frozen=` of the
  train.objective's loss; a distillation teacher). init_params: a new run's params and
  ema_params start from this tree (ignored on resume). Both: host or device arrays of the
  model's param shapes (genjax.train.distill_run passes the teacher's EMA params).

  A bad config value, or (on resume) a config that differs from the run's config.json in a
  key outside `run_config.FREE_ON_RESUME`, raises ConfigError before anything is written or
  compiled; `accept_config_change` accepts such a change and records it in the run folder.
  """
  workdir = pathlib.Path(workdir)
  is_main = jax.process_index() == 0
  run_config.check_values(config)
  mesh = sharding.make_mesh(config.mesh)
  _check_batch(config, mesh)
  info = data.dataset_info(config.data)
  if config.data.class_labels and config.model.num_classes != len(info.class_names):
    raise ValueError(f"model.num_classes={config.model.num_classes} but the folder "
                     f"{config.data.path} has {len(info.class_names)} classes")
  config_diff = {}
  if _has_steps(workdir / "checkpoints"):
    config_diff = run_config.check_resume(workdir, config, accept=accept_config_change)
  if is_main:
    workdir.mkdir(parents=True, exist_ok=True)

  # Before the model is built: a resumed run pins its recorded conv choices (runtime.json).
  recorded = runtime.restore_settings(workdir)
  model, spec, tx, step_cfg, create = build(config)
  root = jax.random.PRNGKey(config.seed)
  init_key, sample_key = jax.random.split(root)
  abstract = jax.eval_shape(create, init_key)
  shardings = sharding.state_shardings(abstract, mesh)

  loader = data.make_loader(config.data, global_batch_size=config.train.batch_size,
                            seed=config.seed, info=info)
  data_iter = iter(loader)
  ckpt = checkpoint.Checkpointer(workdir / "checkpoints", every=config.train.checkpoint_every,
                                 keep=config.train.keep_checkpoints)
  if ckpt.latest_step() is not None:
    target = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                          abstract, shardings)
    state, step, _ = ckpt.restore_intact(target, data_iter, move_damaged=is_main)
    log.info("resumed from %s at step %d", ckpt.directory, step)
    if is_main:
      run_config.record(workdir, config, config_diff, step=step)
      for key, (old, new) in config_diff.items():
        log.warning("config changed at step %d: %s %s -> %s", step, key, old, new)
  else:
    state = jax.jit(create, out_shardings=shardings)(init_key)
    if init_params is not None:  # two device_puts of host arrays: two buffers to donate
      host = jax.device_get(init_params)
      state = state.replace(params=jax.device_put(host, shardings.params),
                            ema_params=jax.device_put(host, shardings.params))
    if is_main:
      run_config.write(workdir, config)
  if frozen_params is not None:
    frozen_params = jax.device_put(jax.device_get(frozen_params), shardings.params)
  start = int(state.step)
  if start >= config.train.num_steps:
    log.warning("the run is at step %d, train.num_steps=%d: nothing to train", start,
                config.train.num_steps)
  # The first batch is fetched here (the loop uses it) so that the step can be traced,
  # its convolutions tuned if the autotune table lacks them, and runtime.json written.
  first_batch = global_batch(next(data_iter), mesh) if start < config.train.num_steps else None
  step_fn = distributed.CompiledTogether(runtime.prepare_step(
      config, workdir, lambda: make_step_fn(config, mesh, shardings, frozen_params), state,
      first_batch, recorded=recorded), "train_step")
  n_params = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(abstract.params))
  log.info("model: %.2fM parameters; mesh %s; global batch %d", n_params / 1e6,
           dict(mesh.shape), config.train.batch_size)

  if step_cfg.objective == "depth":      # held-out rooms beside their predicted depth
    preview_fn = depth.make_preview_fn(model, mesh, num_images=config.train.num_sample_images,
                                       image_shape=tuple(config.data.image_size))
  else:
    preview_fn = preview.make_preview_fn(
        model, spec, mesh, num_images=config.train.num_sample_images,
        steps=config.train.sample_steps, image_shape=tuple(config.data.image_size),
        num_classes=config.model.num_classes, cond_channels=config.model.cond_channels)
  sample_fn = distributed.CompiledTogether(preview_fn, "preview")

  def write_samples(state):
    images = sample_fn(state.ema_params, jax.random.fold_in(sample_key, state.step))
    if is_main:
      step = int(state.step)
      image_io.save_grid(workdir / "samples" / f"step_{step:07d}.png", np.asarray(images),
                         value_range=(-1.0, 1.0))
      image_io.save_grid(workdir / "samples.png", np.asarray(images), value_range=(-1.0, 1.0))

  book = logbook.Logbook(workdir, resume_step=start, enabled=is_main)
  evaluator = best = None
  if config.train.eval_every > 0:
    evaluator = evaluation.Evaluator(config, model, spec, mesh)
    if config.train.keep_best_by:
      best = evaluation.BestCheckpoint(workdir, config.train.keep_best_by,
                                       config.train.eval_metrics)
  eval_key = jax.random.fold_in(sample_key, 1)

  def evaluate(state):
    # The same key at every evaluation: the curve then reflects the model, not the draw.
    results = evaluator(state.ema_params, eval_key)
    step = int(state.step)
    book.write(step, results)
    log.info("step %d: %s", step, ", ".join(f"{k} {v:.4g}" for k, v in results.items()))
    if best is not None and best.update(step, results, state):
      log.info("step %d: best %s so far; saved to %s", step, best.metric, best.directory)
  lr_at = optimizer.learning_rate_schedule(config.train)
  train_cfg = config.train
  window, in_row, last_loss = [], 0, None
  t_start = t_window = time.perf_counter()
  images_done = 0
  bar = tqdm.tqdm(total=train_cfg.num_steps, initial=start, desc="train", unit="step",
                  disable=not (progress and is_main), dynamic_ncols=True)

  def consume(step: int, metrics) -> None:
    """Host side of a finished step (one step behind dispatch, to keep the device busy)."""
    nonlocal in_row, last_loss, t_window, window
    m = jax.device_get(metrics)
    finite = bool(m["finite"])
    in_row = 0 if finite else in_row + 1
    if finite:
      last_loss = float(m["loss"])
      window.append((last_loss, float(m["grad_norm"])))
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
      record = {"loss": float(np.mean([w[0] for w in window])) if window else float("nan"),
                "grad_norm": float(np.mean([w[1] for w in window])) if window else float("nan"),
                "learning_rate": float(lr_at(step)), "images_per_second": ips,
                "skipped_steps": int(jax.device_get(state.skipped))}
      book.write(step, record)
      bar.set_postfix(loss=f"{record['loss']:.4f}", img_s=f"{ips:.0f}")
      window, t_window = [], now
    bar.update(1)

  pending = None
  interrupted = None
  try:
    with _StopSignal() as stop:
      for step in range(start, train_cfg.num_steps):
        batch = first_batch if step == start else global_batch(next(data_iter), mesh)
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
        if stop.received:
          interrupted = stop.received
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
    if best is not None:
      best.close()

  seconds = time.perf_counter() - t_start
  summary = RunSummary(
      workdir=str(workdir), start_step=start, final_step=final, final_loss=last_loss,
      skipped_steps=int(jax.device_get(state.skipped)),
      skipped_files=[list(s) for s in info.skipped], seconds=seconds,
      images_per_second=images_done / max(seconds, 1e-9), interrupted_by=interrupted)
  if is_main:
    records = logbook.read_records(book.path)
    plots.plot_loss_curve(records, workdir / "loss.png")
    plots.plot_eval_curves(records, workdir / "eval.png")
    files.write_json(workdir / "summary.json", dataclasses.asdict(summary))
  return summary


def _save(ckpt: checkpoint.Checkpointer, state, data_iter, *, force: bool) -> None:
  """Saves unless a parameter is non-finite: a NaN never overwrites a good checkpoint."""
  step = int(state.step)
  if ckpt.latest_step() == step:
    return
  if not bool(_tree_is_finite(state.params)):
    log.error("step %d: parameters are not finite; checkpoint not written", step)
    return
  ckpt.save(step, state, data_iter, force=force)
