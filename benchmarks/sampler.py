"""Sampler benchmark: the whole DDIM loop as one XLA program vs one jitted call per step.

    python -m benchmarks.sampler [--config cifar] [--batch 16] [--steps 50] [--repeats 3]
        [--json benchmark_results/sampler.json]

Both variants start from the same noise z and do the same math (DDIM, eta = 0, on the
schedule's grid): `compiled` is one jitted `genjax.sample.make_sampler(...)` call that
runs all steps in a `lax.scan`; `per_step` jits one DDIM step and drives it from a Python
loop, so the difference between the two is the dispatch overhead the compiled loop
removes. Compiles outside the timers, checks the two outputs agree, then reports the
median of `--repeats` timed calls of each (interleaved), the dispatch cost alone (the
same Python loop calling a jitted step that does no work), images/s, compile times,
FLOP/s (XLA's count for one step, times the steps) and `memory_analysis()` of both.
"""

import argparse
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from genjax import configs, diffusion
from genjax import sample as genjax_sample
from genjax.train import loop

# Float32 on CPU: the two programs fuse differently, and 50 steps carry round-off along.
_AGREE_RTOL = 1e-4


def ddim_step(params, x, t, t_next, *, model, spec):
  """One deterministic DDIM step t -> t_next for the whole batch: x [B, H, W, C] float32.

  The update of genjax.diffusion.samplers (ddim, eta = 0), written out here so that
  the per-step variant is an independent check of the compiled loop."""
  def net(x_in, c_noise):
    return model.apply({"params": params}, x_in, c_noise, y=None, cond=None, train=False)

  a_t, s_t = spec.schedule.alpha_sigma(t)
  a_s, s_s = spec.schedule.alpha_sigma(t_next)
  x0_hat = diffusion.make_denoiser(net, spec)(x, jnp.full(x.shape[:1], t, jnp.float32))
  eps_hat = (x - a_t * x0_hat) / s_t
  return a_s * x0_hat + s_s * eps_hat


def bench(config_name: str, *, batch: int, steps: int, repeats: int, overrides=()) -> dict:
  config = configs.load(config_name, list(overrides))
  if config.model.num_classes or config.model.cond_channels:
    raise ValueError(f"config {config_name!r}: the benchmark samples unconditionally; "
                     f"set model.num_classes=0 and model.cond_channels=0")
  model, spec, _, _, create = loop.build(config)
  params = jax.jit(create)(jax.random.PRNGKey(0)).params
  h, w = config.data.image_size
  channels = config.model.out_channels
  z = jax.random.normal(jax.random.PRNGKey(1), (batch, h, w, channels), jnp.float32)
  key = jax.random.PRNGKey(2)  # unused by eta = 0 DDIM, an argument of the API

  # The compiled loop: the public API, the start noise given (so nothing is static).
  sample_fn = genjax_sample.make_sampler(model, spec, image_shape=(h, w), sampler="ddim",
                                         steps=steps, channels=channels)
  t = time.perf_counter()
  loop_compiled = jax.jit(sample_fn).lower(params, key, z).compile()
  loop_compile_s = time.perf_counter() - t

  # The per-step variant: one program for a step, t and t_next as arguments.
  grid = diffusion.samplers.sampling_grid("ddim", spec.schedule, steps)
  times = [jnp.asarray(v, jnp.float32) for v in np.asarray(grid)]
  _, sigma_start = spec.schedule.alpha_sigma(grid[0])
  x_start = jax.block_until_ready(sigma_start * z)
  t = time.perf_counter()
  step_compiled = jax.jit(functools.partial(ddim_step, model=model, spec=spec)).lower(
      params, x_start, times[0], times[1]).compile()
  step_compile_s = time.perf_counter() - t

  def per_step(params, x):
    for t_cur, t_next in zip(times[:-1], times[1:]):
      x = step_compiled(params, x, t_cur, t_next)
    return x

  # Check, then time.
  out_loop = np.asarray(loop_compiled(params, key, z), np.float64)
  out_steps = np.asarray(per_step(params, x_start), np.float64)
  rel = float(np.linalg.norm(out_loop - out_steps) / np.linalg.norm(out_steps))
  assert np.all(np.isfinite(out_loop)), "non-finite samples"
  assert rel < _AGREE_RTOL, f"compiled loop and per-step loop differ: relative error {rel:.2e}"

  # The dispatch cost alone: the same Python loop and arguments (params pytree included)
  # calling a step that does no work.
  null_compiled = jax.jit(lambda params, x, t, t_next: x + 0.0 * t_next).lower(
      params, x_start, times[0], times[1]).compile()

  def null_steps(params, x):
    for t_cur, t_next in zip(times[:-1], times[1:]):
      x = null_compiled(params, x, t_cur, t_next)
    return x

  # Interleaved, so that load from other processes on a shared machine hits both alike.
  loop_times, steps_times = [], []
  for _ in range(repeats):
    loop_times += common.time_call(loop_compiled, params, key, z, repeats=1, warmup=0)
    steps_times += common.time_call(per_step, params, x_start, repeats=1, warmup=0)
  loop_s, steps_s = common.median(loop_times), common.median(steps_times)
  dispatch_s = common.median(common.time_call(null_steps, params, x_start, repeats=5))
  # One step alone, waited for: the per-call time without overlapping dispatch.
  step_s = common.median(common.time_call(step_compiled, params, x_start, times[0], times[1],
                                          repeats=max(repeats, 5)))
  step_flops = common.compiled_flops(step_compiled)
  n_params = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(params))
  row = {"config": config_name, "params_m": n_params / 1e6, "batch": batch,
         "image_size": f"{h}x{w}", "sampler": "ddim", "steps": steps, "schedule":
         spec.schedule.name, "repeats": repeats,
         "compiled_loop_s": loop_s, "per_step_loop_s": steps_s,
         "single_step_ms": 1e3 * step_s,
         "overhead_s": steps_s - loop_s, "per_step_over_compiled": steps_s / loop_s,
         "dispatch_ms": 1e3 * dispatch_s, "dispatch_fraction": dispatch_s / steps_s,
         "compiled_loop_times_s": loop_times, "per_step_loop_times_s": steps_times,
         "images_per_s": batch / loop_s, "images_per_s_per_step_loop": batch / steps_s,
         "compile_loop_s": loop_compile_s, "compile_step_s": step_compile_s,
         "gflop_per_step": step_flops / 1e9 if step_flops else None,
         "gflops_compiled": steps * step_flops / loop_s / 1e9 if step_flops else None,
         "max_rel_diff": rel,
         "memory_loop": common.memory_analysis(loop_compiled),
         "memory_step": common.memory_analysis(step_compiled),
         "peak_rss_mb": common.peak_rss_bytes() / 2**20}
  return row


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--config", default="cifar")
  p.add_argument("--batch", type=int, default=16)
  p.add_argument("--steps", type=int, default=50)
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--json", default="benchmark_results/sampler.json")
  p.add_argument("overrides", nargs="*", help="config overrides, key=value")
  args = p.parse_args(argv)
  row = bench(args.config, batch=args.batch, steps=args.steps, repeats=args.repeats,
              overrides=args.overrides)
  row["temp_mb_loop"] = row["memory_loop"].get("temp", 0) / 2**20
  row["temp_mb_step"] = row["memory_step"].get("temp", 0) / 2**20
  print(f"device: {common.device_info()}")
  common.print_table([row], [
      ("config", "config", ""), ("params_m", "params (M)", ".2f"), ("batch", "batch", "d"),
      ("image_size", "size", ""), ("steps", "steps", "d"),
      ("compiled_loop_s", "compiled loop (s)", ".2f"),
      ("per_step_loop_s", f"{args.steps} jitted steps (s)", ".2f"),
      ("per_step_over_compiled", "ratio", ".3f"), ("single_step_ms", "1 step (ms)", ".1f"),
      ("dispatch_ms", f"dispatch {args.steps} calls (ms)", ".2f"),
      ("images_per_s", "images/s", ".2f"), ("compile_loop_s", "compile loop (s)", ".1f"),
      ("compile_step_s", "compile step (s)", ".1f"), ("gflops_compiled", "GFLOP/s", ".1f"),
      ("temp_mb_loop", "XLA temp loop (MiB)", ".1f"),
      ("temp_mb_step", "XLA temp step (MiB)", ".1f"), ("max_rel_diff", "rel diff", ".1e")])
  payload = {"benchmark": "sampler", "device": common.device_info(), "results": [row]}
  common.write_json(args.json, payload)
  print(f"wrote {args.json}")
  return payload


if __name__ == "__main__":
  import benchmarks
  benchmarks.setup()
  main()
