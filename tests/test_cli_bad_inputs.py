"""Every subcommand, fed bad input: a non-zero exit, one readable line naming the file, key or
value, no traceback, no output left behind, and every input file byte-identical (issue 15).

The cases run in-process through genjax.cli.main (argparse exits become SystemExit codes).
`{run}` is the session's tiny trained run, `{in}` a folder of inputs made once per module,
`{out}` an output path that must not exist afterwards.
"""

import hashlib
import pathlib

import numpy as np
import pytest
from PIL import Image

from genjax import cli

CASES = [
    # train
    ("train", ["--workdir", "{out}", "--config.train.batchsize=3"], "train.batchsize"),
    ("train", ["--workdir", "{out}", "--config.train.num_steps=many"], "train.num_steps"),
    ("train", ["--workdir", "{out}", "--config=nosuch"], "nosuch"),
    ("train", ["--workdir", "{out}", "--config=comic_tiny"], "'comic_tiny' is not a diffusion"),
    ("train", ["--workdir", "{out}", "--config.data.source=folder",
               "--config.data.path={in}/empty"], "empty"),
    ("train", ["--workdir", "{out}", "--config.train.checkpoint_every=0"],
     "train.checkpoint_every"),
    ("train", ["--workdir", "{out}", "--config.train.num_steps=-5"], "train.num_steps"),
    ("train", ["--workdir", "{out}", "--config.train.batch_size=0"], "train.batch_size"),
    ("train", ["--workdir", "{out}", "--nope"], "unrecognized arguments: --nope"),
    ("train", ["--workdir", "{out}", "--config.train.objective=distill"], "genjax distill"),
    # train-comic
    ("train-comic", ["--workdir", "{out}", "--config=tiny"], "'tiny' is not a translator"),
    ("train-comic", ["--workdir", "{out}", "--config.train.nope=1"], "train.nope"),
    ("train-comic", ["--workdir", "{out}", "--config.train.mode=unpaired",
                     "--config.data.comics={in}/photos",
                     "--config.unpaired.vgg_weights={in}/missing.npz"],
     "unpaired.vgg_weights: VGG19 weights file"),
    ("train-comic", ["--workdir", "{out}", "--config.train.mode=unpaired",
                     "--config.data.comics={in}/photos",
                     "--config.unpaired.vgg_weights={in}/notes.txt"], "notes.txt' is not a .npz"),
    ("train-comic", ["--workdir", "{out}", "--config.unpaired.content_layer=relu9_9"],
     "unpaired.content_layer"),
    # sample
    ("sample", ["--workdir", "{in}/nowhere", "-o", "{out}"], "nowhere"),
    ("sample", ["--workdir", "{in}", "-o", "{out}"], "no config.json"),
    ("sample", ["--workdir", "{run}", "-o", "{out}", "--sampler", "rk45"], "rk45"),
    ("sample", ["--workdir", "{run}", "-o", "{out}", "--steps", "0"], "steps"),
    ("sample", ["--workdir", "{run}", "-o", "{out}", "--guidance", "3"], "unconditional"),
    ("sample", ["--workdir", "{run}", "-o", "{out}", "--class", "3"], "--class 3"),
    ("sample", ["--workdir", "{run}", "-o", "{out}", "--n", "0"], "--n and --batch"),
    ("sample", ["--workdir", "{run}", "-o", "{out}", "--n", "many"], "'many'"),
    ("sample", ["--workdir", "{run}", "-o", "{out}", "--init", "{in}/rgba.png"], "rgba.png"),
    ("sample", ["--workdir", "{run}", "-o", "{out}", "--init", "{in}/missing.png"],
     "missing.png"),
    ("sample", ["--workdir", "{run}", "-o", "{out}", "--init", "{in}/corrupt.png"],
     "corrupt.png"),
    ("sample", ["--workdir", "{run}", "-o", "{out}", "--mask", "{in}/photo.png"],
     "--mask needs --init"),
    ("sample", ["--workdir", "{run}", "-o", "{out}", "--init", "{in}/photo.png", "--mask",
                "{in}/small.png"], "small.png"),
    ("sample", ["--workdir", "{run}", "-o", "{out}", "--init", "{in}/photo.png",
                "--strength", "2"], "strength"),
    ("sample", ["--workdir", "{run}", "-o", "{in}/notes.txt/sub"], "notes.txt is a file"),
    ("sample", ["--workdir", "{run}", "-o", "{in}/notes.txt"], "notes.txt is a file"),
    ("sample", ["--workdir", "{run}", "-o", "{out}", "--sampler", "unipc", "--sampler-option",
                "ordr=3"], "no option 'ordr'"),
    ("sample", ["--workdir", "{run}", "-o", "{out}", "--sampler", "unipc", "--sampler-option",
                "order=7"], "order must be 1, 2 or 3, got 7"),
    ("sample", ["--workdir", "{run}", "-o", "{out}", "--sampler-option", "order"], "KEY=VALUE"),
    # distill
    ("distill", ["--workdir", "{in}", "--steps", "4", "--out", "{out}"], "no config.json"),
    ("distill", ["--workdir", "{run}", "--steps", "0", "--out", "{out}"], "--steps"),
    ("distill", ["--workdir", "{run}", "--steps", "4", "--out", "{run}"], "teacher's folder"),
    ("distill", ["--workdir", "{run}", "--steps", "4", "--out", "{out}",
                 "--config.distill.teacher_substeps=0"], "distill.teacher_substeps"),
    # export
    ("export", ["--workdir", "{in}/nowhere", "-o", "{out}"], "nowhere"),
    ("export", ["--workdir", "{run}", "-o", "{out}", "--sampler", "rk45"], "rk45"),
    ("export", ["--workdir", "{run}", "-o", "{out}", "--guidance", "2"], "unconditional"),
    ("export", ["--workdir", "{run}", "-o", "{out}", "--class", "1"], "not class-conditional"),
    ("export", ["--workdir", "{run}", "-o", "{in}/notes.txt/s.jaxexport"], "notes.txt is a file"),
    ("export", ["--workdir", "{run}", "-o", "{in}"], "is a folder"),
    # eval
    ("eval", ["--real", "{in}/photos", "--fake", "{in}/nowhere", "--size", "8x16", "-o", "{out}"],
     "nowhere"),
    ("eval", ["--real", "{in}/photos", "--fake", "{in}/photos", "--metrics", "swd,bogus",
              "-o", "{out}"], "bogus"),
    ("eval", ["--real", "{in}/photos", "--fake", "{in}/photos", "--n", "1", "-o", "{out}"],
     "--n must be >= 2"),
    ("eval", ["--real", "{in}/photos", "--fake", "{in}/photos", "--size", "0x5", "-o", "{out}"],
     "--size 0x5"),
    ("eval", ["--real", "{in}/photos", "--fake", "{in}/photos", "--size", "big", "-o", "{out}"],
     "'big'"),
    ("eval", ["--real", "{in}/photos", "--fake", "{in}/photos", "-o", "{in}/notes.txt/e.json"],
     "notes.txt is a file"),
    # comic
    ("comic", ["-o", "{out}"], "give input images"),
    ("comic", ["{in}/photo.png", "-o", "{out}", "--style", "noir"], "noir"),
    ("comic", ["{in}/photo.png", "-o", "{out}", "--set", "nope=1"], "nope"),
    ("comic", ["{in}/photo.png", "-o", "{out}", "--set", "line_weight"], "line_weight"),
    ("comic", ["{in}/photo.png", "-o", "{in}/photo.png"], "would overwrite the input"),
    ("comic", ["{in}/photo.png", "-o", "{in}/PHOTO.PNG"], "would overwrite the input"),
    ("comic", ["{in}/photo.png", "{in}/photo.jpg", "-o", "{in}/photo.png", "--page"],
     "would overwrite the input"),
    ("comic", ["{in}/photo.png", "-o", "{out}", "--page", "--page-width", "100000"],
     "page width"),
    ("comic", ["{in}/photo.png", "-o", "{out}", "--tile", "0"], "--tile"),
    ("comic", ["{in}/photo.png", "-o", "{out}", "--memory", "0"], "--memory"),
    ("comic", ["{in}/photo.png", "-o", "{in}/notes.txt/sub"], "notes.txt is a file"),
    ("comic", ["{in}/photo.png", "--examples", "-o", "{out}"], "--examples"),
    ("comic", ["{in}/photo.png", "-o", "{out}", "--caption", "hi"], "--page"),
    ("comic", ["{in}/photo.png", "-o", "{out}", "--model", "{in}/nowhere"], "nowhere"),
    ("comic", ["{in}/missing.png", "-o", "{out}"], "missing.png"),
    # vr
    ("vr", ["{in}/photo.png", "-o", "{out}", "--mode", "cube"], "'cube'"),
    ("vr", ["{in}/photo.png", "-o", "{out}", "--workdir", "{run}", "--fov", "200"], "(0, 180)"),
    ("vr", ["{in}/photo.png", "-o", "{out}", "--workdir", "{run}", "--height", "100000"],
     "--height"),
    ("vr", ["{in}/photo.png", "-o", "{out}"], "needs a panorama run"),
    ("vr", ["{in}/photo.png", "-o", "{out}", "--mode", "stereo", "--depth", "depth_anything"],
     "needs its weights file"),
    ("vr", ["{in}/photo.png", "-o", "{out}", "--workdir", "{in}/nowhere"], "nowhere"),
    ("vr", ["{in}/photo.png", "-o", "{in}/notes.txt/sub", "--workdir", "{run}"],
     "notes.txt is a file"),
    ("vr", ["{in}/photo.png", "-o", "{out}", "--workdir", "{run}", "--steps", "0"], "steps"),
    # demo
    ("demo", ["--workdir", "{in}/notes.txt/sub"], "notes.txt is a file"),
    ("demo", ["--workdir", "{out}", "--steps", "0"], "--steps"),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
  d = tmp_path_factory.mktemp("inputs")
  rng = np.random.default_rng(0)
  photo = (rng.uniform(size=(8, 16, 3)) * 255).astype(np.uint8)
  Image.fromarray(photo).save(d / "photo.png")
  Image.fromarray(photo).save(d / "photo.jpg", quality=90)
  Image.fromarray(photo).convert("RGBA").save(d / "rgba.png")
  Image.new("L", (10, 8), 255).save(d / "small.png")
  (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10)
  (d / "notes.txt").write_text("the user's notes")
  (d / "empty").mkdir()
  (d / "photos").mkdir()
  for i in range(3):
    Image.fromarray(np.roll(photo, i, axis=1)).save(d / "photos" / f"p{i}.png")
  return d


def _digest(folders) -> dict[str, str]:
  return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
          for folder in folders for p in sorted(pathlib.Path(folder).rglob("*"))}


def _id(i, case):
  return f"{(case.values if hasattr(case, 'values') else case)[0]}-{i}"


@pytest.mark.parametrize("command, args, needle", CASES,
                         ids=[_id(i, c) for i, c in enumerate(CASES)])
def test_bad_input(command, args, needle, inputs, trained_run, tmp_path, capsys):
  out = tmp_path / "out"
  argv = [command] + [a.format(run=trained_run, out=out, **{"in": inputs}) for a in args]
  before = _digest([inputs, trained_run])
  try:
    code = cli.main(argv)
  except SystemExit as e:  # argparse
    code = e.code
  captured = capsys.readouterr()
  lines = [line for line in captured.err.splitlines() if line.strip()]
  assert code != 0, (argv, captured)
  assert "Traceback" not in captured.err, captured.err
  assert len(lines) == 1, captured.err
  assert lines[0].startswith("genjax"), lines
  assert needle in lines[0], (needle, lines[0])
  assert not out.exists(), sorted(out.rglob("*"))
  assert _digest([inputs, trained_run]) == before
  assert not list(tmp_path.iterdir())  # no temporaries either
