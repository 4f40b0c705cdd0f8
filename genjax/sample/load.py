"""Loading a trained run (its config and EMA parameters) from a work folder."""

import contextlib
import logging
import pathlib

import grain
import jax
import orbax.checkpoint as ocp

from genjax import configs, diffusion, models
from genjax.sample.sampler import make_sampler


def _single_device_target(metadata_tree):
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  return jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                      metadata_tree)


class _DropReadOnlyNotice(logging.Filter):
  def filter(self, record):
    return not record.getMessage().startswith("Given directory is read only")


@contextlib.contextmanager
def _quiet_read_only_notice():
  """Orbax logs a warning for every read-only manager; loading a model is not a warning."""
  notice = _DropReadOnlyNotice()
  logger = logging.getLogger("absl")
  logger.addFilter(notice)
  try:
    yield
  finally:
    logger.removeFilter(notice)


def restore_subtrees(workdir, names=("ema_params",), *, step: int | None = None) -> dict:
  """{name: tree} of TrainState fields (params, ema_params, opt_state, step, ...) at `step`
  (default: latest), restored onto one local device whatever mesh and process count
  the run was trained with."""
  directory = (pathlib.Path(workdir) / "checkpoints").absolute()
  # Every item of the step gets its handler (else Orbax warns, twice, that "data" could not be
  # restored), and the read-only options are given as Orbax would force them (else it warns
  # about each one it changes).
  with _quiet_read_only_notice():
    manager = ocp.CheckpointManager(
        directory,
        item_handlers={"state": ocp.PyTreeCheckpointHandler(),
                       "data": grain.checkpoint.CheckpointHandler()},
        options=ocp.CheckpointManagerOptions(read_only=True, create=False,
                                             save_interval_steps=0))
  try:
    step = manager.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"{directory} holds no checkpoint")
    metadata = manager.item_metadata(step)["state"]
    metadata = getattr(metadata, "tree", metadata)
    target = {name: _single_device_target(metadata[name]) for name in names}
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
        item=target, partial_restore=True,
        restore_args=ocp.checkpoint_utils.construct_restore_args(target))))
  finally:
    manager.close()
  return dict(restored["state"])


def load_run(workdir, *, step: int | None = None, ema: bool = True):
  """(config, model, spec, params) of the checkpoint at `step` (default: latest)."""
  workdir = pathlib.Path(workdir)
  config_path = workdir / "config.json"
  if not config_path.is_file():
    raise FileNotFoundError(f"{workdir} is not a genjax run folder: no config.json")
  config = configs.from_json(config_path.read_text(), source=str(config_path))
  name = "ema_params" if ema else "params"
  params = restore_subtrees(workdir, (name,), step=step)[name]
  model = models.build_model(config.model)
  spec = diffusion.DiffusionSpec.from_config(config.diffusion)
  return config, model, spec, params


def load_sampler(workdir, *, step: int | None = None, **sampler_kwargs):
  """(sample_fn, params) for a run folder; sampler_kwargs go to `make_sampler`."""
  config, model, spec, params = load_run(workdir, step=step)
  sampler_kwargs.setdefault("image_shape", tuple(config.data.image_size))
  return make_sampler(model, spec, **sampler_kwargs), params
