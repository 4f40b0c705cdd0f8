"""Export the compiled sampler with jax.export (StableHLO), parameters included.

The artifact is one file: the serialized `jax.export.Exported` of
`f(noise [b, H, W, 3], keys uint32 [b, 2]) -> images [b, H, W, 3]` with the
model's parameters folded in as constants and a symbolic batch size b. It runs
wherever jax runs, without genjax (`jax.export.deserialize(bytes).call(noise, keys)`).

Beside it, `<artifact>.sha256` (JSON: file name, size in bytes, SHA-256) lets `load_exported`
and `call_exported` refuse a truncated, emptied or bit-flipped artifact: jax.export would
otherwise fail with struct.error / IndexError, or run and return NaNs or silently other
images. Both files are written atomically (genjax.files).
"""

import hashlib
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from jax import export

from genjax import files
from genjax.sample.load import load_run, sampling_defaults
from genjax.sample.sampler import make_sampler


def export_sampler(workdir, out_path, *, sampler: str | None = None, steps: int | None = None,
                   guidance: float = 1.0, label: int | None = None,
                   platforms=("cpu",), sampler_options: dict | None = None) -> pathlib.Path:
  """Serializes the run's EMA sampler to `out_path` and its checksum to `out_path`.sha256
  (both written atomically); returns the artifact's path.

  platforms: lowering targets, e.g. ("cpu", "cuda", "tpu"): one artifact can serve several.
  sampler, steps: default ddim at 50 steps, a distilled student's own (sampling_defaults);
  sampler_options: the sampler's keyword options (e.g. {"order": 3} for unipc).
  """
  out_path = files.check_can_create(out_path, "-o")
  if out_path.is_dir():
    raise ValueError(f"-o {out_path} is a folder; name the artifact file, e.g. "
                     f"{out_path / 'sampler.jaxexport'}")
  config, model, spec, params = load_run(workdir)
  default_sampler, default_steps = sampling_defaults(config, sampler="ddim", steps=50)
  sampler = sampler or default_sampler
  steps = default_steps if steps is None else steps
  h, w = config.data.image_size
  sample = make_sampler(model, spec, image_shape=(h, w), sampler=sampler, steps=steps,
                        guidance=guidance, clip_x0=1.0, **(sampler_options or {}))
  params = jax.device_get(params)

  def from_noise(noise, raw_keys):
    keys = jax.random.wrap_key_data(raw_keys)
    labels = None if label is None else jnp.full((noise.shape[0],), label, jnp.int32)
    return sample(params, keys, noise, labels=labels)

  b = export.symbolic_shape("b")[0]
  exported = export.export(jax.jit(from_noise), platforms=tuple(platforms))(
      jax.ShapeDtypeStruct((b, h, w, 3), jnp.float32),
      jax.ShapeDtypeStruct((b, 2), jnp.uint32))
  data = bytes(exported.serialize())
  # The checksum first: a crash between the two writes leaves a pair that fails to verify
  # (refused with a clear message), never an unverifiable artifact that loads.
  files.write_json(checksum_path(out_path), _checksum(out_path, data))
  files.write_bytes(out_path, data)
  return out_path


class ExportedArtifactError(ValueError):
  """An exported sampler that is empty, truncated, changed, or not a jax.export artifact."""


def checksum_path(path) -> pathlib.Path:
  """The checksum file beside an artifact: sampler.jaxexport -> sampler.jaxexport.sha256."""
  path = pathlib.Path(path)
  return path.with_name(path.name + ".sha256")


def _checksum(path: pathlib.Path, data: bytes) -> dict:
  return {"file": path.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def load_exported(path, *, verify: bool = True) -> export.Exported:
  """Reads an exported sampler, checks it against its .sha256 file and deserializes it.

  verify=False skips the checksum (an artifact from elsewhere, without one). Raises
  ExportedArtifactError (a ValueError) naming the file for an empty, truncated, changed or
  unreadable artifact, or a missing or malformed checksum file; FileNotFoundError when the
  artifact itself is missing.
  """
  path = pathlib.Path(path)
  data = path.read_bytes()
  if not data:
    raise ExportedArtifactError(f"{path} is empty (0 bytes): export it again")
  if verify:
    sums = checksum_path(path)
    try:
      expected = json.loads(sums.read_text())
      size, digest = int(expected["bytes"]), str(expected["sha256"])
    except FileNotFoundError:
      raise ExportedArtifactError(
          f"{path} has no checksum file {sums.name}: export it again with genjax export, or "
          f"load it with verify=False if you trust it") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
      raise ExportedArtifactError(f"{sums} is not a readable checksum file ({e})") from None
    if len(data) != size:
      raise ExportedArtifactError(f"{path} is {len(data)} bytes, {sums.name} says {size}: "
                                  f"the file is truncated or changed; export it again")
    if hashlib.sha256(data).hexdigest() != digest:
      raise ExportedArtifactError(f"{path} does not match its SHA-256 in {sums.name}: the file "
                                  f"is corrupted or changed; export it again")
  try:
    return export.deserialize(bytearray(data))
  except Exception as e:  # noqa: BLE001 - flatbuffers raises struct.error, IndexError, ...
    raise ExportedArtifactError(f"{path} is not a jax.export artifact "
                                f"({type(e).__name__}: {e})") from None


def call_exported(path, noise: np.ndarray, keys: np.ndarray, *,
                  verify: bool = True) -> np.ndarray:
  """Loads (load_exported: checksum verified) and runs an exported sampler. Needs only jax
  (no genjax model code).

  noise: float32 [b, H, W, 3] standard normal; keys: uint32 [b, 2] raw keys
  (jax.random.key_data of per-sample keys). Returns float32 [b, H, W, 3] in [-1, 1].
  """
  exported = load_exported(path, verify=verify)
  noise, keys = np.asarray(noise, np.float32), np.asarray(keys, np.uint32)
  want = exported.in_avals[0].shape
  if (noise.ndim != 4 or tuple(noise.shape[1:]) != tuple(want[1:]) or keys.ndim != 2
      or keys.shape != (noise.shape[0], 2)):
    raise ValueError(f"{path} takes noise [b, {', '.join(map(str, want[1:]))}] and keys "
                     f"[b, 2]; got noise {list(noise.shape)} and keys {list(keys.shape)}")
  return np.asarray(exported.call(jnp.asarray(noise), jnp.asarray(keys)))
