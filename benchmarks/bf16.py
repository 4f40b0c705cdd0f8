"""bfloat16 compute against float32: the loss curve and the samples, not the speed.

    python -m benchmarks bf16 [--config tiny] [--steps 200] [--out benchmark_results/bf16]

Trains the config twice from the same seed and data, train.compute_dtype float32 and
bfloat16 (float32 master weights, optimizer and loss in both), each `--steps` steps,
and compares their logged loss curves (mean absolute and relative difference over the
run, and over its last quarter). Then samples the float32 run's EMA weights with both
compute dtypes (DDIM, 50 steps, the same start noise) and reports the PSNR of the
bfloat16 samples against the float32 ones (images in [0, 1]; higher is closer;
identical would be infinite). Speed is the peer benchmark's business
(`python -m benchmarks peer`, variant genjax_bf16).

Writes bf16.json and bf16.png (both loss curves) to --out.
"""

import argparse
import pathlib
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from genjax import configs
from genjax import sample as genjax_sample
from genjax.sample import load
from genjax.train import logbook, loop

DTYPES = ("float32", "bfloat16")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
  """PSNR in dB of images a against b, both in [-1, 1] (compared on [0, 1])."""
  mse = float(np.mean(((a - b) / 2.0) ** 2))
  return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(prog="python -m benchmarks bf16", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--config", default="tiny")
  p.add_argument("--steps", type=int, default=200)
  p.add_argument("--samples", type=int, default=16)
  p.add_argument("--out", default="benchmark_results/bf16")
  args = p.parse_args(argv)
  out = pathlib.Path(args.out)
  curves, samples = {}, {}
  with tempfile.TemporaryDirectory() as tmp:
    for dtype in DTYPES:
      config = configs.load(args.config, [
          f"train.compute_dtype={dtype}", f"train.num_steps={args.steps}", "train.log_every=10",
          f"train.sample_every={10 * args.steps}", f"train.checkpoint_every={args.steps}"])
      workdir = pathlib.Path(tmp) / dtype
      loop.train(config, workdir, progress=False)
      records = [r for r in logbook.read_records(workdir / "metrics.jsonl") if "loss" in r]
      curves[dtype] = ([r["step"] for r in records], [r["loss"] for r in records])
      print(f"{dtype}: final logged loss {curves[dtype][1][-1]:.4f}", flush=True)
    # The float32 run's weights, sampled with both compute dtypes from the same noise.
    params = load.restore_subtrees(pathlib.Path(tmp) / "float32")["ema_params"]
    for dtype in DTYPES:
      config = configs.load(args.config, [f"train.compute_dtype={dtype}"])
      model, spec, *_ = loop.build(config)
      h, w = config.data.image_size
      z = jax.random.normal(jax.random.PRNGKey(1), (args.samples, h, w, 3), jnp.float32)
      fn = jax.jit(genjax_sample.make_sampler(model, spec, image_shape=(h, w), sampler="ddim",
                                              steps=50, channels=3))
      samples[dtype] = np.asarray(fn(params, jax.random.PRNGKey(2), z), np.float64)
  (s32, l32), (s16, l16) = curves["float32"], curves["bfloat16"]
  if s32 != s16:
    raise RuntimeError(f"the two runs logged different steps: {s32} vs {s16}")
  l32, l16 = np.asarray(l32), np.asarray(l16)
  tail = slice(3 * len(l32) // 4, None)
  result = {
      "loss_float32_last_quarter": float(l32[tail].mean()),
      "loss_bfloat16_last_quarter": float(l16[tail].mean()),
      "loss_mean_abs_diff": float(np.abs(l16 - l32).mean()),
      "loss_mean_rel_diff": float((np.abs(l16 - l32) / np.abs(l32)).mean()),
      "loss_last_quarter_rel_diff": float(abs(l16[tail].mean() - l32[tail].mean())
                                          / l32[tail].mean()),
      "sample_psnr_db": psnr(np.clip(samples["bfloat16"], -1, 1), np.clip(samples["float32"], -1, 1)),
  }
  common.print_table([{"measure": k, "value": v} for k, v in result.items()],
                     [("measure", f"{args.config}, {args.steps} steps, bfloat16 vs float32", ""),
                      ("value", "value", ".4g")])
  payload = {"benchmark": "bf16", "config": args.config, "steps": args.steps,
             "device": common.device_info(), "result": result,
             "curves": {d: {"step": s, "loss": list(map(float, l))} for d, (s, l) in curves.items()}}
  common.write_json(out / "bf16.json", payload)
  import matplotlib  # noqa: PLC0415
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # noqa: PLC0415
  fig, ax = plt.subplots(figsize=(6, 3.5))
  for dtype, (steps, losses) in curves.items():
    ax.plot(steps, losses, label=dtype)
  ax.set(xlabel="step", ylabel="loss (mean of 10 steps)",
         title=f"{args.config}: bfloat16 vs float32 compute; sample PSNR "
               f"{result['sample_psnr_db']:.1f} dB")
  ax.legend()
  fig.tight_layout()
  fig.savefig(out / "bf16.png", dpi=120)
  plt.close(fig)
  print(f"wrote {out / 'bf16.json'}, {out / 'bf16.png'}")
  return payload


if __name__ == "__main__":
  import benchmarks
  benchmarks.setup()
  main()
