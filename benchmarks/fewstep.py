"""Few-step generation: sample quality against the number of model evaluations (NFE).

    python -m benchmarks fewstep [--config tiny] [--workdir RUN] [--teacher-steps 500]
        [--students 1,2,4] [--distill-steps 200] [--teacher-nfe 8]
        [--solvers ddim,dpm++2m,dpmpp_3m,unipc] [--nfe 1,2,4,5,10,20,50] [--samples 256]
        [--out benchmark_results/fewstep]

The teacher is --workdir, or a run of --config trained here for --teacher-steps steps
(out/teacher). Each student (out/student_<N>) is `genjax distill` of the teacher onto N
DDIM steps (progressive distillation, genjax.train.distill) for --distill-steps steps, its
target --teacher-nfe / N teacher DDIM steps per student step (rounded up): the teacher's
DDIM at about --teacher-nfe steps is what every student is taught. Both folders are reused when the
benchmark runs again (a finished run trains no further).

Every row draws --samples images from the same start noise (seed 0) and compares them with
as many images of the run's data (the evaluation's real set, its own seed): SWD (x 1e3,
genjax.metrics.swd; lower is better) and KID on random-conv features (genjax.metrics,
the features the training evaluation uses; no Inception weights needed). The teacher with
each solver at each NFE (NFE = steps), each student at its own N. Sampling wall time is not
reported (a shared CPU); quality is the point.

Writes fewstep.json, fewstep.md (the table and the two targets of issue 19) and fewstep.png
(SWD against NFE, log-log) to --out.
"""

import argparse
import pathlib

import jax
import numpy as np

from benchmarks import common
from genjax import configs
from genjax.metrics import evaluate as ev
from genjax.metrics import features
from genjax.sample import run as sample_run
from genjax.sample.load import load_run
from genjax.train import distill_run, loop


def _ints(text: str) -> list[int]:
  return [int(v) for v in text.split(",") if v]


def _teacher(args, out: pathlib.Path) -> pathlib.Path:
  if args.workdir:
    return pathlib.Path(args.workdir)
  teacher = out / "teacher"
  config = configs.load(args.config, [f"train.num_steps={args.teacher_steps}",
                                      f"train.checkpoint_every={args.teacher_steps}",
                                      f"train.sample_every={args.teacher_steps}"])
  if not (teacher / "summary.json").is_file():
    print(f"training the teacher ({args.config}, {args.teacher_steps} steps) in {teacher}",
          flush=True)
    loop.train(config, teacher, progress=False)
  return teacher


def _student(teacher, out: pathlib.Path, n: int, args) -> pathlib.Path:
  student = out / f"student_{n}"
  if not (student / "summary.json").is_file():
    print(f"distilling a {n}-step student ({args.distill_steps} steps) in {student}",
          flush=True)
    distill_run.distill_run(
        teacher, student, steps=n, train_steps=args.distill_steps, progress=False,
        overrides=[f"distill.teacher_substeps={-(-args.teacher_nfe // n)}",
                   f"train.checkpoint_every={args.distill_steps}",
                   f"train.sample_every={args.distill_steps}"])
  return student


def _row(model: str, solver: str, nfe: int, workdir, real, extractor, args) -> dict:
  fake = sample_run.sample_images(workdir, n=args.samples, batch_size=args.batch,
                                  sampler=solver, steps=nfe, seed=0, progress=False)
  m = ev.evaluate(real, fake, ("swd", "kid"), key=jax.random.PRNGKey(0), extractor=extractor)
  row = {"model": model, "solver": solver, "nfe": nfe, "swd": float(m["swd"]),
         "kid": float(m["kid"]), "kid_std": float(m["kid_std"])}
  print(f"{model:>10} {solver:>9} NFE {nfe:>3}: SWD {row['swd']:.2f}  KID {row['kid']:.4f}",
        flush=True)
  return row


def _targets(rows: list[dict]) -> dict:
  """Issue 19's two targets, as ratios (<= 1.2 meets them); None where a row is missing."""
  def swd(model, solver, nfe):
    return next((r["swd"] for r in rows if (r["model"], r["solver"], r["nfe"]) ==
                 (model, solver, nfe)), None)
  ddim50 = swd("teacher", "ddim", 50)
  student4 = swd("student_4", "ddim", 4)
  at10 = [r for r in rows if r["model"] == "teacher" and r["nfe"] == 10]
  best10 = min(at10, key=lambda r: r["swd"]) if at10 else None
  out = {"teacher_ddim50_swd": ddim50,
         "student4_over_teacher_ddim50": (student4 / ddim50) if student4 and ddim50 else None,
         "student1_swd": swd("student_1", "ddim", 1),
         "best_solver_at_10": best10 and best10["solver"],
         "best_at_10_over_ddim50": (best10["swd"] / ddim50) if best10 and ddim50 else None}
  return out


def _chart(rows: list[dict], path: pathlib.Path, title: str) -> None:
  import matplotlib  # noqa: PLC0415
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # noqa: PLC0415
  fig, ax = plt.subplots(figsize=(6.5, 4))
  for solver in dict.fromkeys(r["solver"] for r in rows if r["model"] == "teacher"):
    pts = sorted((r["nfe"], r["swd"]) for r in rows
                 if r["model"] == "teacher" and r["solver"] == solver)
    ax.plot(*zip(*pts), marker="o", label=f"teacher, {solver}")
  students = sorted((r["nfe"], r["swd"]) for r in rows if r["model"].startswith("student"))
  if students:
    ax.plot(*zip(*students), marker="*", markersize=14, linestyle="none", color="k",
            label="distilled students (DDIM at N)")
  ax.set(xscale="log", yscale="log", xlabel="model evaluations (NFE)",
         ylabel="SWD x 1e3 (lower is better)", title=title)
  ax.grid(True, which="both", alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


COLUMNS = [("model", "model", ""), ("solver", "solver", ""), ("nfe", "NFE", "d"),
           ("swd", "SWD x1e3", ".2f"), ("kid", "KID", ".4f"), ("kid_std", "KID std", ".4f")]


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(prog="python -m benchmarks fewstep", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--config", default="tiny")
  p.add_argument("--workdir", default=None, help="the teacher run (default: trained here)")
  p.add_argument("--teacher-steps", type=int, default=500)
  p.add_argument("--students", default="1,2,4", help="student steps (one student each)")
  p.add_argument("--distill-steps", type=int, default=200)
  p.add_argument("--teacher-nfe", type=int, default=8,
                 help="the teacher DDIM steps a student's N steps are taught to match")
  p.add_argument("--solvers", default="ddim,dpm++2m,dpmpp_3m,unipc")
  p.add_argument("--nfe", default="1,2,4,5,10,20,50")
  p.add_argument("--samples", type=int, default=256)
  p.add_argument("--batch", type=int, default=128)
  p.add_argument("--out", default="benchmark_results/fewstep")
  args = p.parse_args(argv)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  teacher = _teacher(args, out)
  students = {n: _student(teacher, out, n, args) for n in _ints(args.students)}

  config = load_run(teacher)[0]
  real = ev.images_from_data_config(config.data, n=args.samples, seed=config.seed + 1)
  extractor = features.get_extractor("random_conv")
  rows = [_row("teacher", solver, nfe, teacher, real, extractor, args)
          for solver in args.solvers.split(",") for nfe in _ints(args.nfe)]
  rows += [_row(f"student_{n}", "ddim", n, s, real, extractor, args) for n, s in students.items()]

  targets = _targets(rows)
  payload = {"benchmark": "fewstep", "config": args.config, "teacher": str(teacher),
             "args": vars(args), "device": common.device_info(), "rows": rows,
             "targets": targets}
  common.write_json(out / "fewstep.json", payload)
  common.print_table(rows, COLUMNS)
  lines = [common.markdown_table(rows, COLUMNS), ""]
  for key, value in targets.items():
    lines.append(f"- {key}: {value if not isinstance(value, float) else format(value, '.3g')}")
  (out / "fewstep.md").write_text("\n".join(lines) + "\n")
  _chart(rows, out / "fewstep.png",
         f"{args.config}: SWD vs NFE ({args.samples} samples against the data)")
  print("\n".join(lines[2:]))
  print(f"wrote {out / 'fewstep.json'}, {out / 'fewstep.md'}, {out / 'fewstep.png'}")
  return payload


if __name__ == "__main__":
  import benchmarks
  benchmarks.setup()
  main()
