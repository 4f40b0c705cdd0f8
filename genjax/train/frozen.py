"""A jitted `step(state, batch, frozen)` called as `step(state, batch)`.

The loop, `runtime.prepare_step` and `distributed.CompiledTogether` call, trace and lower the
train step with (state, batch); a run that trains against frozen parameters (a distillation
teacher, genjax.train.distill) binds them here. They stay an argument of the compiled
program (sharded like the state's params, never donated, never embedded as constants), so
one program serves every call and the teacher is read from device memory, not the binary.
"""


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
