"""A random-weights Inception file in the genjax format, shared by the metrics tests."""

import numpy as np
import pytest


def random_inception_arrays(seed: int = 0) -> dict[str, np.ndarray]:
  """Arrays of the right keys and shapes: He-scaled kernels, BN near the identity."""
  from genjax.metrics import inception
  rng = np.random.default_rng(seed)
  flat = {}
  for key, shape in inception.expected_shapes().items():
    leaf = key.rsplit("/", 1)[1]
    if leaf == "kernel":
      fan_in = int(np.prod(shape[:3]))
      flat[key] = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
    elif leaf == "var":
      flat[key] = rng.uniform(0.5, 1.5, shape)
    elif leaf == "scale":
      flat[key] = rng.uniform(0.8, 1.2, shape)
    else:   # bn bias and mean
      flat[key] = rng.normal(0.0, 0.1, shape)
  return {k: v.astype(np.float32) for k, v in flat.items()}


@pytest.fixture(scope="session")
def inception_arrays():
  return random_inception_arrays()


@pytest.fixture(scope="session")
def inception_weights_file(tmp_path_factory, inception_arrays):
  path = tmp_path_factory.mktemp("inception") / "inception_random.npz"
  np.savez(path, **inception_arrays)
  return path
