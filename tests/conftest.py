"""Strict settings for every test: 4 fake CPU devices, no implicit rank promotion.

A persistent compilation cache is shared by the tests and the subprocesses they
start (the CLI runs of the resume tests), so each program compiles once.

In CI (CI=true) a skip for a missing oneDNN, Chromium / chromedriver, scikit-image or torchvision
is a failure: CI installs them (.ci/run), so such a skip means a broken install step.
"""

import os
import re
import signal
import subprocess
import tempfile
import time

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


# ---- in CI, a missing dependency that CI installs is a failure, not a skip ------------------

# The skip reasons of the tests that need what .ci/run installs; keep in step with them.
CI_INSTALLS = {
    "oneDNN (libdnnl-dev, g++)": re.compile(
        r"conv2d impl .* not available here|oneDNN not available|no g\+\+ on this machine"),
    "Chromium (chromium, chromium-driver)": re.compile(r"/usr/bin/chrom(ium|edriver) not found"),
    "scikit-image (the test extra)": re.compile(r"could not import 'skimage'"),
    "torchvision (the test extra)": re.compile(r"reference implementation is torchvision's"),
}


def in_ci(environ=os.environ) -> bool:
  return environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
  report = yield
  if report.skipped and in_ci() and not hasattr(report, "wasxfail"):
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    for what, pattern in CI_INSTALLS.items():
      if pattern.search(reason):
        report.outcome = "failed"
        report.longrepr = (f"skipped in CI (CI={os.environ['CI']}), which installs {what}: "
                           f"{reason}")
        break
  return report


# ---- children that may hang: a generous bound that says where, never a pass criterion -------

HANG_TIMEOUT_S = 1500   # a hang, not slowness: a tiny run takes < 2 min on 2 idle cores


def child_env(**extra) -> dict:
  """os.environ plus PYTHONFAULTHANDLER=1 and `extra`: a child that can show where it hung
  (SIGABRT makes faulthandler print every thread's Python stack to its stderr)."""
  return dict(os.environ, PYTHONFAULTHANDLER="1", **extra)


def hung(procs, what: str, output=lambda: ""):
  """Fails the test: the children `procs` (one or a list, started with child_env) are taken
  to have hung; those still running dump their stacks (SIGABRT) and end; `output()` is the
  text they wrote (read after the dump)."""
  procs = procs if isinstance(procs, (list, tuple)) else [procs]
  running = [p for p in procs if p.poll() is None]
  for p in running:
    p.send_signal(signal.SIGABRT)
  for p in running:
    try:
      p.wait(timeout=60)
    except subprocess.TimeoutExpired:
      p.kill()
      p.wait()
  pytest.fail(f"{what}: no result after {HANG_TIMEOUT_S} s, taken as a hang; the child's "
              f"stacks (faulthandler) and last output:\n{output()[-6000:]}", pytrace=False)


def finish(proc: subprocess.Popen, what: str, output=None) -> tuple[int, str, str]:
  """(returncode, stdout, stderr) of a child started with child_env, waited for at most
  HANG_TIMEOUT_S; past that, `hung`. Its stdout / stderr are read here when they are pipes;
  `output()` gives the text of a child that writes to a file."""
  try:
    out, err = proc.communicate(timeout=HANG_TIMEOUT_S)
  except subprocess.TimeoutExpired:
    def dumped():
      out, err = proc.communicate()
      return (output() if output else "") + (out or b"").decode(errors="replace") + \
          (err or b"").decode(errors="replace")
    hung(proc, what, dumped)
  decode = lambda b: b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
  return proc.returncode, decode(out), decode(err)


def wait_until(done, procs, what: str, output=lambda: ""):
  """Polls done() while every child in procs runs: a child that exits first fails the test
  (with output()); after HANG_TIMEOUT_S, `hung`."""
  start = time.monotonic()
  while not done():
    for p in procs:
      if p.poll() is not None:
        pytest.fail(f"{what}: a child exited (code {p.returncode}) first:\n{output()[-3000:]}",
                    pytrace=False)
    if time.monotonic() - start > HANG_TIMEOUT_S:
      hung(procs, what, output)
    time.sleep(0.05)


@pytest.fixture(scope="session")
def children():
  """The helpers above for tests that start processes (tests cannot import conftest)."""
  import types
  return types.SimpleNamespace(env=child_env, finish=finish, hung=hung, wait_until=wait_until,
                               timeout_s=HANG_TIMEOUT_S)


def sigkill_and_resume(tmp_path, command, *, kill_after: int, final: int, straight=None,
                       fields=("params", "ema_params", "opt_state", "step"), logged=("loss",)):
  """The one exact-resume harness of the training CLIs (train, train-comic, distill).

  `command(workdir)` (an argv list, a run of `final` steps) runs uninterrupted into
  `straight` (default tmp_path/straight; a folder that already holds a finished run,
  summary.json, is used as it is); again into tmp_path/killed, SIGKILLed once its checkpoint
  step `kill_after` is finished (before step `final`'s), then resumed with the same command.
  Asserts every run that should finish exits 0, the resumed one says "resumed from", the
  state `fields` of both at step `final` are bitwise equal (non-empty; "step" == final), and
  the `logged` metrics of every step 1..final (log_every=1) are equal. Returns (straight,
  killed) for the caller's own checks."""
  import pathlib
  import numpy as np
  from genjax.train import checkpoint, logbook
  tmp_path = pathlib.Path(tmp_path)
  env = child_env(PYTHONUNBUFFERED="1")
  finished = lambda workdir, step: (  # noqa: E731
      workdir / "checkpoints" / str(step) / "_CHECKPOINT_METADATA").exists()
  straight, killed = pathlib.Path(straight or tmp_path / "straight"), tmp_path / "killed"
  if not (straight / "summary.json").is_file():
    code, _, err = finish(subprocess.Popen(command(straight), env=env, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE), "the uninterrupted run")
    assert code == 0, err[-3000:]

  log = tmp_path / "killed.log"
  with open(log, "wb") as f:
    proc = subprocess.Popen(command(killed), env=env, stdout=f, stderr=subprocess.STDOUT)
  # No deadline on the run's speed: only a hang (HANG_TIMEOUT_S) ends the wait.
  wait_until(lambda: finished(killed, kill_after), [proc],
             f"the run to be killed, before checkpoint {kill_after}", log.read_text)
  proc.send_signal(signal.SIGKILL)
  finish(proc, "the SIGKILLed run")
  assert not finished(killed, final)

  code, _, err = finish(subprocess.Popen(command(killed), env=env, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE), "the resumed run")
  assert code == 0, err[-3000:]
  assert "resumed from" in err

  a, b = (checkpoint.restore_subtrees(w / "checkpoints", fields, step=final)
          for w in (straight, killed))
  for name in fields:
    leaves_a, leaves_b = jax.tree.leaves(a[name]), jax.tree.leaves(b[name])
    assert len(leaves_a) == len(leaves_b) > 0, name
    for x, y in zip(leaves_a, leaves_b):
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=name)
  if "step" in fields:
    assert int(a["step"]) == int(b["step"]) == final
  metrics = lambda w: {r["step"]: tuple(r[k] for k in logged)  # noqa: E731
                       for r in logbook.read_records(w / "metrics.jsonl")}
  assert sorted(metrics(straight)) == list(range(1, final + 1))
  assert metrics(straight) == metrics(killed)
  return straight, killed


@pytest.fixture(scope="session")
def sigkill_resume():
  """sigkill_and_resume (above), for tests (which cannot import conftest)."""
  return sigkill_and_resume
