"""Unpaired comic training learns a style it was shown: style distance and content, before
and after training, on held-out photos.

    python -m benchmarks comic_style [--out benchmark_results/comic_style] [--steps 600]
        [--vgg vgg19.npz] [--style-weight 10] [--content-weight 1] [--minutes 20]

The "user's comics": pages in a style the translator is never paired on, made by the
procedural renderer (--style-set manga: screentone greys) from procedural photos that are
neither training nor held-out photos (indices 30000+), written as PNGs to OUT/comics/. The
translator predicts comic layers (model.style=comic) and trains unpaired only
(train.mode=unpaired, loss.paired_weight=0: it never sees a rendering of its own photos)
through the public entry, train_translator(config, workdir) (genjax.train's one loop) for
--steps; the "before" translator is the run's initial weights (initial_translator(config)). Losses: the White-box GAN terms,
the VGG19 content term and the Gram style term against the comic crops (perceptual.py).

VGG19: --vgg, a .npz from python -m genjax.models.convert_vgg19; without it (the published
weights cannot be downloaded here) a randomly initialised VGG19 (torchvision's init, seed 0)
is written to OUT/vgg19_random.npz and used for both training and the Gram metric: random
conv features measure texture statistics but carry no ImageNet semantics (the JSON says which).

Measured on --heldout procedural photos (indices 20000+), for the photo itself, the renderer's
own comic style (no learning), the renderer in the shown style (the target), and the
translator before and after training:
- style distance: Gram distance (perceptual.gram_distance at relu1_1..relu5_1, the same VGG) to
  the mean Gram matrix of the whole style set, mean over images; and the multi-scale SWD
  (genjax.metrics.swd: Laplacian-pyramid patches, independent of VGG; its descriptors are
  standardised per set, so it sees texture and structure, not global colour).
- content: edge F1 against the photo (edges: |gradient| > 0.04 of the lightness averaged over
  4x4 blocks, which turns screentone into grey; an edge counts as matched within 1 block),
  mean over images.
OUT/comic_style.json (all numbers), OUT/comic_style.png (rows: photo | before | after | a
style example), OUT/train/ (the run folder), OUT/translator_before/. --eval-only measures
the translators an earlier run left in OUT again, without training. Timings are wall clock
on a shared machine.
"""

import argparse
import json
import os
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common

TRAIN_OFFSET, HELDOUT_OFFSET, STYLE_OFFSET = 0, 20_000, 30_000
SIZE = (128, 160)


def photos(start: int, n: int) -> np.ndarray:
  from genjax.apps.comic.examples import procedural_photo
  return np.stack([procedural_photo(start + i, height=SIZE[0], width=SIZE[1]) for i in range(n)])


def render(images: np.ndarray, style: str, knobs=None) -> np.ndarray:
  """float [N, H, W, 3] in [0, 1] from uint8 photos, in batches of 8."""
  from genjax.apps.comic import render as render_lib
  x = images.astype(np.float32) / 255.0
  return np.concatenate([np.asarray(render_lib.render(jnp.asarray(x[i:i + 8]), style, knobs).image)
                         for i in range(0, len(x), 8)])


def translate(translator, images: np.ndarray) -> np.ndarray:
  from genjax.apps.comic import translator as tr
  x = jnp.asarray(images, jnp.float32) / 255.0
  return np.asarray(tr.translate(translator, x).image)


# ---------------------------------------------------------------- metrics


def _lightness(x: np.ndarray) -> np.ndarray:
  return x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114


def edge_map(images: np.ndarray, threshold: float = 0.04, scale: int = 4) -> np.ndarray:
  """[N, H, W, 3] in [0, 1] -> bool [N, H / scale, W / scale]: |central-difference gradient|
  of the lightness, averaged over scale x scale blocks first (so that screentone dots, whose
  period is at most ~8 px, become the grey they stand for), above `threshold` per block."""
  g = _lightness(np.asarray(images, np.float64))
  n, h, w = g.shape
  g = g[:, :h - h % scale, :w - w % scale].reshape(n, h // scale, scale, w // scale, scale)
  gy, gx = np.gradient(g.mean((2, 4)), axis=(1, 2))
  return np.hypot(gx, gy) > threshold


def _dilate(e: np.ndarray) -> np.ndarray:
  p = np.pad(e, ((0, 0), (1, 1), (1, 1)))
  h, w = e.shape[1:]
  return np.any([p[:, i:i + h, j:j + w] for i in range(3) for j in range(3)], axis=0)


def edge_f1(images: np.ndarray, reference: np.ndarray) -> float:
  """Mean over images of the F1 of images' edges against reference's, 1-px tolerance."""
  a, b = edge_map(images), edge_map(reference)
  precision = (a & _dilate(b)).sum((1, 2)) / np.maximum(a.sum((1, 2)), 1)
  recall = (b & _dilate(a)).sum((1, 2)) / np.maximum(b.sum((1, 2)), 1)
  f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
  return float(np.mean(f1))


def gram_fn(vgg):
  """Jitted images [1, H, W, 3] -> {style layer: Gram [1, C, C]} (perceptual.gram)."""
  from genjax.apps.comic import perceptual
  from genjax.models import vgg19
  return jax.jit(lambda x: {k: perceptual.gram(f) for k, f in
                            perceptual.features(vgg, x, vgg19.STYLE_LAYERS).items()})


def _grams(grams, images) -> list[dict]:
  return [jax.device_get(grams(jnp.asarray(images[i:i + 1], jnp.float32)))
          for i in range(len(images))]


def style_target(grams, style: np.ndarray) -> dict:
  """The style set's mean Gram matrix per layer."""
  g = _grams(grams, style)
  return {k: np.mean([x[k][0] for x in g], axis=0) for k in g[0]}


def gram_distance(grams, images: np.ndarray, target: dict) -> float:
  """Mean over images and layers of |Gram - target| / |target| (perceptual.gram_distance's
  measure, against the whole style set)."""
  return float(np.mean([[np.mean(np.abs(g[k][0] - t)) / np.mean(np.abs(t))
                         for k, t in target.items()] for g in _grams(grams, images)]))


def measure(name: str, images: np.ndarray, heldout: np.ndarray, style: np.ndarray, grams,
            target) -> dict:
  from genjax.metrics.swd import swd
  photo = heldout.astype(np.float32) / 255.0
  return {"name": name, "gram_distance": gram_distance(grams, images, target),
          "swd": swd(style, images, jax.random.key(0)).average,
          "edge_f1": edge_f1(images, photo)}


# ---------------------------------------------------------------- the experiment


def config_for(args, comics: pathlib.Path, vgg_path: pathlib.Path, steps: int):
  from genjax import configs
  return configs.load("genjax/configs/comic_tiny.py", [
      "model.style=comic", "model.cond_knobs=('smoothing', 'line_weight')",
      "model.knob_ranges=((0.0, 1.0), (0.6, 2.5))", "data.source=procedural", f"data.num_photos={args.photos}",
      f"data.photo_size={SIZE}", f"data.crop_size={args.crop}", "data.heldout=0",
      "data.heldout_skimage=()", f"data.comics={comics}", "train.mode=unpaired",
      "loss.paired_weight=0.0", f"train.batch_size={args.batch}", f"train.num_steps={steps}",
      f"train.time_limit_minutes={args.minutes}", "train.warmup_steps=50",
      f"train.learning_rate={args.lr}", "train.eval_every=0", "train.log_every=25",
      f"train.checkpoint_every={steps}", "train.ema_decay=0.99",
      f"unpaired.vgg_weights={vgg_path}", f"unpaired.style_weight={args.style_weight}",
      f"loss.content={args.content_weight}"])


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--out", default="benchmark_results/comic_style")
  p.add_argument("--vgg", default="", help="VGG19 .npz (convert_vgg19); default: random init")
  p.add_argument("--style-set", default="manga", help="renderer style of the user's comics")
  p.add_argument("--style-images", type=int, default=48)
  p.add_argument("--photos", type=int, default=64, help="training photos (procedural 0..N-1)")
  p.add_argument("--heldout", type=int, default=8)
  p.add_argument("--steps", type=int, default=600)
  p.add_argument("--batch", type=int, default=4)
  p.add_argument("--crop", type=int, default=64)
  p.add_argument("--lr", type=float, default=2e-3)
  p.add_argument("--style-weight", type=float, default=10.0)
  p.add_argument("--content-weight", type=float, default=1.0)
  p.add_argument("--minutes", type=float, default=20.0, help="training time limit")
  p.add_argument("--eval-only", action="store_true", help="measure the translators of --out")
  args = p.parse_args(argv)
  from genjax.apps.comic import translator as tr
  from genjax.apps.comic.train_translator import initial_translator, train_translator
  from genjax.image import io
  from genjax.models import vgg19

  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  comics = out / "comics"
  style = render(photos(STYLE_OFFSET, args.style_images), args.style_set)
  if not args.eval_only:
    for i, img in enumerate(style):
      io.save_png(comics / f"page{i:03d}.png", img)
  if args.vgg:
    vgg_path, vgg_source = pathlib.Path(args.vgg), f"weights file {args.vgg}"
  else:
    vgg_path = out / "vgg19_random.npz"
    if not args.eval_only:
      vgg19.save_npz(vgg_path, vgg19.init_params(jax.random.key(0)))
    vgg_source = "random init (torchvision's scheme, seed 0): no VGG19 weights file here"
  vgg = vgg19.load_npz(vgg_path, taps=vgg19.STYLE_LAYERS)

  workdir = out / "train"
  t0 = time.perf_counter()
  if args.eval_only:   # the translators of an earlier run with the same --out
    result = json.loads((workdir / "eval.json").read_text())
  else:
    config = config_for(args, comics, vgg_path, args.steps)
    tr.save_translator(out / "translator_before", initial_translator(config))
    result = train_translator(config, workdir)
  before = tr.load_translator(out / "translator_before")
  after = tr.load_translator(workdir / "translator")
  train_wall = None if args.eval_only else round(time.perf_counter() - t0, 1)

  heldout = photos(HELDOUT_OFFSET, args.heldout)
  outputs = {"photo": heldout.astype(np.float32) / 255.0,
             "renderer comic (no learning)": render(heldout, "comic"),
             f"renderer {args.style_set} (the shown style)": render(heldout, args.style_set),
             "translator before (step 0)": translate(before, heldout),
             f"translator after ({result['step']} steps)": translate(after, heldout)}
  grams = gram_fn(vgg)
  target = style_target(grams, style)
  rows = [measure(name, images, heldout, style, grams, target)
          for name, images in outputs.items()]
  common.print_table(rows, [("name", "held-out output", "s"),
                            ("gram_distance", "Gram dist.", ".3f"), ("swd", "SWD x1e3", ".1f"),
                            ("edge_f1", "edge F1", ".3f")])
  n = min(4, args.heldout)
  grid = np.stack([img for i in range(n) for img in (
      outputs["photo"][i], outputs["translator before (step 0)"][i],
      outputs[f"translator after ({result['step']} steps)"][i], style[i])])
  io.save_grid(out / "comic_style.png", grid, nrow=4)
  payload = {"device": {**common.device_info(), "load_average": os.getloadavg()},
             "vgg19": vgg_source, "style_set": args.style_set, "args": vars(args),
             "train": {"steps": result["step"], "stopped_early": result["stopped_early"],
                       "train_seconds": result["train_seconds"],
                       "wall_seconds": train_wall,   # init + training; None: --eval-only
                       "last": result["last"]},
             "heldout": {"photos": f"procedural {HELDOUT_OFFSET}..{HELDOUT_OFFSET + args.heldout - 1}",
                         "size": SIZE}, "rows": rows}
  common.write_json(out / "comic_style.json", payload)
  print(f"wrote {out / 'comic_style.json'} and {out / 'comic_style.png'}")
  return payload


if __name__ == "__main__":
  import benchmarks
  benchmarks.setup()
  main()
