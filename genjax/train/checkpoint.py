"""Checkpoints through Orbax's CheckpointManager: the TrainState and, beside it,
the Grain iterator state of every process, so a resumed run continues with
exactly the batch that would have come next.

Orbax writes each step into a temporary directory and renames it when complete,
so a crash mid-save never leaves a step that looks finished. A step damaged afterwards
(a truncated or overwritten array file, a deleted `_METADATA`, `state/` or `data/`) is
moved aside to `damaged/<step>-<reason>` (never deleted) and the run resumes from the
newest intact step.
"""

import dataclasses
import logging
import pathlib
import shutil

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp


log = logging.getLogger("genjax.train")


class CheckpointMismatchError(ValueError):
  """The checkpoint holds parameters of other shapes than the model being restored."""


class NoIntactCheckpointError(ValueError):
  """Every checkpoint step of a run is damaged; nothing was moved."""


@dataclasses.dataclass(frozen=True)
class Damaged:
  step: int
  slug: str       # short reason for the folder name: state-missing, metadata-missing, ...
  reason: str     # one line for the user


def _one_line(e: BaseException) -> str:
  # Orbax wraps TensorStore errors in a generic Exception whose text is a many-line spec; the
  # innermost cause says what is wrong with which file ("OUT_OF_RANGE: Error reading ...").
  while (e.__cause__ or e.__context__) is not None:
    e = e.__cause__ or e.__context__
  text = (str(e).strip().splitlines() or [""])[0]
  text = f"{type(e).__name__}: {text}" if type(e).__name__ not in text else text
  return text if len(text) <= 300 else text[:297] + "..."


def _missing_part(step_dir: pathlib.Path) -> Damaged | None:
  """The named reason when a whole part of a step folder is gone (cheaper than restoring)."""
  step = int(step_dir.name)
  for part, slug in (("state", "state-missing"), ("data", "data-missing")):
    if not (step_dir / part).is_dir():
      return Damaged(step, slug, f"{part}/ is missing")
  if not (step_dir / "state" / "_METADATA").is_file():
    return Damaged(step, "metadata-missing", "state/_METADATA is missing")
  return None


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

  def restore_intact(self, abstract_state, data_iterator, *, move_damaged: bool = True):
    """(state, step, damaged): restores the newest step that reads back whole (see `restore`).

    Each newer damaged step is logged on one line (step and reason) and, when `move_damaged`
    (process 0 of a multi-process run), moved to `damaged/<step>-<reason>` only once an intact
    step has been found: if none is, NoIntactCheckpointError lists them all and nothing moves.
    CheckpointMismatchError (another model) is not damage and propagates at once.
    """
    damaged = []
    for step in sorted(self.manager.all_steps(), reverse=True):
      problem = _missing_part(self.directory / str(step))
      if problem is None:
        try:
          state = self.restore(abstract_state, data_iterator, step)
        except CheckpointMismatchError:
          raise
        except MemoryError:
          raise
        except Exception as e:  # anything Orbax / TensorStore raise on a bad file
          problem = Damaged(step, "unreadable", _one_line(e))
      if problem is not None:
        log.warning("checkpoint step %d is damaged (%s); trying an older step",
                    step, problem.reason)
        damaged.append(problem)
        continue
      if move_damaged:
        for d in damaged:
          dest = self._move_aside(d)
          log.warning("skipped checkpoint step %d (%s); moved it to %s", d.step, d.reason, dest)
      if damaged:
        self.manager.reload()
      return state, step, damaged
    if damaged:
      raise NoIntactCheckpointError(
          f"no intact checkpoint in {self.directory}: "
          + "; ".join(f"step {d.step}: {d.reason}" for d in damaged)
          + " (nothing was moved or deleted; move the damaged steps away to start afresh)")
    raise FileNotFoundError(f"{self.directory} holds no checkpoint")

  def _move_aside(self, d: Damaged) -> pathlib.Path:
    folder = self.directory / "damaged"
    folder.mkdir(exist_ok=True)
    dest, n = folder / f"{d.step}-{d.slug}", 1
    while dest.exists():
      n += 1
      dest = folder / f"{d.step}-{d.slug}-{n}"
    shutil.move(self.directory / str(d.step), dest)
    return dest

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
