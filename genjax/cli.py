"""The `genjax` command: parses arguments and calls one library function per command."""

import argparse
import logging
import sys

USAGE_ERROR = 2


class _Parser(argparse.ArgumentParser):
  """argparse whose errors are one line, no usage block:
  "genjax vr: error: ... (see genjax vr --help)"."""

  def error(self, message):
    self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_run_args(p: argparse.ArgumentParser) -> None:
  """The flags of a training command (genjax.train.loop): resume and multi-process."""
  p.add_argument("--accept-config-change", action="store_true",
                 help="resume although the config differs from the run's config.json (the "
                      "change is recorded in config_changes.jsonl and config.json updated)")
  g = p.add_argument_group("multi-process (every process runs the same command)")
  g.add_argument("--distributed", action="store_true",
                 help="join a process group detected from the cluster (TPU pod, SLURM, Open MPI)")
  g.add_argument("--coordinator", help="host:port of process 0 (env GENJAX_COORDINATOR_ADDRESS)")
  g.add_argument("--num-processes", type=int, help="env GENJAX_NUM_PROCESSES")
  g.add_argument("--process-id", type=int, help="env GENJAX_PROCESS_ID")
  g.add_argument("--heartbeat-timeout", type=int,
                 help="seconds until a dead peer stops the run (default 100)")


def _init_distributed(args) -> None:
  from genjax.train import distributed
  distributed.initialize(distributed.DistributedSettings.from_args_and_env(
      enabled=args.distributed, coordinator_address=args.coordinator,
      num_processes=args.num_processes, process_id=args.process_id,
      heartbeat_timeout_s=args.heartbeat_timeout))


def _add_config_args(p: argparse.ArgumentParser, default: str) -> None:
  p.add_argument("--config", default=default,
                 help="built-in config name (tiny, cifar, base) or a .py file with get_config(); "
                      "override any field with --config.section.key=value")


def _split_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
  """Separates --config.a.b=value (or --config.a.b value) from the other arguments."""
  rest, overrides, i = [], [], 0
  while i < len(argv):
    arg = argv[i]
    if arg.startswith("--config."):
      if "=" in arg:
        overrides.append(arg[2:])
      elif i + 1 < len(argv):
        overrides.append(f"{arg[2:]}={argv[i + 1]}")
        i += 1
      else:
        raise SystemExit(f"genjax: error: {arg} needs a value")
    else:
      rest.append(arg)
    i += 1
  return rest, overrides


def _cmd_train(args, overrides) -> int:
  from genjax import configs
  from genjax.train import loop
  config = configs.load(args.config, overrides)
  configs.require_kind(config, "diffusion", args.config)
  _init_distributed(args)
  summary = loop.train(config, args.workdir, accept_config_change=args.accept_config_change)
  _print_summary(summary)
  return _exit_code(summary.interrupted_by)


def _cmd_distill(args, overrides) -> int:
  from genjax.train import distill_run
  summary = distill_run.distill_run(args.workdir, args.out, steps=args.steps,
                                    train_steps=args.train_steps, overrides=overrides,
                                    accept_config_change=args.accept_config_change)
  _print_summary(summary)
  if summary.interrupted_by is None:
    print(f"sample it with: genjax sample --workdir {args.out} -o OUT (defaults to its "
          f"{args.steps} DDIM steps)")
  return _exit_code(summary.interrupted_by)


def _cmd_tune(args, overrides) -> int:
  from genjax import configs
  from genjax.train import tune
  config = configs.load(args.config, overrides)
  configs.require_kind(config, "diffusion", args.config)
  print(tune.tune_config(config))
  return 0


def _cmd_sample(args, overrides) -> int:
  from genjax.sample import run
  paths = run.sample_to_folder(
      args.workdir, args.out, n=args.n, batch_size=args.batch, sampler=args.sampler,
      steps=args.steps, guidance=args.guidance, label=args.label, seed=args.seed,
      init=args.init, strength=args.strength, mask=args.mask, resample=args.resample,
      sampler_options=_sampler_options(args))
  print(f"wrote {len(paths)} images and grid.png to {args.out}")
  return 0


def _sampler_options(args) -> dict:
  from genjax.sample.sampler import parse_sampler_options
  return parse_sampler_options(args.sampler_option)


def _cmd_export(args, overrides) -> int:
  from genjax.sample import export
  path = export.export_sampler(args.workdir, args.out, sampler=args.sampler, steps=args.steps,
                               guidance=args.guidance, label=args.label,
                               platforms=tuple(args.platforms.split(",")),
                               sampler_options=_sampler_options(args))
  print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB) and its checksum "
        f"{export.checksum_path(path).name}; run it with genjax.sample.export.call_exported "
        f"(verifies the checksum) or jax.export.deserialize(...).call(noise, keys)")
  return 0


def _cmd_eval(args, overrides) -> int:
  from genjax.metrics.evaluate import format_table
  from genjax.sample import evaluate
  results = evaluate.evaluate_sources(
      args.real, args.fake, metric_names=args.metrics, n=args.n, features=args.features,
      inception_weights=args.inception_weights, size=args.size, sampler=args.sampler,
      steps=args.steps, seed=args.seed, out_json=args.out)
  print(format_table(results))
  if args.out:
    print(f"wrote {args.out}")
  return 0


def _cmd_comic(args, overrides) -> int:
  from genjax.apps.comic import examples, page, run
  if args.examples:
    if args.inputs:
      raise ValueError(f"--examples renders the built-in photos; drop the inputs "
                       f"({' '.join(args.inputs)}) or --examples")
    if not examples.have_skimage():
      print("genjax: scikit-image is not installed: the examples are procedural landscapes, "
            "not its sample photos (pip install 'genjax-engine[examples]')", file=sys.stderr)
    paths = run.comic_examples(args.out, seed=args.seed)
    print(f"wrote {len(paths)} example images to {args.out}")
    return 0
  if not args.inputs:
    raise ValueError("give input images or folders (or --examples)")
  layout = page.PageLayout(columns=args.columns, width=args.page_width)
  result = run.comic_files(
      args.inputs, args.out, style=args.style, knobs=run.parse_knobs(args.set),
      layers=args.layers, page=args.page, tile=args.tile, memory_mb=args.memory,
      layout=layout, captions=args.caption, seed=args.seed, model=args.model)
  for _, message in result.renamed:
    print(f"renamed: {message}")
  print(f"wrote {len(result.written)} files to {args.out}")
  for path, message in result.failures:
    print(f"genjax: failed: {message}", file=sys.stderr)
  return 1 if result.failures else 0


def _cmd_train_comic(args, overrides) -> int:
  import json
  from genjax import configs
  from genjax.apps.comic.train_translator import train_translator
  config = configs.load(args.config, overrides)
  configs.require_kind(config, "translator", args.config)
  _init_distributed(args)
  result = train_translator(config, args.workdir, accept_config_change=args.accept_config_change)
  import jax
  if jax.process_index() == 0:
    print(json.dumps(result, indent=1))
  return _exit_code(result["interrupted_by"])


def _cmd_demo(args, overrides) -> int:
  from genjax import demo
  return demo.run(args.workdir, steps=args.steps, overrides=overrides)


def _exit_code(interrupted_by: str | None) -> int:
  """0 for a run that finished or stopped at its time limit, 128 + N for signal N (the
  shell's convention for a process a signal stopped)."""
  import signal
  return 0 if interrupted_by in (None, "time_limit") else 128 + int(signal.Signals[interrupted_by])


def _print_summary(summary) -> None:
  print(f"steps {summary.start_step} -> {summary.final_step} in {summary.seconds:.0f} s "
        f"({summary.images_per_second:.0f} images/s); final loss {summary.final_loss}")
  if summary.skipped_steps:
    print(f"skipped steps (non-finite loss): {summary.skipped_steps}")
  if summary.skipped_files:
    print(f"skipped files: {len(summary.skipped_files)}")
  if summary.interrupted_by:
    print(f"interrupted by {summary.interrupted_by}; checkpoint saved at step {summary.final_step}")
  import pathlib
  outputs = [name for name in ("samples.png", "loss.png", "metrics.jsonl", "checkpoints/")
             if (pathlib.Path(summary.workdir) / name).exists()]
  print(f"outputs in {summary.workdir}: {', '.join(outputs)}")


def build_parser() -> argparse.ArgumentParser:
  from genjax import cli_vr
  parser = _Parser(prog="genjax", description=(
      "genjax: a JAX engine for image generation (not the probabilistic-programming genjax)."),
      epilog="Compiled programs are cached in ~/.cache/genjax/jax ($GENJAX_CACHE_DIR/jax, "
             "$XDG_CACHE_HOME/genjax/jax); --no-compile-cache (anywhere on the command line) "
             "or GENJAX_COMPILE_CACHE=0 turns the cache off.")
  sub = parser.add_subparsers(dest="command", required=True)

  p = sub.add_parser("demo", help="train a tiny model on built-in procedural data (CPU, minutes)")
  p.add_argument("--workdir", default="genjax_demo", help="output folder (default: %(default)s)")
  p.add_argument("--steps", type=int, default=None, help="training steps (default: the tiny config's)")
  p.set_defaults(fn=_cmd_demo)

  p = sub.add_parser("train", help="train or resume a diffusion model")
  _add_config_args(p, default="tiny")
  p.add_argument("--workdir", required=True, help="run folder: checkpoints, metrics, samples")
  _add_run_args(p)
  p.set_defaults(fn=_cmd_train)

  p = sub.add_parser("distill", help="distil a run into an N-step student run (progressive "
                     "distillation; --config.section.key=value overrides the student's config)")
  p.add_argument("--workdir", required=True, help="the teacher's run folder")
  p.add_argument("--steps", type=int, required=True, help="the student's sampling steps (NFE)")
  p.add_argument("--out", required=True, help="the student's run folder (run again to resume)")
  p.add_argument("--train-steps", type=int, default=None,
                 help="distillation steps (default 1000, or the student's on resume)")
  p.add_argument("--accept-config-change", action="store_true",
                 help="resume although the student's config changes (recorded)")
  p.set_defaults(fn=_cmd_distill)

  p = sub.add_parser("tune", help="measure the CPU conv autotune table for a config's train "
                                   "step (genjax train does it on first use otherwise)")
  _add_config_args(p, default="tiny")
  p.set_defaults(fn=_cmd_tune)

  p = sub.add_parser("sample", help="sample images from a trained run (also img2img, inpainting)")
  p.add_argument("--workdir", required=True, help="the run folder (config.json, checkpoints/)")
  p.add_argument("-o", "--out", required=True, help="output folder")
  p.add_argument("--n", type=int, default=16, help="number of images")
  p.add_argument("--batch", type=int, default=16, help="images per compiled call")
  p.add_argument("--sampler", default=None,
                 help="ddpm, ddim, euler, heun, dpm++2m, dpmpp_3m, dpmpp_2m_sde, unipc "
                      "(default: dpm++2m; ddim for --init, ddpm for --mask; a distilled "
                      "student's own)")
  p.add_argument("--steps", type=int, default=None,
                 help="sampler steps (default 25; a distilled student's own)")
  p.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance scale")
  p.add_argument("--class", dest="label", type=int, default=None, help="class label")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--init", help="RGB image to start from (img2img, or inpainting with --mask); "
                 "another size is centre-cropped to the model's aspect and resized to its "
                 "resolution")
  p.add_argument("--strength", type=float, default=0.6, help="img2img noise strength in [0, 1]")
  p.add_argument("--mask", help="inpainting mask, same size as --init: white = keep")
  p.add_argument("--resample", type=int, default=4, help="RePaint resampling rounds per step")
  p.add_argument("--sampler-option", action="append", default=[], metavar="KEY=VALUE",
                 help="a sampler option, repeatable: order=3 (unipc: 1-3), variant=bh1, "
                      "corrector=False, eta=0.5 (ddim, dpmpp_2m_sde), grid=karras, ...")
  p.set_defaults(fn=_cmd_sample)

  p = sub.add_parser("export", help="serialize the compiled sampler with jax.export")
  p.add_argument("--workdir", required=True)
  p.add_argument("-o", "--out", required=True, help="output file, e.g. sampler.jaxexport")
  p.add_argument("--sampler", default=None, help="default ddim (a distilled student's own)")
  p.add_argument("--steps", type=int, default=None, help="default 50 (a student's own)")
  p.add_argument("--guidance", type=float, default=1.0)
  p.add_argument("--class", dest="label", type=int, default=None)
  p.add_argument("--platforms", default="cpu", help="comma-separated: cpu,cuda,tpu")
  p.add_argument("--sampler-option", action="append", default=[], metavar="KEY=VALUE",
                 help="a sampler option, repeatable (as genjax sample's)")
  p.set_defaults(fn=_cmd_export)

  p = sub.add_parser("eval", help="sample-quality metrics: SWD, KID, FID, precision/recall")
  p.add_argument("--real", required=True,
                 help="image folder, run folder (its training data) or dataset name (tiny, cifar...)")
  p.add_argument("--fake", required=True, help="run folder (samples are drawn) or image folder")
  p.add_argument("--metrics", default="swd,kid", help="comma-separated: swd, kid, fid, pr")
  p.add_argument("--n", type=int, default=1000, help="images per side")
  p.add_argument("--features", default=None,
                 help="inception (needs --inception-weights), random_conv or pixels")
  p.add_argument("--inception-weights", default=None,
                 help=".npz from python -m genjax.metrics.convert_inception")
  p.add_argument("--size", default=None, help="HxW for two image folders")
  p.add_argument("--sampler", default=None, help="default dpm++2m (a student's own)")
  p.add_argument("--steps", type=int, default=None, help="default 25 (a student's own)")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("-o", "--out", default=None, help="JSON file for the results")
  p.set_defaults(fn=_cmd_eval)

  p = sub.add_parser("comic", help="turn photos into comics (colour) or manga (screentones)")
  p.add_argument("inputs", nargs="*", metavar="IN", help="image files or folders")
  p.add_argument("-o", "--out", required=True,
                 help="output folder, or a file (its extension sets the format) for one input "
                      "or --page")
  p.add_argument("--style", default="comic", help="comic or manga (default: %(default)s)")
  p.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE",
                 help="style knob, repeatable: line_weight, smoothing, n_colors (comic), "
                      "tone_levels, tone_period, tone_pattern=hatch (manga), ...")
  p.add_argument("--layers", action="store_true",
                 help="also write the ink, tone and flat layers as RGBA PNGs")
  p.add_argument("--page", action="store_true", help="lay all inputs out as one comic page")
  p.add_argument("--columns", type=int, default=2, help="--page: panels per row")
  p.add_argument("--page-width", type=int, default=1200, help="--page: page width in pixels")
  p.add_argument("--caption", action="append", default=None, metavar="TEXT",
                 help="--page: caption of the next panel, repeatable ('' for none)")
  p.add_argument("--tile", type=int, default=None,
                 help="tile size in pixels (default: tile only images over --memory)")
  p.add_argument("--memory", type=float, default=1024.0,
                 help="memory budget of one render call in MiB (default: %(default)s)")
  p.add_argument("--seed", type=int, default=0, help="seed of the colour palette fit")
  p.add_argument("--model", default=None,
                 help="neural translator: a `genjax train-comic` workdir (its style must match --style)")
  p.add_argument("--examples", action="store_true",
                 help="render the built-in example photos (scikit-image's, else procedural)")
  p.set_defaults(fn=_cmd_comic)


  cli_vr.add_parser(sub)

  p = sub.add_parser("train-comic", help="train the neural comic translator (paired / unpaired)")
  _add_config_args(p, "comic_tiny")
  p.add_argument("--workdir", required=True)
  _add_run_args(p)
  p.set_defaults(fn=_cmd_train_comic)
  return parser


def _known_errors() -> tuple[type[BaseException], ...]:
  """Errors that mean bad input: reported in one line, exit code 2, no traceback."""
  from genjax.configs import ConfigError
  from genjax.train.checkpoint import CheckpointMismatchError
  from genjax.train.loop import TrainingDiverged
  return (ConfigError, CheckpointMismatchError, TrainingDiverged, ValueError, FileNotFoundError)


NO_COMPILE_CACHE = "--no-compile-cache"


def main(argv: list[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  compile_cache_on = NO_COMPILE_CACHE not in argv  # a flag of every command
  argv = [a for a in argv if a != NO_COMPILE_CACHE]
  rest, overrides = _split_overrides(argv)
  args = build_parser().parse_args(rest)
  from genjax.kernels import process_settings
  # Before the first jax computation starts the backend (XLA flags) and its threads (malloc).
  process_settings.apply(compile_cache_on=compile_cache_on)
  logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
  for noisy in ("absl", "orbax", "jax"):
    logging.getLogger(noisy).setLevel(logging.WARNING)
  try:
    return args.fn(args, overrides)
  except _known_errors() as e:
    print(f"genjax: error: {e}", file=sys.stderr)
    return USAGE_ERROR
  except OSError as e:  # a write or read the system refused: full disk, read-only folder...
    print(f"genjax: error: {describe_os_error(e)}", file=sys.stderr)
    return 1


def describe_os_error(e: OSError) -> str:
  """One line naming the file and the reason: "out/a.png: No space left on device"."""
  reason = e.strerror or str(e) or type(e).__name__
  names = [n for n in (e.filename, e.filename2) if n is not None]
  return f"{' -> '.join(map(str, names))}: {reason}" if names else reason


if __name__ == "__main__":
  sys.exit(main())
