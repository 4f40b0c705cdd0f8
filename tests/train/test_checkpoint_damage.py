"""A damaged latest checkpoint: the run resumes from the newest intact step, says which step it
skipped and why, and moves (never deletes) the damaged one to checkpoints/damaged/."""

import logging
import shutil

import jax
import numpy as np
import pytest

from genjax import cli, configs, data
from genjax.train import checkpoint, loop, sharding

# Orbax leaves the read coroutines of a step that failed to read un-awaited, and Python
# reports each one when it is collected: noise of the damage these tests make on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def _truncate_largest_array_file(step_dir):
  files = [p for p in (step_dir / "state").rglob("*") if p.is_file() and p.parent.name == "d"]
  victim = max(files, key=lambda p: p.stat().st_size)
  victim.write_bytes(victim.read_bytes()[:victim.stat().st_size // 2])


DAMAGE = {
    "truncated": (_truncate_largest_array_file, "unreadable", "OUT_OF_RANGE"),
    "no_metadata": (lambda d: (d / "state" / "_METADATA").unlink(), "metadata-missing",
                    "state/_METADATA is missing"),
    "no_state": (lambda d: shutil.rmtree(d / "state"), "state-missing", "state/ is missing"),
    "no_data": (lambda d: shutil.rmtree(d / "data"), "data-missing", "data/ is missing"),
}


@pytest.fixture(scope="module")
def restore_target(run_overrides):
  config = configs.load("tiny", run_overrides)
  mesh = sharding.make_mesh(config.mesh)
  *_, create = loop.build(config)
  abstract = jax.eval_shape(create, jax.random.PRNGKey(0))
  shardings = sharding.state_shardings(abstract, mesh)
  target = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                        abstract, shardings)
  return config, target


def _restore(workdir, config, target):
  ckpt = checkpoint.Checkpointer(workdir / "checkpoints", every=2, keep=5)
  try:
    loader = data.make_loader(config.data, global_batch_size=config.train.batch_size,
                              seed=config.seed, info=data.dataset_info(config.data))
    state, step, damaged = ckpt.restore_intact(target, iter(loader))
    return int(state.step), step, damaged, ckpt.latest_step()
  finally:
    ckpt.close()


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_damaged_latest_step_is_skipped_and_moved_aside(run_copy, restore_target, caplog, kind):
  config, target = restore_target
  damage, slug, reason = DAMAGE[kind]
  damage(run_copy / "checkpoints" / "4")
  with caplog.at_level(logging.WARNING, logger="genjax.train"):
    state_step, step, damaged, latest = _restore(run_copy, config, target)
  assert state_step == step == 2 and latest == 2
  assert [(d.step, d.slug) for d in damaged] == [(4, slug)]
  moved = run_copy / "checkpoints" / "damaged" / f"4-{slug}"
  assert moved.is_dir() and not (run_copy / "checkpoints" / "4").exists()
  said = [r.getMessage() for r in caplog.records if "moved it to" in r.getMessage()]
  assert len(said) == 1 and "step 4" in said[0] and reason in said[0] and str(moved) in said[0]
  assert "\n" not in said[0]


def test_cli_resumes_from_the_intact_step(run_copy, run_overrides, capsys):
  _truncate_largest_array_file(run_copy / "checkpoints" / "4")
  # num_steps=2: resumed at step 2 there is nothing left to train (no train step compiles here;
  # test_resume.py shows that a resumed run trains on exactly).
  code = cli.main(["train", "--config=tiny", f"--workdir={run_copy}",
                   *[f"--config.{o}" for o in run_overrides], "--config.train.num_steps=2"])
  out = capsys.readouterr()
  assert code == 0, out.err
  assert "steps 2 -> 2" in out.out
  assert (run_copy / "checkpoints" / "damaged" / "4-unreadable").is_dir()
  assert not (run_copy / "checkpoints" / "4").exists()


def test_no_intact_step_is_one_line_and_moves_nothing(run_copy, run_overrides, capsys):
  _truncate_largest_array_file(run_copy / "checkpoints" / "4")
  (run_copy / "checkpoints" / "2" / "state" / "_METADATA").unlink()
  code = cli.main(["train", "--config=tiny", f"--workdir={run_copy}",
                   *[f"--config.{o}" for o in run_overrides]])
  err = capsys.readouterr().err
  assert code != 0 and "Traceback" not in err
  line = [x for x in err.splitlines() if x.startswith("genjax: error:")]
  assert len(line) == 1 and "no intact checkpoint" in line[0]
  assert "step 4: " in line[0] and "step 2: state/_METADATA is missing" in line[0]
  assert (run_copy / "checkpoints" / "4").is_dir() and (run_copy / "checkpoints" / "2").is_dir()
  assert not (run_copy / "checkpoints" / "damaged").exists()


def _truncate_every_array_file(step_dir):
  # A read of a few fields may not touch the largest file: every file then.
  for p in (step_dir / "state").rglob("*"):
    if p.is_file() and p.parent.name == "d":
      p.write_bytes(p.read_bytes()[:p.stat().st_size // 2])


@pytest.mark.parametrize("kind", ["truncated", "no_metadata"])
def test_a_read_only_restore_takes_the_newest_intact_step(run_copy, caplog, kind):
  """What `genjax sample`, `genjax eval` and a distillation teacher read (restore_subtrees):
  the newest step that reads back whole, saying which step it skipped and why; read-only,
  so the damaged step stays where it is."""
  damage, _, reason = DAMAGE[kind]
  damage = _truncate_every_array_file if kind == "truncated" else damage
  checkpoints = run_copy / "checkpoints"
  older = checkpoint.restore_subtrees(checkpoints, ("params", "step"), step=2)
  damage(checkpoints / "4")
  with caplog.at_level(logging.WARNING, logger="genjax.train"):
    got = checkpoint.restore_subtrees(checkpoints, ("params", "step"))
  assert int(got["step"]) == 2
  for a, b in zip(jax.tree.leaves(got["params"]), jax.tree.leaves(older["params"]), strict=True):
    np.testing.assert_array_equal(a, b)
  said = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
  assert len(said) == 1 and "step 4" in said[0] and reason in said[0]
  assert (checkpoints / "4").is_dir() and not (checkpoints / "damaged").exists()


def test_a_read_only_restore_without_an_intact_step_names_each(run_copy):
  checkpoints = run_copy / "checkpoints"
  # A field the state lacks is not damage: no older step is tried.
  with pytest.raises(checkpoint.FieldMissingError, match="step 4 of .* has no no_such_field"):
    checkpoint.restore_subtrees(checkpoints, ("no_such_field",))
  _truncate_every_array_file(checkpoints / "4")
  (checkpoints / "2" / "state" / "_METADATA").unlink()
  with pytest.raises(checkpoint.NoIntactCheckpointError,
                     match=r"step 4: .*OUT_OF_RANGE.*; step 2: state/_METADATA is missing"):
    checkpoint.restore_subtrees(checkpoints, ("params",))
  assert (checkpoints / "4").is_dir() and (checkpoints / "2").is_dir()
