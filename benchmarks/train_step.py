"""Train-step benchmark: images/s, compile time and memory for the tiny and CIFAR configs.

    python -m benchmarks.train_step [--configs tiny,cifar] [--steps 10] [--conv-impl xla]
        [--set model.remat=True --set train.compute_dtype=bfloat16] [--json out/train_step.json]

--conv-impl before_conv_core: the models' convolution before the conv core existed.

Compiles outside the timer, checks the loss is finite, then times the jitted,
donated step (median of `--steps` single-step calls).
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from benchmarks import common
from genjax import configs
from genjax.kernels import conv, padding


BEFORE_CONV_CORE = "before_conv_core"


def conv2d_before_conv_core(x, w, *, stride: int, pad_mode: str):
  """The models' convolution before the conv core (commit 9e1f83b), kept here only as the
  baseline of `train_step_compare`: explicit padding, then XLA's VALID convolution (which
  XLA:CPU runs 2-4x slower than the same convolution with its own zero padding)."""
  kh, kw = w.shape[:2]
  xp = padding.pad(x, (kh - 1) // 2, (kw - 1) // 2, pad_mode)
  y = lax.conv_general_dilated(xp, w.astype(x.dtype), window_strides=(stride, stride),
                               padding="VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                               preferred_element_type=jnp.float32)
  return y.astype(x.dtype)


def bench_config(name: str, *, steps: int, conv_impl: str | None, overrides=()) -> dict:
  over = list(overrides) + ([f"kernels.conv_impl={conv_impl}"] if conv_impl else [])
  config = configs.load(name, over)
  compiled, state, batch, abstract, compile_s = common.compiled_train_step(config)
  times, metrics = common.time_train_steps(compiled, state, batch, steps)
  b = config.train.batch_size
  h, w = config.data.image_size
  step_s = common.median(times)
  n_params = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(abstract.params))
  return {"config": name, "conv_impl": conv_impl or config.kernels.conv_impl,
          "overrides": " ".join(overrides),
          "params_m": n_params / 1e6, "batch": b, "image_size": f"{h}x{w}",
          "step_ms": 1e3 * step_s, "images_per_s": b / step_s, "compile_s": compile_s,
          "cpu_ms": 1e3 * metrics["cpu_s_per_step"],
          "memory": common.memory_analysis(compiled), "peak_rss_mb": common.peak_rss_bytes() / 2**20,
          "page_faults_per_step": metrics["page_faults_per_step"]}


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--configs", default="tiny,cifar")
  p.add_argument("--steps", type=int, default=10)
  p.add_argument("--conv-impl", default=None, help="force a conv implementation (default: "
                 f"config); {BEFORE_CONV_CORE!r}: the convolution before the conv core")
  p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                 help="a config override (repeatable), e.g. model.remat=True")
  p.add_argument("--json", default="benchmark_results/train_step.json")
  args = p.parse_args(argv)
  if args.conv_impl == BEFORE_CONV_CORE:  # a benchmark-only implementation, this process only
    conv.IMPLEMENTATIONS[BEFORE_CONV_CORE] = conv2d_before_conv_core
  rows = [bench_config(n, steps=args.steps, conv_impl=args.conv_impl, overrides=args.set)
          for n in args.configs.split(",")]
  for r in rows:
    r["temp_mb"] = r["memory"].get("temp", 0) / 2**20
  print(f"device: {common.device_info()}")
  common.print_table(rows, [("config", "config", ""), ("conv_impl", "conv", ""),
                            ("params_m", "params (M)", ".2f"), ("batch", "batch", "d"),
                            ("image_size", "size", ""), ("step_ms", "step (ms)", ".1f"),
                            ("images_per_s", "images/s", ".1f"),
                            ("cpu_ms", "CPU ms / step", ".0f"), ("compile_s", "compile (s)", ".1f"),
                            ("temp_mb", "XLA temp (MiB)", ".1f"),
                            ("peak_rss_mb", "peak RSS (MiB)", ".0f"),
                            ("page_faults_per_step", "page faults / step", ".0f")])
  payload = {"benchmark": "train_step", "device": common.device_info(), "results": rows}
  common.write_json(args.json, payload)
  print(f"wrote {args.json}")
  return payload


if __name__ == "__main__":
  import benchmarks
  benchmarks.setup()
  main()
