"""`genjax distill --workdir RUN --steps 4 --out RUN_4step`: a few-step student of a run.

The student is an ordinary run folder trained by `genjax.train.loop.train` (checkpoints,
exact resume, mesh, metrics, progress bar) with train.objective = "distill" (the loss and
why progressive distillation: genjax.train.distill). Its config.json is the teacher's with

  train.objective "distill", distill.teacher (the teacher's folder, absolute),
  distill.teacher_step (the teacher checkpoint distilled), distill.steps (N),
  distill.sampler "ddim", distill.teacher_substeps (K), train.num_steps,
  train.sample_steps = train.eval_sample_steps = N (previews and evaluation at N steps),
  train.init_params = the teacher's checkpoint folder (the student starts as the teacher's
  EMA params, genjax.train.state.start_from),

so `genjax sample` / `load_sampler` / `export` on it default to N DDIM steps (see
genjax.sample.load.sampling_defaults). The rest is the loop's: its DiffusionTrainer reads
the teacher the config names and binds it to the train step as frozen params
(genjax.train.frozen). Running the command again resumes it (the teacher
checkpoint is the recorded step, whatever the teacher folder holds now); a student is a
valid teacher, so `--steps 8` then `--steps 4` on the result is the paper's halving.
"""

import logging
import pathlib

from genjax import configs
from genjax.train import distill, loop, run_config

log = logging.getLogger("genjax.train")

DEFAULT_TRAIN_STEPS = 1000


def _checked_steps(steps, what: str) -> int:
  if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
    raise ValueError(f"{what} must be a whole number >= 1, got {steps!r}")
  return steps


def _teacher_step(teacher: pathlib.Path) -> int:
  steps = [int(p.name) for p in (teacher / "checkpoints").iterdir() if p.name.isdigit()] if (
      teacher / "checkpoints").is_dir() else []
  if not steps:
    raise FileNotFoundError(f"--workdir {teacher} holds no checkpoint to distil "
                            f"({teacher / 'checkpoints'} is missing or empty)")
  return max(steps)


def student_config(base, teacher: pathlib.Path, teacher_step: int, *, steps: int,
                   train_steps: int, overrides=()):
  """The student's config (module docstring): `base` (the teacher's config; on resume the
  student's own) marked as a student of `teacher` and set up for N steps."""
  config = configs.from_json(base.to_json_best_effort())
  teacher = teacher.absolute()
  configs.apply_overrides(config, [
      ("train.objective", "distill"), ("distill.teacher", str(teacher)),
      ("train.init_params", str(teacher / "checkpoints" / str(teacher_step))),
      ("distill.teacher_step", teacher_step), ("distill.steps", steps),
      ("distill.sampler", distill.SAMPLER), ("train.num_steps", train_steps),
      ("train.sample_steps", steps), ("train.eval_sample_steps", steps)])
  configs.apply_overrides(config, overrides)
  _checked_steps(int(config.distill.teacher_substeps), "distill.teacher_substeps")
  return config


def distill_run(teacher, out, *, steps: int, train_steps: int | None = None, overrides=(),
                progress: bool = True, accept_config_change: bool = False) -> loop.RunSummary:
  """Distils the run folder `teacher` into an N-step student in `out` (new or resumed).

  train_steps: the student's train.num_steps (default: the recorded one on resume, else
  DEFAULT_TRAIN_STEPS). overrides: "a.b=value" strings applied to the student's config.
  Bad input (not a run, no checkpoint, steps < 1, out == teacher, a student of another
  teacher in out) raises ValueError / FileNotFoundError / ConfigError before any work.
  """
  _checked_steps(steps, "--steps")
  if train_steps is not None:
    _checked_steps(train_steps, "--train-steps")
  teacher, out = pathlib.Path(teacher), pathlib.Path(out)
  if not (teacher / run_config.CONFIG_FILE).is_file():
    raise FileNotFoundError(f"--workdir {teacher} is not a genjax run folder: no config.json")
  if out.absolute().resolve() == teacher.absolute().resolve():
    raise ValueError(f"--out {out} is the teacher's folder: give the student a folder of its own")
  teacher_config = _read_config(teacher)
  objective = teacher_config.train.get("objective", "diffusion")
  if objective not in ("diffusion", "distill"):
    raise ValueError(f"--workdir {teacher} trains the {objective!r} objective: only a diffusion "
                     f"model (or a student) can be distilled")

  saved = run_config.read_saved(out)
  if saved is not None and saved.get("train.objective") == "distill":  # resume
    recorded = pathlib.Path(saved["distill.teacher"])
    if recorded.resolve() != teacher.absolute().resolve():
      raise ValueError(f"--out {out} is a student of {recorded}, not of --workdir {teacher}")
    teacher_step = int(saved["distill.teacher_step"])
    train_steps = train_steps or int(saved["train.num_steps"])
    # The student's own config, not the teacher's of today (which may have changed since).
    base, teacher_path = _read_config(out), recorded
  elif saved is not None:
    raise ValueError(f"--out {out} is a run folder that is not a student: choose another --out")
  else:
    teacher_step = _teacher_step(teacher)
    train_steps = train_steps or DEFAULT_TRAIN_STEPS
    base, teacher_path = teacher_config, teacher
  if not (teacher / "checkpoints" / str(teacher_step)).is_dir():
    raise FileNotFoundError(f"--workdir {teacher} no longer holds checkpoint {teacher_step}, "
                            f"the teacher of the student in {out}")
  config = student_config(base, teacher_path, teacher_step, steps=steps,
                          train_steps=train_steps, overrides=overrides)
  log.info("distilling %s (step %d) into a %d-step student in %s", teacher, teacher_step, steps,
           out)
  return loop.train(config, out, progress=progress, accept_config_change=accept_config_change)


def _read_config(workdir: pathlib.Path):
  path = workdir / run_config.CONFIG_FILE
  return configs.from_json(path.read_text(), source=str(path))
