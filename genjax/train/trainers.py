"""Trainers by name: what a run trains, behind the one training loop (`genjax.train.loop`).

The loop owns everything that does not depend on the model: the mesh and shardings, the
checkpoints (exact resume, damaged steps, a NaN never saved), the refusal of a changed
config on resume, metrics / TensorBoard / loss curve, sample grids, signals, multi-process
start-up. A trainer gives the rest; `train.trainer` in the config names it ("diffusion",
the default, is registered by the loop itself). A higher layer (an app) registers its own
trainer on import: genjax.train never imports the apps.

A trainer is a class built once per run as `Trainer(config)`, with:

  base_config() -> ConfigDict     the defaults a saved config.json is read onto on resume
  check(mesh)                     bad config or data: raise before anything is written
  build()                         the model and the step's static parts (after the run's
                                  recorded conv choices are pinned)
  create_state(key)               pure in key (uint32 [2]), so jax.eval_shape gives the
                                  checkpoint's tree; a flax.struct with step, params,
                                  ema_params, skipped (int32 [], non-finite steps)
  data_iterator()                 a Grain iterator checkpointed beside the state, or None when
                                  the step draws its own batches from the step's key
  next_batch(mesh)                the next global batch (jax.Arrays laid out for the mesh)
  make_step_fn(mesh, shardings)   jitted (state, batch) -> (state, metrics), state donated;
                                  metrics: float32 scalars (loss, grad_norm, any others,
                                  averaged into each log record) and an int32 `finite` flag
  make_preview_fn(mesh)           fn(ema_params, key) -> images [N, H, W, 3] in [-1, 1]
  make_evaluator(mesh, workdir)   None, or evaluate(state, key) -> {"eval/<name>": float}
                                  with close()
  finish(state, workdir)          process 0, after the last checkpoint: exports (may do
                                  nothing)
  skipped_files                   list of (file, reason) the data left out

and, optionally (a run whose config sets train.init_params needs it; without it such a run
stops with an error naming the key):

  start_from(state, path, shardings)  `state` with the parameters and EMA read from `path`
                                      (train.init_params) laid out as `shardings`, and a
                                      fresh optimizer state for them
"""

from typing import Any, Protocol


class Trainer(Protocol):
  skipped_files: list

  def __init__(self, config): ...
  def base_config(self): ...
  def check(self, mesh) -> None: ...
  def build(self) -> None: ...
  def create_state(self, key) -> Any: ...
  def data_iterator(self) -> Any: ...
  def next_batch(self, mesh) -> Any: ...
  def make_step_fn(self, mesh, state_shardings): ...
  def make_preview_fn(self, mesh): ...
  def make_evaluator(self, mesh, workdir): ...
  def finish(self, state, workdir) -> None: ...


_TRAINERS: dict[str, type] = {}


def register(name: str, trainer: type) -> type:
  """Makes `trainer` the one selected by train.trainer = name; returns it."""
  _TRAINERS[name] = trainer
  return trainer


def get(name: str) -> type:
  if name not in _TRAINERS:
    raise ValueError(f"unknown train.trainer {name!r}; registered: {', '.join(sorted(_TRAINERS))} "
                     "(an app's trainer is registered when its training module is imported)")
  return _TRAINERS[name]


def name_of(config) -> str:
  """The config's trainer name (train.trainer, "diffusion" when the config has none)."""
  return config.train.get("trainer", "diffusion")
