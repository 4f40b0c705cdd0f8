"""Strict settings for every test: 4 fake CPU devices, no implicit rank promotion.

A persistent compilation cache is shared by the tests and the subprocesses they
start (the CLI runs of the resume tests), so each program compiles once.
"""

import os
import tempfile

# Must be set before jax initializes its backends.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
from genjax.kernels import host_memory, xla_flags  # noqa: E402  (imports jax, starts no backend)

xla_flags.apply()  # the tests run with the flags and malloc settings the `genjax` command sets
host_memory.apply()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), f"genjax-test-jax-cache-{os.getuid()}"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
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


TWO_STEPS, TWO_EVERY = 4, 2


@pytest.fixture(scope="session")
def run_overrides(tiny_overrides):
  """The overrides of the shared run (resume it with these and the config is unchanged)."""
  return list(tiny_overrides) + [f"train.num_steps={TWO_STEPS}",
                                 f"train.checkpoint_every={TWO_EVERY}", "train.keep_checkpoints=5"]


@pytest.fixture(scope="session")
def two_checkpoint_run(tmp_path_factory, run_overrides):
  """A run folder with two checkpoints (steps 2 and 4) of a state of random numbers of the
  model's shapes (nothing of the model is compiled), for tests of what is restored and what
  the folder says, not of training. Tests that change it copy it first (`run_copy`)."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  from genjax import configs, data
  from genjax.train import checkpoint, loop, run_config, sharding
  config = configs.load("tiny", run_overrides)
  workdir = tmp_path_factory.mktemp("two_checkpoints")
  mesh = sharding.make_mesh(config.mesh)
  *_, create = loop.build(config)
  key = jax.random.PRNGKey(config.seed)
  abstract = jax.eval_shape(create, key)
  shardings = sharding.state_shardings(abstract, mesh)
  rng = np.random.default_rng(0)  # incompressible values: a truncated file cannot still decode

  def leaf(a, s):
    value = (rng.standard_normal(a.shape) if jnp.issubdtype(a.dtype, jnp.floating)
             else np.zeros(a.shape))
    return jax.device_put(value.astype(a.dtype), s)
  state = jax.tree.map(leaf, abstract, shardings)
  loader = data.make_loader(config.data, global_batch_size=config.train.batch_size,
                            seed=config.seed, info=data.dataset_info(config.data))
  it = iter(loader)
  ckpt = checkpoint.Checkpointer(workdir / "checkpoints", every=TWO_EVERY, keep=5)
  for step in range(1, TWO_STEPS + 1):
    next(it)
    if step % TWO_EVERY == 0:
      ckpt.save(step, state.replace(step=jnp.asarray(step, state.step.dtype)), it, force=True)
      ckpt.wait()
  ckpt.close()
  run_config.write(workdir, config)
  return workdir


@pytest.fixture
def run_copy(two_checkpoint_run, tmp_path):
  """A private copy of the two-checkpoint run folder."""
  import shutil
  dest = tmp_path / "run"
  shutil.copytree(two_checkpoint_run, dest)
  return dest
