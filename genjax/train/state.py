"""TrainState: everything that changes during training, as one pytree."""

import pathlib
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
  """One pytree, so it is checkpointed, sharded and donated as a unit.

  The data-iterator state is the one thing that is not in here: it lives on the
  host and is checkpointed beside this tree.
  """
  step: jax.Array                # int32 []: optimizer steps taken (skipped ones included)
  params: Any                    # float32 master weights
  ema_params: Any                # exponential moving average of params, float32
  opt_state: optax.OptState
  rng: jax.Array                 # uint32 [2]: per-step keys are fold_in(rng, step)
  skipped: jax.Array             # int32 []: steps whose loss or gradient was not finite


def create_train_state(key: jax.Array, *, model, tx: optax.GradientTransformation,
                       image_shape: tuple[int, int], num_classes: int,
                       cond_channels: int) -> TrainState:
  """Initializes a TrainState. Pure in `key`, so `jax.eval_shape` gives its shapes.

  Args:
    key: uint32 [2] root key of this run.
    image_shape: (height, width) of the training images.
  """
  init_key, rng = jax.random.split(key)
  h, w = image_shape
  x = jnp.zeros((1, h, w, 3), jnp.float32)
  y = jnp.zeros((1,), jnp.int32) if num_classes else None
  cond = jnp.zeros((1, h, w, cond_channels), jnp.float32) if cond_channels else None
  params = model.init({"params": init_key}, x, jnp.zeros((1,), jnp.float32), y=y, cond=cond,
                      train=False)["params"]
  zero = jnp.zeros((), jnp.int32)
  return TrainState(step=zero, params=params, ema_params=jax.tree.map(jnp.copy, params),
                    opt_state=tx.init(params), rng=rng, skipped=zero)


def start_from(state, path, tx, shardings):
  """A fresh state whose params and EMA params are read from `path` (train.init_params), with
  a fresh optimizer state: fine-tuning, or a distillation student starting as its teacher.
  `path`: an exported weights file (a {"params": ...} msgpack, e.g.
  genjax.apps.vr.depth_estimation.export_weights) or a run's checkpoint step folder
  (RUN/checkpoints/STEP: its EMA params). The tree must match the model's exactly."""
  from flax import serialization, traverse_util
  loaded = read_params(path)
  shapes = lambda tree: {k: (tuple(v.shape), str(v.dtype))               # noqa: E731
                         for k, v in traverse_util.flatten_dict(dict(tree)).items()}
  if shapes(loaded) != shapes(state.params):
    raise ValueError(f"train.init_params {path}: its parameters do not match the model's "
                     f"(another model config?)")
  loaded = serialization.from_state_dict(state.params, serialization.to_state_dict(loaded))
  params = jax.device_put(jax.tree.map(jnp.asarray, loaded), shardings.params)
  return state.replace(params=params, ema_params=jax.tree.map(jnp.copy, params),
                       opt_state=jax.jit(tx.init, out_shardings=shardings.opt_state)(params))


def is_checkpoint_step(path) -> bool:
  """`path` is a run's checkpoint step folder (.../checkpoints/STEP)."""
  path = pathlib.Path(path)
  return path.is_dir() and path.name.isdigit() and path.parent.name == "checkpoints"


def read_params(path):
  """The params tree of train.init_params `path` (see start_from), on the host."""
  from flax import serialization
  from genjax.train import checkpoint
  path = pathlib.Path(path)
  if is_checkpoint_step(path):
    return checkpoint.restore_subtrees(path.parent, ("ema_params",),
                                       step=int(path.name))["ema_params"]
  if not path.is_file():
    raise FileNotFoundError(f"train.init_params {path}: no such file or checkpoint folder")
  return serialization.msgpack_restore(path.read_bytes())["params"]
