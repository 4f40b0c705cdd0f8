"""Frozen parameters of a train step: a distillation teacher (genjax.train.distill).

`teacher_params(config)`: the teacher a student run's config names (distill.teacher,
distill.teacher_step), read by the DiffusionTrainer (genjax.train.loop) when it builds.
`WithFrozen`: a jitted `step(state, batch, frozen)` called as `step(state, batch)`. The loop,
`runtime.prepare_step` and `distributed.CompiledTogether` call, trace and lower the train
step with (state, batch); the trainer's make_step_fn binds the teacher here. It stays an
argument of the compiled program (sharded like the state's params, never donated, never
embedded as constants), so one program serves every call and the teacher is read from
device memory, not the binary.
"""

import pathlib

from genjax.train import checkpoint


def is_student(config) -> bool:
  return config.train.get("objective", "diffusion") == "distill"


def check(config) -> None:
  """A student's config names a teacher checkpoint and its steps: else ValueError (before
  anything is written). `genjax distill` (genjax.train.distill_run) writes such configs."""
  if not is_student(config):
    return
  d = config.get("distill")
  if d is None or not d.teacher or int(d.steps) < 1:
    raise ValueError("train.objective 'distill' needs distill.teacher and distill.steps >= 1: "
                     "make a student with `genjax distill`")
  step_dir = pathlib.Path(d.teacher) / "checkpoints" / str(int(d.teacher_step))
  if not step_dir.is_dir():
    raise FileNotFoundError(f"distill.teacher {d.teacher}: no checkpoint {int(d.teacher_step)} "
                            f"({step_dir} is missing)")


def teacher_params(config):
  """The teacher's EMA params (on one local device) of a student's config, else None."""
  if not is_student(config):
    return None
  d = config.distill
  return checkpoint.restore_subtrees(pathlib.Path(d.teacher) / "checkpoints", ("ema_params",),
                                     step=int(d.teacher_step))["ema_params"]


class WithFrozen:
  """`jitted(state, batch, frozen)` seen as a two-argument jitted function."""

  def __init__(self, jitted, frozen):
    self._jitted, self._frozen = jitted, frozen

  def __call__(self, state, batch):
    return self._jitted(state, batch, self._frozen)

  def trace(self, state, batch):
    return self._jitted.trace(state, batch, self._frozen)

  def lower(self, state, batch):
    return _Lowered(self._jitted.lower(state, batch, self._frozen), self._frozen)


class _Lowered:
  def __init__(self, lowered, frozen):
    self._lowered, self._frozen = lowered, frozen

  def compile(self):
    compiled, frozen = self._lowered.compile(), self._frozen
    return lambda state, batch: compiled(state, batch, frozen)
