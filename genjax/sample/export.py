"""Export the compiled sampler with jax.export (StableHLO), parameters included.

The artifact is one file: the serialized `jax.export.Exported` of
`f(noise [b, H, W, 3], keys uint32 [b, 2]) -> images [b, H, W, 3]` with the
model's parameters folded in as constants and a symbolic batch size b. It runs
wherever jax runs, without genjax: see `call_exported`.
"""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from jax import export

from genjax import files
from genjax.sample.load import load_run
from genjax.sample.sampler import make_sampler


def export_sampler(workdir, out_path, *, sampler: str = "ddim", steps: int = 50,
                   guidance: float = 1.0, label: int | None = None,
                   platforms=("cpu",)) -> pathlib.Path:
  """Serializes the run's EMA sampler to `out_path` (written atomically); returns the path.

  platforms: lowering targets, e.g. ("cpu", "cuda", "tpu"): one artifact can serve several.
  """
  config, model, spec, params = load_run(workdir)
  h, w = config.data.image_size
  sample = make_sampler(model, spec, image_shape=(h, w), sampler=sampler, steps=steps,
                        guidance=guidance, clip_x0=1.0)
  params = jax.device_get(params)

  def from_noise(noise, raw_keys):
    keys = jax.random.wrap_key_data(raw_keys)
    labels = None if label is None else jnp.full((noise.shape[0],), label, jnp.int32)
    return sample(params, keys, noise, labels=labels)

  b = export.symbolic_shape("b")[0]
  exported = export.export(jax.jit(from_noise), platforms=tuple(platforms))(
      jax.ShapeDtypeStruct((b, h, w, 3), jnp.float32),
      jax.ShapeDtypeStruct((b, 2), jnp.uint32))
  out_path = pathlib.Path(out_path)
  files.write_bytes(out_path, exported.serialize())
  return out_path


def call_exported(path, noise: np.ndarray, keys: np.ndarray) -> np.ndarray:
  """Loads and runs an exported sampler. Needs only jax (no genjax model code).

  noise: float32 [b, H, W, 3] standard normal; keys: uint32 [b, 2] raw keys
  (jax.random.key_data of per-sample keys). Returns float32 [b, H, W, 3] in [-1, 1].
  """
  exported = export.deserialize(bytearray(pathlib.Path(path).read_bytes()))
  return np.asarray(exported.call(jnp.asarray(noise, jnp.float32), jnp.asarray(keys, jnp.uint32)))
