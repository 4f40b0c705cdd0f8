"""Comic benchmark: megapixels/s of the neural translator vs the procedural renderer.

    python -m benchmarks comic [--model runs/comic_tiny] [--sizes 512x512,1024x768]
        [--batch 1] [--repeats 5] [--json benchmark_results/comic.json]

Both turn the same photos (procedural landscapes) into the same layers (ink, flat, tone:
render.render_layers vs translator.translate_layers, the screentone drawn per output
pixel in both) in the same process, interleaved. Each is compiled outside the timers;
then, with a trained --model, the translator is checked against the renderer (PSNR of
the composed images, default knobs); without one, a translator of the comic_tiny
architecture with its initial weights is timed (its speed does not depend on the
weights). Reported per size: the median wall time and process CPU time of --repeats
calls, megapixels/s from both, the speed ratio, the translator's FLOPs (XLA's count) and
the compiled memory of both (memory_analysis: arguments + outputs + temporaries), the
device kind and the load average (the CPU may be shared).
"""

import argparse
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common


def _bytes(mem: dict) -> int:
  return sum(mem.get(k, 0) for k in ("argument", "output", "temp"))


def load_or_init(model: str | None, config_path: str):
  """(translator, trained?) from a training workdir, or the config's architecture at init."""
  from genjax import configs
  from genjax.apps.comic import translator, translator_data, translator_step_config
  if model:
    return translator.load_translator(model), True
  config = configs.load(config_path)
  cfg = translator_step_config.StepConfig.from_config(config).model
  return translator.Translator(cfg, translator.init_params(cfg, translator_data.make_key(0))), \
      False


def bench_size(tr_model, trained: bool, h: int, w: int, *, batch: int, repeats: int) -> dict:
  from genjax.apps.comic import render, translator
  from genjax.apps.comic.examples import procedural_photo
  from genjax.metrics.paired import psnr
  style = tr_model.config.style
  photos = np.stack([procedural_photo(500 + i, height=h, width=w) for i in range(batch)])
  images = jnp.asarray(photos, jnp.float32) / 255.0
  knobs = tr_model.config.default_knobs()

  render_fn = functools.partial(render.render_layers, style=style, knobs=knobs)
  translate_fn = functools.partial(translator.translate_layers, tr_model, knobs=knobs)
  # Compile (and warm) both outside the timers.
  ref = jax.block_until_ready(render_fn(images))
  out = jax.block_until_ready(translate_fn(images))
  row = {"size": f"{h}x{w}", "batch": batch, "megapixels": batch * h * w / 1e6}
  if trained:
    row["psnr_db"] = float(jnp.mean(psnr(render.compose(out), render.compose(ref),
                                         data_range=1.0)))
  # Compiled-program statistics of the translator's jitted core and the renderer's.
  b = images.shape[0]
  runtime = jax.tree.map(lambda v: jnp.broadcast_to(jnp.asarray(v, jnp.float32), (b,)), knobs)
  origin = jnp.zeros((b, 2), jnp.float32)
  t_comp = translator._translate.lower(tr_model.params, images, runtime, origin,
                                       config=tr_model.config).compile()
  palette = render.fit_palette(images, style, knobs)
  r_comp = render._layers.lower(images, runtime, origin, palette, style=style).compile()
  t_mem, r_mem = common.memory_analysis(t_comp), common.memory_analysis(r_comp)
  row["translator_flops_per_pixel"] = (common.compiled_flops(t_comp) or 0.0) / (b * h * w)
  row["translator_bytes_per_pixel"] = _bytes(t_mem) / (b * h * w)
  row["renderer_bytes_per_pixel"] = _bytes(r_mem) / (b * h * w)

  walls = {"translator": [], "renderer": []}
  cpus = {"translator": [], "renderer": []}
  for _ in range(repeats):  # interleaved, so both see the same machine load
    for name, fn in (("translator", translate_fn), ("renderer", render_fn)):
      wall, cpu = common.time_and_cpu(fn, images)
      walls[name].append(wall)
      cpus[name].append(cpu)
  for name in walls:
    row[f"{name}_s"] = common.median(walls[name])
    row[f"{name}_mp_s"] = row["megapixels"] / row[f"{name}_s"]
    row[f"{name}_cpu_s"] = common.median(cpus[name])
    row[f"{name}_mp_cpu_s"] = row["megapixels"] / row[f"{name}_cpu_s"]
  row["speedup"] = row["translator_mp_s"] / row["renderer_mp_s"]
  row["speedup_cpu"] = row["translator_mp_cpu_s"] / row["renderer_mp_cpu_s"]
  return row


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--model", default=None, help="translator workdir (train_translator output)")
  p.add_argument("--config", default="genjax/configs/comic_tiny.py",
                 help="architecture to time when no --model is given")
  p.add_argument("--sizes", default="512x512,1024x768")
  p.add_argument("--batch", type=int, default=1)
  p.add_argument("--repeats", type=int, default=5)
  p.add_argument("--json", default="benchmark_results/comic.json")
  args = p.parse_args(argv)
  model, trained = load_or_init(args.model, args.config)
  from genjax.apps.comic import translator
  print(translator.describe(model.config), "| trained" if trained else "| initial weights")
  rows = []
  for size in args.sizes.split(","):
    h, w = (int(v) for v in size.lower().split("x"))
    rows.append(bench_size(model, trained, h, w, batch=args.batch, repeats=args.repeats))
  info = {**common.device_info(), "load_average": os.getloadavg(),
          "translator_params": translator.count_params(model.params)}
  print(info)
  common.print_table(rows, [
      ("size", "size", "s"), ("translator_mp_s", "translator MP/s", ".2f"),
      ("renderer_mp_s", "renderer MP/s", ".2f"), ("speedup", "ratio", ".2f"),
      ("translator_mp_cpu_s", "transl. MP/CPU-s", ".2f"),
      ("renderer_mp_cpu_s", "render. MP/CPU-s", ".2f"), ("speedup_cpu", "ratio (CPU)", ".2f"),
      ("psnr_db", "PSNR dB", ".2f"), ("translator_flops_per_pixel", "FLOP/px", ".0f"),
      ("translator_bytes_per_pixel", "transl. B/px", ".0f"),
      ("renderer_bytes_per_pixel", "render. B/px", ".0f")])
  payload = {"device": info, "style": model.config.style, "trained": trained, "rows": rows}
  if args.json:
    common.write_json(args.json, payload)
    print(f"wrote {args.json}")
  return payload


if __name__ == "__main__":
  import benchmarks
  benchmarks.setup()
  main()
