"""The start of a run: its state (created or restored), its first batch and its train step.

A run on one process hands its step to a thread of its own (runtime.StepAhead): the step
is traced, lowered and compiled for the shapes, dtypes and shardings of the state and the
batch while the main thread compiles and runs the state's initialisation (a new run) or
restores the checkpoint (a resumed run) and sets up the rest of the loop. Same program,
same bits; what overlaps is the waiting. The batch's shapes come from a batch fetched
first: a new run's first batch (a new run restores no data iterator, so it is the same
batch), or for a resumed run a batch of the fresh iterator, dropped: the restore then
rewinds the iterator to the checkpoint's position. A run of several processes (which
settle the step at barriers) builds the state first, then the step, in order.
"""

import logging

import jax

from genjax.train import distributed, run_config, runtime

log = logging.getLogger("genjax.train")

# XLA compiler options of the state's initialisation on the CPU. It runs once per process,
# so its compile time is all it costs: LLVM's optimisation level 1 instead of XLA's
# default 3 compiles it in about half the time (cifar 12.4-12.9 -> 6.7-6.8 CPU s,
# panorama 29.7 -> 14.6) to the same bits (the SHA-256 of both states is level 3's;
# tested on `tiny` in tests/train/test_step.py). GPU and TPU keep their defaults.
INIT_CPU_COMPILER_OPTIONS = {"xla_backend_optimization_level": 1}


def compile_init(create_state, init_key, shardings):
  """The jitted `create_state` for `shardings`, lowered and compiled (see
  INIT_CPU_COMPILER_OPTIONS): call it with `init_key`."""
  options = INIT_CPU_COMPILER_OPTIONS if jax.default_backend() == "cpu" else None
  lowered = jax.jit(create_state, out_shardings=shardings).lower(init_key)
  return lowered.compile(options)


def specs(tree, shardings=None):
  """jax.ShapeDtypeStruct of each array (or abstract value) in `tree`: shape, dtype, weak
  type, and its sharding (or the one in `shardings`, a tree of the same structure)."""
  def spec(a, s):
    return jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s,
                                weak_type=getattr(a, "weak_type", False))
  if shardings is None:
    return jax.tree.map(lambda a: spec(jax.typeof(a), a.sharding), tree)
  return jax.tree.map(spec, tree, shardings)


def state_and_step(trainer, config, workdir, *, mesh, ckpt, abstract, shardings, init_key,
                   recorded, config_diff):
  """(state, the first batch or None when no step is left, the train step as a
  distributed.CompiledTogether). `abstract`: jax.eval_shape of the trainer's create_state;
  `recorded`: runtime.restore_settings' record (None for a new run)."""
  is_main = jax.process_index() == 0
  make_step = lambda: trainer.make_step_fn(mesh, shardings)  # noqa: E731
  latest = ckpt.latest_step()
  ahead = first_batch = None
  if jax.process_count() == 1 and config.train.num_steps > (latest or 0):
    # A resumed run's batch here only gives the shapes: the restore rewinds the iterator.
    first_batch = trainer.next_batch(mesh)
    ahead = runtime.StepAhead(config, workdir, make_step, specs(abstract, shardings),
                              specs(first_batch), recorded=recorded)
  try:
    if latest is not None:
      state = _restore(trainer, config, workdir, ckpt, abstract, shardings, config_diff, is_main)
      first_batch = None
    else:
      state = _create(trainer, config, workdir, init_key, shardings, is_main)
    if ahead is not None:
      ahead.state_built(jax.block_until_ready(state))
  except BaseException:
    if ahead is not None:
      ahead.cancel()
    raise
  start = int(state.step)
  if start >= config.train.num_steps:
    log.warning("the run is at step %d, train.num_steps=%d: nothing to train", start,
                config.train.num_steps)
  if start < config.train.num_steps and first_batch is None:
    first_batch = trainer.next_batch(mesh)
  if ahead is not None and start < config.train.num_steps:
    return state, first_batch, distributed.CompiledTogether(None, "train_step",
                                                            compiled=ahead.future)
  # The first batch is fetched above (the loop uses it) so that the step can be traced,
  # its convolutions tuned if the autotune table lacks them, and runtime.json written.
  step_fn = runtime.prepare_step(config, workdir, make_step, state, first_batch,
                                 recorded=recorded)
  return state, first_batch, distributed.CompiledTogether(step_fn, "train_step")


def _restore(trainer, config, workdir, ckpt, abstract, shardings, config_diff, is_main):
  target = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                        abstract, shardings)
  state, step, _ = ckpt.restore_intact(target, trainer.data_iterator(), move_damaged=is_main)
  log.info("resumed from %s at step %d", ckpt.directory, step)
  if is_main:
    run_config.record(workdir, config, config_diff, step=step)
    for key, (old, new) in config_diff.items():
      log.warning("config changed at step %d: %s %s -> %s", step, key, old, new)
  return state


def _create(trainer, config, workdir, init_key, shardings, is_main):
  state = compile_init(trainer.create_state, init_key, shardings)(init_key)
  if config.train.get("init_params"):
    if not hasattr(trainer, "start_from"):
      raise ValueError(f"train.init_params={config.train.init_params!r}: the "
                       f"{type(trainer).__name__} trainer cannot start from other parameters")
    state = trainer.start_from(state, config.train.init_params, shardings)
    log.info("started from the parameters in %s", config.train.init_params)
  if is_main:
    run_config.write(workdir, config)
  return state
