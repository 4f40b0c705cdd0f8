"""Checkpoints through Orbax's CheckpointManager: the TrainState and, beside it,
the Grain iterator state of every process, so a resumed run continues with
exactly the batch that would have come next.

Orbax writes each step into a temporary directory and renames it when complete,
so a crash mid-save never leaves a step that looks finished.
"""

import pathlib

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp


class CheckpointMismatchError(ValueError):
  """The checkpoint holds parameters of other shapes than the model being restored."""


def _path_names(path) -> tuple[str, ...]:
  return tuple(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)


def _shapes(tree) -> dict[tuple[str, ...], tuple[int, ...]]:
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {_path_names(p): tuple(leaf.shape) for p, leaf in leaves}


def describe_mismatch(saved, expected) -> list[str]:
  """Lines naming every parameter path whose presence or shape differs."""
  a, b = _shapes(saved), _shapes(expected)
  lines = []
  for path in sorted(set(a) | set(b)):
    name = "/".join(path)
    if path not in a:
      lines.append(f"  {name}: missing from the checkpoint (model expects {b[path]})")
    elif path not in b:
      lines.append(f"  {name}: in the checkpoint {a[path]}, not in the model")
    elif a[path] != b[path]:
      lines.append(f"  {name}: checkpoint {a[path]} != model {b[path]}")
  return lines


class Checkpointer:
  """Saves every `every` steps (asynchronously), keeps the last `keep`."""

  def __init__(self, directory: str | pathlib.Path, *, every: int, keep: int):
    self.directory = pathlib.Path(directory).absolute()
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            save_interval_steps=every, max_to_keep=keep, create=True,
            cleanup_tmp_directories=True),
        item_handlers={"state": ocp.StandardCheckpointHandler(),
                       "data": grain.checkpoint.CheckpointHandler()})

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state, data_iterator, *, force: bool = False) -> bool:
    """Starts an asynchronous save; returns whether one was started."""
    return self.manager.save(
        step, force=force,
        args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                data=grain.checkpoint.CheckpointSave(data_iterator)))

  def restore(self, abstract_state, data_iterator, step: int | None = None):
    """Restores the state (sharded as `abstract_state`'s shardings say) and the iterator.

    Raises CheckpointMismatchError listing every mismatched parameter path.
    """
    step = self.latest_step() if step is None else step
    saved = self.manager.item_metadata(step)["state"]
    saved = getattr(saved, "tree", saved)
    lines = describe_mismatch(saved["params"], abstract_state.params)
    if lines:
      raise CheckpointMismatchError(
          f"checkpoint {self.directory / str(step)} does not fit this model; "
          "mismatched parameters:\n" + "\n".join(lines))
    restored = self.manager.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state),
                                      data=grain.checkpoint.CheckpointRestore(data_iterator)))
    return restored["state"]

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()


def all_finite(tree) -> bool:
  """True when every float leaf is finite (checked on the host, once per save)."""
  return all(bool(np.isfinite(np.asarray(jax.device_get(x))).all())
             for x in jax.tree.leaves(tree) if jax.numpy.issubdtype(x.dtype, np.floating))
