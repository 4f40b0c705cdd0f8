"""Loading a trained run (its config and EMA parameters) from a work folder."""

import pathlib

import jax
import jax.numpy as jnp

from genjax import configs, diffusion, models
from genjax.train import checkpoint
from genjax.sample.sampler import make_sampler


def restore_subtrees(workdir, names=("ema_params",), *, step: int | None = None) -> dict:
  """{name: tree} of TrainState fields (params, ema_params, opt_state, step, ...) at `step`
  (default: latest), restored onto one local device whatever mesh and process count
  the run was trained with (checkpoint.restore_subtrees of the run's checkpoints/)."""
  return checkpoint.restore_subtrees(pathlib.Path(workdir) / "checkpoints", names, step=step)


def load_run(workdir, *, step: int | None = None, ema: bool = True):
  """(config, model, spec, params) of the checkpoint at `step` (default: latest)."""
  workdir = pathlib.Path(workdir)
  config_path = workdir / "config.json"
  if not config_path.is_file():
    raise FileNotFoundError(f"{workdir} is not a genjax run folder: no config.json")
  config = configs.from_json(config_path.read_text(), source=str(config_path))
  name = "ema_params" if ema else "params"
  model = models.build_model(config.model)
  params = restore_subtrees(workdir, (name,), step=step)[name]
  _check_params(params, model, config, config_path)
  spec = diffusion.DiffusionSpec.from_config(config.diffusion)
  return config, model, spec, params


def _check_params(params, model, config, config_path) -> None:
  """CheckpointMismatchError naming the paths whose shapes differ between the checkpoint and
  the model that config.json describes (a config.json copied from another run)."""
  h, w = config.data.image_size
  c = config.model
  x = jax.ShapeDtypeStruct((1, h, w, 3), jnp.float32)
  y = jax.ShapeDtypeStruct((1,), jnp.int32) if c.num_classes else None
  cond = (jax.ShapeDtypeStruct((1, h, w, c.cond_channels), jnp.float32)
          if c.cond_channels else None)
  expected = jax.eval_shape(
      lambda x, y, cond: model.init({"params": jax.random.PRNGKey(0)}, x,
                                    jnp.zeros((1,), jnp.float32), y=y, cond=cond,
                                    train=False)["params"], x, y, cond)
  lines = [line.strip() for line in checkpoint.describe_mismatch(params, expected)]
  if lines:
    more = f"; ... and {len(lines) - 3} more" if len(lines) > 3 else ""
    raise checkpoint.CheckpointMismatchError(
        f"the checkpoint in {config_path.parent / 'checkpoints'} does not fit the model of "
        f"{config_path} ({len(lines)} mismatched parameters: {'; '.join(lines[:3])}{more}); "
        f"was config.json replaced by another run's?")


def sampling_defaults(config, *, sampler: str, steps: int) -> tuple[str, int]:
  """(sampler, steps) a run is sampled with by default: a distilled student's own
  (config.distill.sampler, config.distill.steps; genjax.train.distill), else those given."""
  distilled = config.get("distill")
  if distilled is not None and int(distilled.steps) > 0:
    return str(distilled.sampler), int(distilled.steps)
  return sampler, steps


def load_sampler(workdir, *, step: int | None = None, **sampler_kwargs):
  """(sample_fn, params) for a run folder; sampler_kwargs go to `make_sampler`.

  Defaults as `genjax sample`: the run's image size and clip_x0=1, so the same seed gives
  the same images as the CLI, and a student's sampler and steps (`sampling_defaults`);
  images are float32 in [-1, 1].
  """
  config, model, spec, params = load_run(workdir, step=step)
  sampler_kwargs.setdefault("image_shape", tuple(config.data.image_size))
  sampler_kwargs.setdefault("clip_x0", 1.0)
  sampler, steps = sampling_defaults(config, sampler="dpm++2m", steps=25)
  sampler_kwargs.setdefault("sampler", sampler)
  sampler_kwargs.setdefault("steps", steps)
  return make_sampler(model, spec, **sampler_kwargs), params
