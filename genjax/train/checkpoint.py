"""Checkpoints through Orbax's CheckpointManager: the TrainState and, beside it,
the Grain iterator state of every process, so a resumed run continues with
exactly the batch that would have come next (a trainer whose step draws its own
batches from the step's key saves the state alone: `with_data=False`).

Every Orbax read and write of the package goes through this module: run checkpoints
(Checkpointer), read-only restores of a few state fields (restore_subtrees) and single
pytrees such as an exported network (save_tree, restore_tree).

Orbax writes each step into a temporary directory and renames it when complete,
so a crash mid-save never leaves a step that looks finished. A step damaged afterwards
(a truncated or overwritten array file, a deleted `_METADATA`, `state/` or `data/`) is
moved aside to `damaged/<step>-<reason>` (never deleted) and the run resumes from the
newest intact step.
"""

import contextlib
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


class FieldMissingError(KeyError):
  """The checkpoint holds no such state field (e.g. ema_params of a state without an EMA)."""


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


def _missing_part(step_dir: pathlib.Path, *, with_data: bool = True) -> Damaged | None:
  """The named reason when a whole part of a step folder is gone (cheaper than restoring)."""
  step = int(step_dir.name)
  parts = (("state", "state-missing"), ("data", "data-missing"))[:2 if with_data else 1]
  for part, slug in parts:
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


def _manager(directory: pathlib.Path, options, *, state_handler) -> ocp.CheckpointManager:
  """The package's one CheckpointManager: items "state" (the TrainState) and "data" (the
  Grain iterators; every step folder that has it gets its handler, or Orbax warns)."""
  return ocp.CheckpointManager(
      directory, options=options,
      item_handlers={"state": state_handler, "data": grain.checkpoint.CheckpointHandler()})


class Checkpointer:
  """Saves every `every` steps (asynchronously), keeps the last `keep`.

  with_data=False: steps hold the state alone (no iterator is passed to save / restore).
  """

  def __init__(self, directory: str | pathlib.Path, *, every: int, keep: int,
               with_data: bool = True):
    self.directory = pathlib.Path(directory).absolute()
    self.with_data = with_data
    self.manager = _manager(self.directory, ocp.CheckpointManagerOptions(
        save_interval_steps=every, max_to_keep=keep, create=True, cleanup_tmp_directories=True),
        state_handler=ocp.StandardCheckpointHandler())

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state, data_iterator=None, *, force: bool = False) -> bool:
    """Starts an asynchronous save; returns whether one was started."""
    items = {"state": ocp.args.StandardSave(state)}
    if self.with_data:
      items["data"] = grain.checkpoint.CheckpointSave(data_iterator)
    return self.manager.save(step, force=force, args=ocp.args.Composite(**items))

  def restore_intact(self, abstract_state, data_iterator=None, *, move_damaged: bool = True):
    """(state, step, damaged): restores the newest step that reads back whole (see `restore`).

    Each newer damaged step is logged on one line (step and reason) and, when `move_damaged`
    (process 0 of a multi-process run), moved to `damaged/<step>-<reason>` only once an intact
    step has been found: if none is, NoIntactCheckpointError lists them all and nothing moves.
    CheckpointMismatchError (another model) is not damage and propagates at once.
    """
    damaged = []
    for step in sorted(self.manager.all_steps(), reverse=True):
      problem = _missing_part(self.directory / str(step), with_data=self.with_data)
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

  def restore(self, abstract_state, data_iterator=None, step: int | None = None):
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
    items = {"state": ocp.args.StandardRestore(abstract_state)}
    if self.with_data:
      items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
    return self.manager.restore(step, args=ocp.args.Composite(**items))["state"]

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()


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


def _single_device_target(metadata_tree):
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  return jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                      metadata_tree)


def restore_subtrees(directory, names=("ema_params",), *, step: int | None = None) -> dict:
  """{name: tree} of state fields (params, ema_params, opt_state, step, ...) of the run
  checkpoints in `directory` at `step`, restored onto one local device whatever mesh and
  process count the run was trained with; nothing is written, moved or deleted.

  Without `step`, the newest step that reads back whole: each newer damaged step is logged
  on one line (step and reason) and skipped, as a resumed run skips it (`restore_intact`);
  NoIntactCheckpointError names them all when none is intact. A given `step` is read as is.
  """
  directory = pathlib.Path(directory).absolute()
  # The read-only options are given as Orbax would force them (else it warns about each).
  with _quiet_read_only_notice():
    manager = _manager(directory, ocp.CheckpointManagerOptions(
        read_only=True, create=False, save_interval_steps=0),
        state_handler=ocp.PyTreeCheckpointHandler())
  try:
    if step is not None:
      return _restore_fields(manager, step, names)
    damaged = []
    for candidate in sorted(manager.all_steps(), reverse=True):
      problem = _missing_part(directory / str(candidate), with_data=False)
      if problem is None:
        try:
          fields = _restore_fields(manager, candidate, names)
        except (MemoryError, FieldMissingError):  # not damage: another kind of state
          raise
        except Exception as e:  # anything Orbax / TensorStore raise on a bad file
          problem = Damaged(candidate, "unreadable", _one_line(e))
      if problem is None:
        return fields
      log.warning("checkpoint step %d is damaged (%s); trying an older step",
                  candidate, problem.reason)
      damaged.append(problem)
    if damaged:
      raise NoIntactCheckpointError(
          f"no intact checkpoint in {directory}: "
          + "; ".join(f"step {d.step}: {d.reason}" for d in damaged))
    raise FileNotFoundError(f"{directory} holds no checkpoint")
  finally:
    manager.close()


def _restore_fields(manager, step: int, names) -> dict:
  """restore_subtrees' read of one step."""
  metadata = manager.item_metadata(step)["state"]
  metadata = getattr(metadata, "tree", metadata)
  missing = [name for name in names if name not in metadata]
  if missing:
    raise FieldMissingError(f"checkpoint step {step} of {manager.directory} has no "
                            f"{', '.join(missing)}")
  target = {name: _single_device_target(metadata[name]) for name in names}
  restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
      item=target, partial_restore=True,
      restore_args=ocp.checkpoint_utils.construct_restore_args(target))))
  return dict(restored["state"])


def save_tree(path, tree) -> pathlib.Path:
  """Writes one pytree (host arrays) to the folder `path`, replacing it; Orbax writes a
  temporary folder and renames it, so a crash leaves the old tree or the new one."""
  path = pathlib.Path(path).absolute()
  with ocp.StandardCheckpointer() as ckpt:
    ckpt.save(path, jax.device_get(tree), force=True)
    ckpt.wait_until_finished()
  return path


def restore_tree(path, abstract_tree):
  """The pytree saved by save_tree at `path`, of the structure of `abstract_tree`
  (jax.eval_shape output). Raises CheckpointMismatchError naming the folder and why."""
  path = pathlib.Path(path).absolute()
  with ocp.StandardCheckpointer() as ckpt:
    try:
      return ckpt.restore(path, abstract_tree)
    except Exception as e:  # Orbax raises several types for missing or mismatched trees
      raise CheckpointMismatchError(f"{path}: cannot restore ({type(e).__name__}: {e})") \
          from None


def all_finite(tree) -> bool:
  """True when every float leaf is finite (checked on the host, once per save)."""
  return all(bool(np.isfinite(np.asarray(jax.device_get(x))).all())
             for x in jax.tree.leaves(tree) if jax.numpy.issubdtype(x.dtype, np.floating))
