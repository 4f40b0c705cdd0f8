"""`genjax tune`: fills the CPU conv autotune table for a config's train step, ahead of a run.

Measuring is an explicit step (or the first thing `genjax train` does when the table lacks
an entry its step needs), never part of tracing: see genjax.kernels.autotune.
"""

import jax

from genjax import data
from genjax.kernels import autotune, conv, onednn_build
from genjax.train import loop, runtime, sharding


def tune_config(config) -> str:
  """Traces the config's train step, measures the convolutions missing from the table.
  Returns a one-paragraph report: the table, what was measured and what each shape uses."""
  if jax.default_backend() != "cpu":
    return (f"nothing to tune: the backend is {jax.default_backend()}, where conv2d uses "
            f"XLA's convolution")
  forced = conv.forced_impl(config.kernels.conv_impl)
  if forced is not None:
    return f"nothing to tune: the convolution implementation is set to {forced!r}"
  mesh = sharding.make_mesh(config.mesh)
  *_, create = loop.build(config)
  abstract = jax.eval_shape(create, jax.random.PRNGKey(config.seed))
  shardings = sharding.state_shardings(abstract, mesh)
  state = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                       abstract, shardings)
  batch = next(iter(data.make_loader(config.data, global_batch_size=config.train.batch_size,
                                     seed=config.seed)))
  batch = loop.global_batch(batch, mesh)
  _, measured = runtime.tune_step(lambda: loop.make_step_fn(config, mesh, shardings), state,
                                 batch)
  used = autotune.used_choices()
  lines = [f"autotune table {autotune.cache_path()}: measured {len(measured)} new shapes; "
           f"the train step's {len(used)} tuned convolutions use:"]
  lines += [f"  {k}: {v}" for k, v in sorted(used.items())]
  reason = onednn_build.status()
  if reason:
    lines.append(f"oneDNN: {reason}")
  return "\n".join(lines)
