"""`genjax distill`: the progressive-distillation target in closed form, exact resume of a
student run after SIGKILL (tests/conftest.py sigkill_and_resume), and a student folder that
says whose student it is, samples at its own steps by default, loads and exports, and a
2-device mesh that matches 1 device."""

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import diffusion
from genjax.diffusion import samplers
from genjax.train import distill

STEPS, EVERY, STUDENT_STEPS = 12, 4, 4
SPEC = diffusion.DiffusionSpec.create("cosine", "v")


def _gaussian_denoiser(x_t, t):
  """The exact x0_hat of data ~ N(0, 1) (per pixel): alpha x_t / (alpha^2 + sigma^2)."""
  a, s = SPEC.schedule.alpha_sigma(t)
  a, s = a[:, None], s[:, None]
  return a * x_t / (a * a + s * s)


def test_x0_target_makes_one_ddim_step_land_on_the_teacher():
  rng = np.random.default_rng(0)
  x_t, x_s = (jnp.asarray(rng.standard_normal((5, 7)), jnp.float32) for _ in range(2))
  t, s = jnp.asarray([0.9, 0.7, 0.5, 0.3, 0.2]), jnp.asarray([0.6, 0.4, 0.25, 0.0, 0.1])
  x0 = distill.x0_target(x_t, x_s, t, s, SPEC)
  a_t, s_t = (np.asarray(v, np.float64)[:, None] for v in SPEC.schedule.alpha_sigma(t))
  a_s, s_s = (np.asarray(v, np.float64)[:, None] for v in SPEC.schedule.alpha_sigma(s))
  x_t64, x064 = np.asarray(x_t, np.float64), np.asarray(x0, np.float64)
  stepped = a_s * x064 + s_s * (x_t64 - a_t * x064) / s_t  # DDIM (eta 0) in float64
  np.testing.assert_allclose(stepped, np.asarray(x_s, np.float64), atol=2e-5)


def test_teacher_substeps_are_the_ddim_sampler_on_the_subdivided_grid():
  x_t = jnp.asarray(np.random.default_rng(1).standard_normal((3, 6)), jnp.float32)
  t0, t1, k = 0.8, 0.2, 3
  got = distill.teacher_ddim(_gaussian_denoiser, x_t, jnp.full((3,), t0), jnp.full((3,), t1),
                             SPEC, k)
  grid = jnp.asarray(np.linspace(t0, t1, k + 1), jnp.float32)
  ctx = samplers.Context(_gaussian_denoiser, SPEC.schedule, jnp.zeros((3, 2), jnp.uint32), k)
  want = samplers.integrate("ddim", ctx, x_t, grid)
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)


def _distill_cmd(teacher, out):
  return [sys.executable, "-m", "genjax.cli", "distill", f"--workdir={teacher}",
          f"--steps={STUDENT_STEPS}", f"--out={out}", f"--train-steps={STEPS}",
          f"--config.train.checkpoint_every={EVERY}", "--config.train.keep_checkpoints=5",
          "--config.train.log_every=1", "--config.distill.teacher_substeps=2"]


@pytest.fixture(scope="module")
def student(trained_run, tmp_path_factory, children):
  """A 4-step student of the session's tiny run, distilled for 12 steps through the CLI."""
  import subprocess
  out = tmp_path_factory.mktemp("distill") / "student"
  code, _, err = children.finish(subprocess.Popen(
      _distill_cmd(trained_run, out), env=children.env(PYTHONUNBUFFERED="1"),
      stdout=subprocess.PIPE, stderr=subprocess.PIPE), "genjax distill")
  assert code == 0, err[-3000:]
  return out


@pytest.mark.slow
def test_distill_sigkill_then_resume_is_bitwise_exact(student, trained_run, tmp_path,
                                                      sigkill_resume):
  sigkill_resume(tmp_path, lambda out: _distill_cmd(trained_run, out), kill_after=2 * EVERY,
                 final=STEPS, straight=student)


def test_student_folder_names_its_teacher_loads_and_exports(student, trained_run, tmp_path):
  from genjax.sample import export, load, make_sampler
  saved = json.loads((student / "config.json").read_text())
  assert saved["train"]["objective"] == "distill"
  assert saved["distill"]["teacher"] == str(trained_run.absolute())
  assert saved["distill"]["teacher_step"] == 300
  # It started as the teacher: train.init_params, the checkpoint the frozen teacher comes from.
  assert saved["train"]["init_params"] == str(trained_run.absolute() / "checkpoints" / "300")
  assert (saved["distill"]["steps"], saved["distill"]["sampler"]) == (STUDENT_STEPS, "ddim")

  fn, params = load.load_sampler(student)
  config, model, spec, _ = load.load_run(student)
  noise = jax.random.normal(jax.random.PRNGKey(3), (2, *config.data.image_size, 3))
  keys = jax.random.split(jax.random.PRNGKey(4), 2)
  got = np.asarray(jax.jit(fn)(params, keys, noise))
  # The default is the student's own sampler: deterministic DDIM at its steps.
  ddim4 = make_sampler(model, spec, image_shape=tuple(config.data.image_size), sampler="ddim",
                       steps=STUDENT_STEPS, clip_x0=1.0)
  np.testing.assert_array_equal(got, np.asarray(jax.jit(ddim4)(params, keys, noise)))
  teacher_params = load.load_run(trained_run)[3]
  assert not np.array_equal(got, np.asarray(jax.jit(ddim4)(teacher_params, keys, noise)))

  path = export.export_sampler(student, tmp_path / "student.jaxexport")
  out = export.call_exported(path, np.asarray(noise), np.asarray(keys))
  np.testing.assert_allclose(np.asarray(out), got, atol=1e-5)


def _distill_steps_on(trainer, devices, host_batch, steps: int):
  """(state on the host, metrics of each step) of `steps` distillation steps on a mesh over
  `devices`, from the same initial state and batch whatever the mesh."""
  from genjax.train import loop, sharding
  mesh = sharding.make_mesh(trainer.config.mesh, devices=devices)
  key = jax.random.PRNGKey(0)
  shardings = sharding.state_shardings(jax.eval_shape(trainer.create_state, key), mesh)
  state = jax.jit(trainer.create_state, out_shardings=shardings)(key)
  step_fn = trainer.make_step_fn(mesh, shardings)
  batch = loop.global_batch(host_batch, mesh)
  assert len(batch["image"].sharding.device_set) == len(devices)   # the batch is split
  metrics = []
  for _ in range(steps):
    state, m = step_fn(state, batch)
    metrics.append(jax.device_get(m))
  return jax.device_get(state), metrics


@pytest.mark.slow  # the distillation step (teacher substeps + student) compiled for two meshes
def test_distill_two_devices_match_one_device(trained_run):
  from genjax import configs
  from genjax.train import distill_run, loop
  teacher_config = configs.from_json((trained_run / "config.json").read_text())
  config = distill_run.student_config(teacher_config, trained_run, 300, steps=STUDENT_STEPS,
                                      train_steps=3,
                                      overrides=[("distill.teacher_substeps", 2),
                                                 ("train.batch_size", 4)])
  trainer = loop.DiffusionTrainer(config)
  trainer.build()
  assert trainer.frozen is not None                # the teacher is bound to the step
  host_batch = next(trainer.data_iterator())
  one, m1 = _distill_steps_on(trainer, jax.devices()[:1], host_batch, 3)
  two, m2 = _distill_steps_on(trainer, jax.devices()[:2], host_batch, 3)
  # The losses and gradients differ only by the order of float sums (rtol 1e-5); Adam divides
  # each gradient by its own magnitude, so a near-zero gradient's rounding can move its
  # parameter by a fraction of a learning-rate step: parameters to 1e-4 (measured: 1 of
  # 4608 elements of a kernel past 1e-5, by 2.5e-5).
  for name in ("params", "ema_params"):
    for x, y in zip(jax.tree.leaves(getattr(one, name)), jax.tree.leaves(getattr(two, name))):
      np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=1e-4, atol=1e-4,
                                 err_msg=name)
  for a, b in zip(m1, m2):
    assert float(a["loss"]) > 0
    for k in a:
      np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-5, err_msg=k)
  # The steps really moved the parameters (not a comparison of two initial states).
  init = jax.device_get(jax.jit(trainer.create_state)(jax.random.PRNGKey(0)))
  assert any(not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(init.params),
                                                      jax.tree.leaves(one.params)))
