"""The exported sampler's checksum: a damaged artifact is refused by name, a good one still
loads with plain jax.export (issue 15.7)."""

import hashlib
import json

import jax
import numpy as np
import pytest
from jax import export as jax_export

from genjax.sample import export, per_sample_keys

B = 2


@pytest.fixture(scope="module")
def artifact(trained_run, tmp_path_factory):
  path = export.export_sampler(trained_run, tmp_path_factory.mktemp("export") / "s.jaxexport",
                               sampler="ddim", steps=3)
  return path, path.read_bytes()


@pytest.fixture(scope="module")
def inputs():
  keys = np.asarray(jax.random.key_data(per_sample_keys(jax.random.PRNGKey(3), 0, B)))
  noise = np.asarray(jax.random.normal(jax.random.PRNGKey(4), (B, 8, 16, 3)))
  return noise, keys


def test_checksum_file_describes_the_artifact_and_plain_jax_still_loads_it(artifact, inputs):
  path, data = artifact
  sums = json.loads(export.checksum_path(path).read_text())
  assert sums == {"file": path.name, "bytes": len(data),
                  "sha256": hashlib.sha256(data).hexdigest()}
  # The README's genjax-free way still works on the same file.
  plain = jax_export.deserialize(bytearray(path.read_bytes())).call(*inputs)
  ours = export.call_exported(path, *inputs)
  np.testing.assert_array_equal(ours, np.asarray(plain))
  assert np.isfinite(ours).all() and ours.min() >= -1 and ours.max() <= 1


def _damaged(artifact, tmp_path, data: bytes):
  path, _ = artifact
  bad = tmp_path / path.name
  bad.write_bytes(data)
  export.checksum_path(bad).write_bytes(export.checksum_path(path).read_bytes())
  return bad


@pytest.mark.parametrize("damage, message", [
    (lambda d: d[:len(d) // 2],
     r"is \d+ bytes, s\.jaxexport\.sha256 says \d+: the file is truncated"),
    (lambda d: b"", r"is empty \(0 bytes\)"),
    (lambda d: d[:-200] + bytes([d[-200] ^ 0x10]) + d[-199:], "does not match its SHA-256"),
    (lambda d: d[:len(d) // 2] + bytes([d[len(d) // 2] ^ 1]) + d[len(d) // 2 + 1:],
     "does not match its SHA-256"),
], ids=["truncated", "empty", "bit-near-end", "bit-in-middle"])
def test_damaged_artifacts_are_refused_by_name(artifact, inputs, tmp_path, damage, message):
  """Before: struct.error / IndexError for a truncated or empty file, and all-NaN or silently
  different images (exit 0) for one flipped bit."""
  bad = _damaged(artifact, tmp_path, damage(artifact[1]))
  with pytest.raises(export.ExportedArtifactError, match=message) as e:
    export.call_exported(bad, *inputs)
  assert str(bad) in str(e.value)


def test_missing_checksum_or_garbage_without_verification(artifact, inputs, tmp_path):
  path, data = artifact
  lone = tmp_path / "lone.jaxexport"
  lone.write_bytes(data)
  with pytest.raises(export.ExportedArtifactError, match="no checksum file lone.jaxexport.sha256"):
    export.call_exported(lone, *inputs)
  np.testing.assert_array_equal(export.call_exported(lone, *inputs, verify=False),
                                export.call_exported(path, *inputs))
  lone.write_bytes(data[:100])
  with pytest.raises(export.ExportedArtifactError, match="is not a jax.export artifact"):
    export.call_exported(lone, *inputs, verify=False)
  with pytest.raises(ValueError, match=r"takes noise \[b, 8, 16, 3\]"):
    export.call_exported(path, inputs[0][:, :4], inputs[1])
