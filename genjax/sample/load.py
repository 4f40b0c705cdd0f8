"""Loading a trained run (its config and EMA parameters) from a work folder."""

import pathlib

import jax
import orbax.checkpoint as ocp

from genjax import configs, diffusion, models
from genjax.sample.sampler import make_sampler


def _single_device_target(metadata_tree):
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  return jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                      metadata_tree)


def load_run(workdir, *, step: int | None = None, ema: bool = True):
  """(config, model, spec, params) of the checkpoint at `step` (default: latest).

  The parameters are restored onto one local device, whatever mesh and process count
  the run was trained with.
  """
  workdir = pathlib.Path(workdir)
  config_path = workdir / "config.json"
  if not config_path.is_file():
    raise FileNotFoundError(f"{workdir} is not a genjax run folder: no config.json")
  config = configs.from_json(config_path.read_text(), source=str(config_path))
  manager = ocp.CheckpointManager((workdir / "checkpoints").absolute(),
                                  item_handlers={"state": ocp.PyTreeCheckpointHandler()},
                                  options=ocp.CheckpointManagerOptions(read_only=True))
  step = manager.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(f"{workdir / 'checkpoints'} holds no checkpoint")
  metadata = manager.item_metadata(step)["state"]
  metadata = getattr(metadata, "tree", metadata)
  name = "ema_params" if ema else "params"
  target = {name: _single_device_target(metadata[name])}
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.PyTreeRestore(item=target, partial_restore=True)))
  manager.close()
  model = models.build_model(config.model)
  spec = diffusion.DiffusionSpec.from_config(config.diffusion)
  return config, model, spec, restored["state"][name]


def load_sampler(workdir, *, step: int | None = None, **sampler_kwargs):
  """(sample_fn, params) for a run folder; sampler_kwargs go to `make_sampler`."""
  config, model, spec, params = load_run(workdir, step=step)
  sampler_kwargs.setdefault("image_shape", tuple(config.data.image_size))
  return make_sampler(model, spec, **sampler_kwargs), params
