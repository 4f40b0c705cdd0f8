"""Photo sphere from the demo photo: a distilled student against its teacher (issue 19).

    python -m benchmarks vr_fewstep --teacher RUN --student RUN_4STEP [--rounds 2]
        [--seeds 8] [--height H] [--project panorama] [--out benchmark_results/vr_fewstep]

Every measurement is the command a user runs, `genjax vr photo.png -o X.jpg --workdir RUN
--fov 60`, in a process of its own, on the demo's photo and field of view
(genjax.apps.vr.run.demo_photo, DEMO_HFOV): the teacher at today's defaults (ddpm, 50
steps), the student at its own (its config.distill: ddim, 4 steps), both at the same output
size (--height; default what `genjax vr` picks from the photo: 696 x 1392 for the demo's).

Rounds: a cold round first (the benchmark's own empty compilation cache folder,
GENJAX_CACHE_DIR: compilation included), then --rounds warm rounds on the filled cache
(the fair comparison: what every run after the first pays), the order alternating. Per
process: wall time from launch to exit; CPU time (user + sys of the child, steadier than
wall time on a shared machine); the sampling part as `genjax vr` prints it (its sampler
call: tracing, compilation or cache load, the steps); the seam scores it prints; and the
pole rows of the written JPEG: standard deviation along longitude of row 0 and of row
H-1 (mean over RGB, of 255; 0 = one colour at the pole, as the sphere is there).

After each warm round one worker process loads both runs and splits the time of `genjax vr`
into its parts (`worker`): import, loading the run, tracing + compilation of the
outpainting (no persistent cache there), the compiled outpainting alone (median of 5 calls,
the two runs alternated: the model evaluations and nothing else), and upsampling + pasting
the photo + writing the JPEG. In round 1 it also averages the seam and pole scores over
--seeds seeds (one sphere is one sample; the pole rows there are the uint8 panorama's,
before JPEG).

With --project CONFIG, a last worker times one model evaluation of CONFIG's UNet (random
weights, its image size) and projects the whole-process ratio at that size from the fixed
costs measured here (`projection`): the steps are the only part that grows with the model.

Writes vr_fewstep.json, vr_fewstep.md (table and ratios) and vr_fewstep.png (the two
spheres of the last round, teacher above student) to --out.
"""

import argparse
import functools
import json
import os
import pathlib
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np
from PIL import Image, ImageDraw

from benchmarks import common

ROOT = pathlib.Path(__file__).resolve().parents[1]
_SAMPLING = re.compile(r"sampler (\S+), (\d+) steps")
_SEAM = re.compile(r"seam column ratio ([\d.]+), gradient ratio ([\d.]+), sampling ([\d.]+) s")


def _child_cpu() -> float:
  r = resource.getrusage(resource.RUSAGE_CHILDREN)
  return r.ru_utime + r.ru_stime


def _run(cmd: list[str], env: dict) -> tuple[str, float, float]:
  """(stdout, wall seconds, CPU seconds) of a child process that must succeed."""
  c0, t0 = _child_cpu(), time.perf_counter()
  done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
  wall, cpu = time.perf_counter() - t0, _child_cpu() - c0
  if done.returncode != 0:
    raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
  return done.stdout, wall, cpu


def pole_std(path) -> tuple[float, float]:
  """Std along longitude of the first and last row of an equirectangular image, mean over
  RGB, in units of 1/255."""
  with Image.open(path) as im:
    a = np.asarray(im.convert("RGB"), np.float64)
  return float(a[0].std(0).mean()), float(a[-1].std(0).mean())


def vr_process(photo, workdir, out_jpg, env, height) -> dict:
  """One `genjax vr` process on the photo: times, sampler, seam and pole scores."""
  cmd = [sys.executable, "-m", "genjax.cli", "vr", str(photo), "-o", str(out_jpg),
         "--workdir", str(workdir), "--fov", "60"]
  if height:
    cmd += ["--height", str(height)]
  out, wall, cpu = _run(cmd, env)
  sampler, steps = _SAMPLING.search(out).groups()
  column, gradient, sampling = map(float, _SEAM.search(out).groups())
  north, south = pole_std(out_jpg)
  with Image.open(out_jpg) as im:
    size = f"{im.height}x{im.width}"
  return {"sampler": sampler, "steps": int(steps), "wall_s": wall, "cpu_s": cpu,
          "sampling_s": sampling, "seam_column": column, "seam_gradient": gradient,
          "pole_north_std": north, "pole_south_std": south, "size": size}


def worker(models: dict, photo, seeds: int, out_dir, height=None) -> dict:
  """In one process, both runs alternated: where the time of `genjax vr` goes, and the seam
  and pole scores over `seeds` seeds (one photo sphere is one sample of each).

  Per run: load_s (config + checkpoint), first_call_s (tracing and compilation of the
  outpainting; the benchmarks' process settings keep the compilation cache off here),
  steady_sampling_s (median of 5 calls of the compiled outpainting, the runs alternated:
  the steps alone), compose_write_s (upsampling to the output size, the photo pasted, the
  JPEG written: outputs.write_panorama; median over the seeds, after one warm-up), and over
  seeds 0..seeds-1 the mean seam scores of the panorama (genjax.metrics.seam) and the mean
  pole-row stds of its uint8 pixels (before JPEG). import_s: importing genjax's VR app
  (flax, orbax, genjax; jax is imported already), once."""
  t0 = time.perf_counter()
  import jax
  import jax.numpy as jnp
  from genjax.apps.vr import outpainting, outputs, photo_placement, run
  from genjax.metrics.seam import seam_scores
  result = {"import_s": time.perf_counter() - t0}
  with Image.open(photo) as im:
    rgb = np.asarray(im.convert("RGB"))
  placement = photo_placement.Placement(run.DEMO_HFOV)
  calls = {}
  for name, workdir in models.items():
    t = time.perf_counter()
    pm = outpainting.load_panorama_model(workdir)
    load_s = time.perf_counter() - t
    sampler, steps = outpainting.sampling_for(pm.config)
    known, keep = photo_placement.place_on_grid(rgb, placement, pm.image_hw)
    args = (pm.params, jax.random.key(0), jnp.asarray(known * 2 - 1)[None],
            jnp.asarray(keep, jnp.float32)[None, ..., None])
    fn = functools.partial(outpainting.outpaint_jit, model=pm.model, spec=pm.spec,
                           steps=steps, sampler=sampler)
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    calls[name] = (fn, args)
    result[name] = {"sampler": sampler, "steps": steps, "load_s": load_s,
                    "first_call_s": time.perf_counter() - t, "pm": pm}
  for name in models:
    result[name]["steady"] = []
  for _ in range(5):                      # alternated: both see the same load
    for name, (fn, args) in calls.items():
      result[name]["steady"].append(common.time_call(fn, *args, repeats=1, warmup=0)[0])
  for name in models:
    r = result[name]
    pm = r.pop("pm")
    r["steady_sampling_s"] = statistics.median(r.pop("steady"))
    scores, writes = [], []
    for seed in range(-1, seeds):   # the key of input 0 of `genjax vr --seed SEED`
      t = time.perf_counter()
      res = outpainting.photo_to_panorama(rgb, pm, key=jax.random.fold_in(
          jax.random.key(max(seed, 0)), 0), placement=placement, sampler=r["sampler"],
          steps=r["steps"], out_height=height)
      outputs.write_panorama(res.panorama, pathlib.Path(out_dir) / f"w_{name}", html=False)
      if seed < 0:
        continue                  # the warm-up: the upsampling and seam programs compile
      writes.append(time.perf_counter() - t - res.sample_seconds)
      s = seam_scores(res.panorama.astype(np.float32)[None])
      a = res.panorama.astype(np.float64)
      scores.append((float(s.column_ratio[0]), float(s.gradient_ratio[0]),
                     float(a[0].std(0).mean()), float(a[-1].std(0).mean())))
    r["compose_write_s"] = statistics.median(writes) if writes else None
    for key, column in zip(("seam_column", "seam_gradient", "pole_north_std",
                            "pole_south_std"), np.mean(scores, axis=0) if scores else [None] * 4):
      r[f"{key}_mean{seeds}"] = column if column is None else float(column)
  return result


def evaluation_seconds(config_name: str) -> dict:
  """Seconds of one model evaluation of `config_name`'s UNet at its own image size, batch 1,
  with the mask condition (what each outpainting step runs; random weights: the time does
  not depend on them). Median of 3 calls after a warm-up."""
  import jax
  import jax.numpy as jnp
  from genjax import configs, models
  config = configs.load(config_name)
  model = models.build_model(config.model)
  h, w = config.data.image_size
  x, c = jnp.zeros((1, h, w, 3)), jnp.zeros((1,))
  cond = jnp.zeros((1, h, w, config.model.cond_channels))
  shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), x, c, cond=cond))
  rng = np.random.default_rng(0)       # random weights of the model's shapes, nothing compiled
  params = jax.tree.map(lambda a: jnp.asarray(0.02 * rng.standard_normal(a.shape), a.dtype),
                        shapes["params"])
  fn = jax.jit(lambda p, x, c, cond: model.apply({"params": p}, x, c, cond=cond))
  args = (params, x + jnp.asarray(rng.standard_normal(x.shape), jnp.float32), c + 0.5, cond)
  times = common.time_call(fn, *args, repeats=3, warmup=1)
  return {"config": config_name, "image_size": [h, w], "evaluation_s": statistics.median(times)}


def projection(rows: list[dict], evaluation: dict) -> dict:
  """The whole `genjax vr` ratio if one model evaluation cost evaluation["evaluation_s"]:
  (F + N_t e) / (F + N_s e), F = the student's warm process wall time minus its compiled
  sampling (fixed costs: import, load, tracing + cache load, compose, JPEG), medians over
  the warm rounds."""
  warm = lambda model, k: statistics.median(r[k] for r in rows
                                            if r["model"] == model and r["round"] != "cold")
  teacher = next(r for r in rows if r["model"] == "teacher")["steps"]
  student = next(r for r in rows if r["model"] == "student")["steps"]
  fixed = warm("student", "wall_s") - warm("student", "steady_sampling_s")
  e = evaluation["evaluation_s"]
  return {**evaluation, "fixed_s": fixed,
          "projected_ratio": (fixed + teacher * e) / (fixed + student * e),
          "break_even_evaluation_s": 7 * fixed / (teacher - 8 * student)
          if teacher > 8 * student else None}


def side_by_side(top, bottom, labels, out_png, width: int = 1024) -> None:
  """The two spheres stacked (each resized to `width` wide), labelled, as one PNG."""
  tiles = []
  for path, label in zip((top, bottom), labels):
    with Image.open(path) as im:
      im = im.convert("RGB").resize((width, width // 2), Image.Resampling.LANCZOS)
    ImageDraw.Draw(im).text((8, 6), label, fill=(255, 255, 255))
    tiles.append(im)
  sheet = Image.new("RGB", (width, width + 4), (255, 255, 255))
  sheet.paste(tiles[0], (0, 0))
  sheet.paste(tiles[1], (0, width // 2 + 4))
  sheet.save(out_png)


COLUMNS = [("round", "round", ""), ("model", "model", ""), ("sampler", "sampler", ""),
           ("steps", "steps", "d"), ("size", "output", ""), ("wall_s", "genjax vr wall s", ".2f"),
           ("cpu_s", "CPU s", ".2f"), ("sampling_s", "sampling s (in vr)", ".2f"),
           ("seam_column", "seam column", ".3f"), ("seam_gradient", "seam gradient", ".3f"),
           ("pole_north_std", "row 0 std", ".2f"), ("pole_south_std", "row H-1 std", ".2f")]
PARTS = [("round", "round", ""), ("model", "model", ""), ("import_s", "import s", ".2f"),
         ("load_s", "load run s", ".2f"), ("first_call_s", "trace + compile s", ".2f"),
         ("steady_sampling_s", "compiled sampling s", ".4f"),
         ("compose_write_s", "upsample + paste + JPEG s", ".3f")]
RATIOS = ("wall_s", "cpu_s", "sampling_s", "steady_sampling_s")


def quality_columns(seeds: int) -> list:
  return [("model", "model", "")] + [
      (f"{k}_mean{seeds}", f"{h}, mean of {seeds} seeds", f) for k, h, f in (
          ("seam_column", "seam column", ".3f"), ("seam_gradient", "seam gradient", ".3f"),
          ("pole_north_std", "row 0 std", ".3f"), ("pole_south_std", "row H-1 std", ".3f"))]


def ratios(rows: list[dict]) -> list[dict]:
  """teacher / student of each timing, per warm round."""
  out = []
  for r in sorted({row["round"] for row in rows if row["round"] != "cold"}):
    pair = {row["model"]: row for row in rows if row["round"] == r}
    out.append({"round": r, **{k: pair["teacher"][k] / pair["student"][k] for k in RATIOS}})
  return out


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(prog="python -m benchmarks vr_fewstep", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--teacher", required=True, help="the teacher's run folder")
  p.add_argument("--student", required=True, help="its distilled student's run folder")
  p.add_argument("--rounds", type=int, default=2, help="warm rounds (after the cold one), >= 1")
  p.add_argument("--seeds", type=int, default=8, help="seeds of the seam and pole means")
  p.add_argument("--height", type=int, default=None, help="output height (default: vr's)")
  p.add_argument("--out", default="benchmark_results/vr_fewstep")
  p.add_argument("--project", default=None, metavar="CONFIG",
                 help="also time one model evaluation of CONFIG (e.g. panorama, random "
                      "weights) and project the whole-process ratio at that size")
  p.add_argument("--worker", default=None, help=argparse.SUPPRESS)   # worker: PHOTO
  p.add_argument("--evaluation", default=None, help=argparse.SUPPRESS)   # worker: CONFIG
  args = p.parse_args(argv)
  models = {"teacher": args.teacher, "student": args.student}
  if args.evaluation:
    print(json.dumps(evaluation_seconds(args.evaluation)))
    return {}
  if args.worker:
    print(json.dumps(worker(models, args.worker, args.seeds, pathlib.Path(args.out),
                            args.height)))
    return {}
  if args.rounds < 1:
    p.error("--rounds must be >= 1")
  from genjax.apps.vr import run as vr_run
  from genjax.image import io
  out = pathlib.Path(args.out).absolute()
  spheres = out / "spheres"
  shutil.rmtree(out / "cache", ignore_errors=True)   # the cold round starts from nothing
  spheres.mkdir(parents=True, exist_ok=True)
  photo = io.save_image(out / "photo.png", vr_run.demo_photo())
  env = {**os.environ, "GENJAX_CACHE_DIR": str(out / "cache")}
  for name in ("GENJAX_COMPILE_CACHE", "JAX_COMPILATION_CACHE_DIR"):
    env.pop(name, None)
  rows, parts, quality = [], [], []
  for r in ["cold"] + list(range(1, args.rounds + 1)):
    order = ["teacher", "student"] if r == "cold" or r % 2 else ["student", "teacher"]
    for model in order:
      jpg = spheres / f"{model}_{r}.jpg"
      jpg.unlink(missing_ok=True)
      row = {"round": r, "model": model,
             **vr_process(photo, models[model], jpg, env, args.height)}
      rows.append(row)
      print(f"round {r} {model}: {row['sampler']} x {row['steps']}, vr {row['wall_s']:.1f} s "
            f"wall ({row['cpu_s']:.1f} CPU s), sampling {row['sampling_s']:.2f} s in vr; seam "
            f"{row['seam_column']:.3f} / {row['seam_gradient']:.3f}, poles "
            f"{row['pole_north_std']:.2f} / {row['pole_south_std']:.2f}", flush=True)
    if r == "cold":
      continue
    seeds = args.seeds if r == 1 else 1           # the scores do not change between rounds
    cmd = [sys.executable, "-m", "benchmarks.vr_fewstep", "--teacher", args.teacher,
           "--student", args.student, "--seeds", str(seeds), "--out", str(spheres),
           "--worker", str(photo)] + (["--height", str(args.height)] if args.height else [])
    got = json.loads(_run(cmd, env)[0].strip().splitlines()[-1])
    for model in order:
      part = {"round": r, "model": model, "import_s": got["import_s"], **got[model]}
      parts.append(part)
      next(row for row in rows if row["round"] == r and row["model"] == model)[
          "steady_sampling_s"] = part["steady_sampling_s"]
      if r == 1:
        quality.append(part)
      print(f"round {r} {model}: compiled sampling {part['steady_sampling_s'] * 1e3:.1f} ms, "
            f"load {part['load_s']:.2f} s, trace + compile {part['first_call_s']:.2f} s, "
            f"upsample + paste + JPEG {part['compose_write_s']:.2f} s", flush=True)
  speedups = ratios(rows)
  projected = None
  if args.project:
    cmd = [sys.executable, "-m", "benchmarks.vr_fewstep", "--teacher", "-", "--student", "-",
           "--evaluation", args.project]
    projected = projection(rows, json.loads(_run(cmd, env)[0].strip().splitlines()[-1]))
    print(f"projection: one {args.project} evaluation ({projected['image_size']}) "
          f"{projected['evaluation_s']:.2f} s, fixed costs {projected['fixed_s']:.2f} s -> "
          f"teacher / student {projected['projected_ratio']:.2f}x; 8x needs one evaluation "
          f">= {projected['break_even_evaluation_s']:.2f} s", flush=True)
  ratio_columns = [("round", "round", "")] + [(k, f"teacher / student: {k}", ".2f")
                                               for k in RATIOS]
  tables = [(rows, COLUMNS), (parts, PARTS), (quality, quality_columns(args.seeds)),
            (speedups, ratio_columns)]
  for table, columns in tables:
    common.print_table(table, columns)
  labels = [f"{row['model']}: {row['sampler']}, {row['steps']} steps" for model in models
            for row in rows if row["round"] == args.rounds and row["model"] == model]
  side_by_side(spheres / f"teacher_{args.rounds}.jpg", spheres / f"student_{args.rounds}.jpg",
               labels, out / "vr_fewstep.png")
  md = "\n".join(common.markdown_table(t, c) for t, c in tables)
  if projected:
    md += (f"\nProjection: one {args.project} evaluation ({projected['image_size']}) "
           f"{projected['evaluation_s']:.2f} s, fixed costs {projected['fixed_s']:.2f} s: "
           f"teacher / student {projected['projected_ratio']:.2f}x (8x needs one evaluation >= "
           f"{projected['break_even_evaluation_s']:.2f} s)\n")
  (out / "vr_fewstep.md").write_text(md)
  payload = {"benchmark": "vr_fewstep", "teacher": str(args.teacher),
             "student": str(args.student), "device": common.device_info(), "results": rows,
             "parts": parts, "speedups": speedups, "projection": projected}
  common.write_json(out / "vr_fewstep.json", payload)
  print(f"wrote {out / 'vr_fewstep.json'}, {out / 'vr_fewstep.md'}, {out / 'vr_fewstep.png'}")
  return payload


if __name__ == "__main__":
  import benchmarks
  benchmarks.setup()
  main()
