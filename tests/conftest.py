"""Strict settings for every test: 4 fake CPU devices, no implicit rank promotion.

A persistent compilation cache is shared by the tests and the subprocesses they
start (the CLI runs of the resume tests), so each program compiles once.
"""

import os
import tempfile

# Must be set before jax initializes its backends.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The tests' own compilation cache folder (genjax.kernels.compile_cache reads it, and so do
# the `genjax` subprocesses the tests start), never the user's ~/.cache/genjax/jax.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), f"genjax-test-jax-cache-{os.getuid()}"))
from genjax.kernels import process_settings  # noqa: E402  (imports jax, starts no backend)

# The tests run with the settings the `genjax` command applies: XLA:CPU flags and malloc
# tuning (CPU backends only) and the persistent compilation cache.
process_settings.apply()
# The conv autotune table and the built oneDNN glue of the tests: never the user's ~/.cache.
os.environ.setdefault("GENJAX_AUTOTUNE_CACHE", os.path.join(
    tempfile.gettempdir(), f"genjax-test-conv-autotune-{os.getuid()}.json"))
os.environ.setdefault("GENJAX_KERNEL_CACHE", os.path.join(
    tempfile.gettempdir(), f"genjax-test-kernels-{os.getuid()}"))

import jax  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")

import pytest  # noqa: E402

# The tiny config made smaller still (8x16 panoramas, width 16): the train, sample and
# app tests all use it, so its programs compile once (and hit the persistent cache).
TINY = (
    "data.image_size=(8, 16)",
    "data.num_examples=512",
    "model.base_channels=16",
    "model.channel_mult=(1, 2)",
    "model.attn_resolutions=(4,)",
    "model.num_heads=1",
    "train.batch_size=8",
    "train.warmup_steps=2",
    "train.log_every=1",
    "train.sample_every=1000",
    "train.num_sample_images=4",
    "train.sample_steps=4",
)


@pytest.fixture(scope="session")
def tiny_overrides():
  return list(TINY)


def train_once(tmp_path_factory, name: str, config):
  """Trains `config` into a run folder shared by all xdist workers of this session: the
  first worker trains (under a file lock), the others wait and reuse its run."""
  import fcntl
  from genjax.train import loop
  root = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):
    root = root.parent  # popen-gwN's parent: one folder per session, shared by the workers
  workdir = root / f"shared_{name}"
  with open(root / f"shared_{name}.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not (workdir / "summary.json").is_file():
      loop.train(config, workdir, progress=False)
  return workdir


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
  """A run folder with a tiny model trained for 300 steps on the procedural panoramas."""
  from genjax import configs
  config = configs.load("tiny", list(TINY) + ["train.num_steps=300", "train.batch_size=16",
                                              "train.checkpoint_every=300", "train.log_every=50"])
  return train_once(tmp_path_factory, "trained_run", config)


@pytest.fixture(scope="session")
def shared_training(tmp_path_factory):
  """`fn(name, config) -> run folder`: train_once for the tests' own session fixtures."""
  return lambda name, config: train_once(tmp_path_factory, name, config)
