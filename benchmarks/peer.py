"""genjax against PyTorch + diffusers, the same-size UNet, each in a process of its own.

    pip install -e ".[bench]"          # torch (CPU) and diffusers
    python -m benchmarks peer [--rounds 2] [--train-steps 5] [--ddim-repeats 2]
        [--variants diffusers,genjax,genjax_bf16] [--out benchmark_results/peer]

diffusers: `UNet2DModel` with block_out_channels (64, 128, 128, 128), two ResNet blocks
per level, attention at 16x16 (AttnDownBlock2D / AttnUpBlock2D at the second level),
8.95M parameters, AdamW, epsilon-prediction MSE with DDPMScheduler's noising; sampling
with DDIMScheduler, 50 steps, in `torch.inference_mode()`. genjax: the `cifar` config
(9.59M parameters), its train step (AdamW, EMA) and its compiled 50-step DDIM sampler,
as `genjax train` / `genjax sample` run them (conv implementation "auto": XLA's
convolution unless the autotune table or the optional oneDNN glue says otherwise; the
JSON records which). Variants:

  diffusers       PyTorch 2.x CPU, float32;
  genjax          float32 (the comparison the ratios are about);
  genjax_bf16     train.compute_dtype=bfloat16 (float32 master weights), beside it;
  diffusers_bf16  the model under torch.autocast("cpu", torch.bfloat16), genjax_bf16's peer;
  genjax_onednn   GENJAX_CONV_IMPL=winograd, only if the optional oneDNN glue is built.

Threads: XLA:CPU uses every core; torch is set to the same, torch.set_num_threads(
os.cpu_count()) (its default may be fewer). Every measurement (a variant's train step at
batch 32, or its 50-step DDIM at batch 16) is a process of its own, so its peak RSS
(ru_maxrss of that process, read by itself at the end) is its own; the variants
alternate, `--rounds` times, so load from other jobs falls on all alike. Times exclude
compilation / the first calls (warm-up), and are the median of the timed calls.

The ceiling. Each process also counts the FLOPs of its timed call (convolutions and
matrix products: torch's FlopCounterMode for diffusers, XLA's cost analysis of the
forward pass for genjax; the two UNets do the same work within 1%) and measures its
framework's float32 (genjax_bf16: bfloat16) 2048-square matrix-product rate. Counted
GFLOP/s over that rate is how close each runs to the arithmetic this CPU has, and the
best float32 rate over diffusers' counted GFLOP/s is the most any float32 direct
convolution could gain on diffusers here: past it only fewer FLOPs (Winograd) or
faster arithmetic (bfloat16) go.

Prints a table of medians with ratios genjax / diffusers, and writes peer.json and
peer.png to --out.
"""

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

TRAIN_BATCH, DDIM_BATCH, DDIM_STEPS = 32, 16, 50
VARIANTS = ("diffusers", "genjax", "genjax_bf16", "diffusers_bf16", "genjax_onednn")
TASKS = ("train", "ddim")
MATMUL_N = 2048  # the matrix product whose rate is each process's ceiling


def _peak_rss_mib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# ---------------------------------------------------------------------------- diffusers side


def _diffusers_unet():
  import torch  # noqa: PLC0415  (only the worker processes import torch)
  from diffusers import UNet2DModel  # noqa: PLC0415
  torch.manual_seed(0)
  return UNet2DModel(
      sample_size=32, in_channels=3, out_channels=3, layers_per_block=2,
      block_out_channels=(64, 128, 128, 128),
      down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
      up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"))


def diffusers_worker(task: str, steps: int, repeats: int, *, bf16: bool = False) -> dict:
  """bf16: the model's forward pass under torch.autocast("cpu", torch.bfloat16) (float32
  weights and optimizer), what a diffusers user asks for bfloat16 compute with."""
  import contextlib  # noqa: PLC0415
  import torch  # noqa: PLC0415
  from diffusers import DDIMScheduler, DDPMScheduler  # noqa: PLC0415
  torch.set_num_threads(os.cpu_count())  # as many as XLA:CPU uses
  model = _diffusers_unet()
  n_params = sum(p.numel() for p in model.parameters())
  g = torch.Generator().manual_seed(1)
  autocast = ((lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16
              else contextlib.nullcontext)
  times = []
  if task == "train":
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    noising = DDPMScheduler(num_train_timesteps=1000)
    x0 = torch.rand(TRAIN_BATCH, 3, 32, 32, generator=g) * 2 - 1

    def step():
      noise = torch.randn(x0.shape, generator=g)
      t = torch.randint(0, 1000, (TRAIN_BATCH,), generator=g)
      with autocast():
        pred = model(noising.add_noise(x0, noise, t), t).sample
      loss = torch.nn.functional.mse_loss(pred.float(), noise)
      opt.zero_grad(set_to_none=True)
      loss.backward()
      opt.step()
      return float(loss)

    for i in range(2 + steps):  # 2 warm-up steps
      t0 = time.perf_counter()
      loss = step()
      if i >= 2:
        times.append(time.perf_counter() - t0)
    if not torch.isfinite(torch.tensor(loss)):
      raise FloatingPointError("diffusers: non-finite loss")
    images = TRAIN_BATCH
  else:
    model.eval()
    sched = DDIMScheduler(num_train_timesteps=1000)

    def sample(n_steps):
      sched.set_timesteps(n_steps)
      x = torch.randn(DDIM_BATCH, 3, 32, 32, generator=g)
      with torch.inference_mode():
        for t in sched.timesteps:
          with autocast():
            eps = model(x, t).sample
          x = sched.step(eps.float(), t, x).prev_sample
      return x

    sample(2)  # warm-up
    for _ in range(repeats):
      t0 = time.perf_counter()
      x = sample(DDIM_STEPS)
      times.append(time.perf_counter() - t0)
    if not torch.isfinite(x).all():
      raise FloatingPointError("diffusers: non-finite samples")
    images = DDIM_BATCH
  return {"params_m": n_params / 1e6, "times": times, "images": images,
          "threads": torch.get_num_threads(), "torch": torch.__version__,
          "conv": "PyTorch (oneDNN)" + (", autocast bfloat16" if bf16 else ""), "gflop": _diffusers_gflop(model, task),
          "matmul_gflops": _torch_matmul_gflops(torch.bfloat16 if bf16 else torch.float32)}


def _diffusers_gflop(model, task: str) -> float:
  """GFLOP of one timed call (a train step, or a whole DDIM sample): convolutions and
  matrix products, counted by torch's FlopCounterMode (a backward pass counts twice its
  forward pass); the elementwise work is not counted."""
  import torch  # noqa: PLC0415
  from torch.utils.flop_counter import FlopCounterMode  # noqa: PLC0415
  batch = TRAIN_BATCH if task == "train" else DDIM_BATCH
  x, t = torch.randn(batch, 3, 32, 32), torch.randint(0, 1000, (batch,))
  with FlopCounterMode(display=False) as count:
    if task == "train":
      model(x, t).sample.square().mean().backward()
      model.zero_grad(set_to_none=True)
    else:
      with torch.inference_mode():
        model(x, t)
  return count.get_total_flops() / 1e9 * (1 if task == "train" else DDIM_STEPS)


def _torch_matmul_gflops(dtype) -> float:
  """PyTorch's MATMUL_N-square matrix product rate here in `dtype`, median of 7 calls."""
  import torch  # noqa: PLC0415
  a = torch.randn(MATMUL_N, MATMUL_N).to(dtype)
  return _matmul_rate(lambda: a @ a)


# ------------------------------------------------------------------------------ genjax side


def genjax_worker(task: str, steps: int, repeats: int, *, dtype: str, config_name: str) -> dict:
  # First: the benchmarks package applies genjax's process settings before jax starts.
  from benchmarks import common  # noqa: PLC0415
  import jax  # noqa: PLC0415
  import jax.numpy as jnp  # noqa: PLC0415
  import numpy as np  # noqa: PLC0415

  from genjax import configs  # noqa: PLC0415
  from genjax import sample as genjax_sample  # noqa: PLC0415
  from genjax.kernels import autotune  # noqa: PLC0415
  from genjax.train import loop  # noqa: PLC0415
  config = configs.load(config_name, [f"train.compute_dtype={dtype}",
                                      f"train.batch_size={TRAIN_BATCH}", "mesh.data=1"])
  if task == "train":
    compiled, state, batch, abstract, compile_s = common.compiled_train_step(config)
    times, _ = common.time_train_steps(compiled, state, batch, steps)
    n_params = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(abstract.params))
    images = TRAIN_BATCH
  else:
    model, spec, _, _, create = loop.build(config)
    params = _host_params(jax.eval_shape(create, jax.random.PRNGKey(0)).params)
    n_params = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(params))
    h, w = config.data.image_size
    z = jax.random.normal(jax.random.PRNGKey(1), (DDIM_BATCH, h, w, 3), jnp.float32)
    fn = genjax_sample.make_sampler(model, spec, image_shape=(h, w), sampler="ddim",
                                    steps=DDIM_STEPS, channels=3)
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(params, jax.random.PRNGKey(2), z).compile()
    compile_s = time.perf_counter() - t0
    times = common.time_call(compiled, params, jax.random.PRNGKey(2), z, repeats=repeats,
                             warmup=1)
    out = compiled(params, jax.random.PRNGKey(2), z)
    if not bool(jnp.all(jnp.isfinite(out))):
      raise FloatingPointError("genjax: non-finite samples")
    images = DDIM_BATCH
  return {"params_m": n_params / 1e6, "times": times, "images": images,
          "compile_s": compile_s, "gflop": _genjax_gflop(config, task),
          "matmul_gflops": _jax_matmul_gflops(dtype),
          "conv": sorted(set(autotune.used_choices().values()))
          or [os.environ.get("GENJAX_CONV_IMPL") or "xla"], "jax": jax.__version__}


def _host_params(abstract):
  """Parameters of `abstract`'s shapes, drawn on the host (normal, std 0.02), put on the
  device: what `genjax sample` has after reading a checkpoint. Compiling the training
  state's initialisation instead (as this benchmark did before 2026-12-06) leaves its
  compiler's memory in the process: 636 MiB resident before the sampler is even lowered,
  where `genjax sample` of a cifar run peaks at 622-659 MiB in all (/usr/bin/time -v)."""
  import jax  # noqa: PLC0415
  import numpy as np  # noqa: PLC0415
  rng = np.random.default_rng(0)
  return jax.tree.map(
      lambda a: jax.device_put((0.02 * rng.standard_normal(a.shape)).astype(a.dtype)), abstract)


def _genjax_gflop(config, task: str) -> float:
  """GFLOP of one timed call, as _diffusers_gflop counts them: XLA's cost analysis of the
  model's forward pass (float32) at the call's batch, times 3 for a train step (forward,
  input and weight gradients) or times DDIM_STEPS for a sample. XLA counts elementwise
  operations too; at these shapes they add under 1% to the convolutions and products."""
  import jax  # noqa: PLC0415
  import jax.numpy as jnp  # noqa: PLC0415
  from genjax.train import loop  # noqa: PLC0415
  model, *_, create = loop.build(config)
  params = jax.eval_shape(create, jax.random.PRNGKey(0)).params
  batch = TRAIN_BATCH if task == "train" else DDIM_BATCH
  h, w = config.data.image_size
  x = jax.ShapeDtypeStruct((batch, h, w, 3), jnp.float32)
  t = jax.ShapeDtypeStruct((batch,), jnp.int32)
  forward = jax.jit(lambda p, x, t: model.apply({"params": p}, x, t)).lower(params, x, t)
  return forward.cost_analysis()["flops"] / 1e9 * (3 if task == "train" else DDIM_STEPS)


def _jax_matmul_gflops(dtype: str) -> float:
  """jax's MATMUL_N-square matrix product rate here in `dtype` (float32 accumulation),
  median of 7 calls."""
  import jax  # noqa: PLC0415
  import jax.numpy as jnp  # noqa: PLC0415
  a = jnp.ones((MATMUL_N, MATMUL_N), dtype)
  product = jax.jit(lambda a: jnp.dot(a, a, preferred_element_type=jnp.float32))
  return _matmul_rate(lambda: product(a).block_until_ready())


def _matmul_rate(call) -> float:
  """GFLOP/s of a MATMUL_N-square product `call`, median of 7 calls after 2 warm-ups."""
  for _ in range(2):
    call()
  times = []
  for _ in range(7):
    t = time.perf_counter()
    call()
    times.append(time.perf_counter() - t)
  return 2 * MATMUL_N**3 / sorted(times)[3] / 1e9


def worker(variant: str, task: str, steps: int, repeats: int, config_name: str) -> dict:
  if variant.startswith("diffusers"):
    result = diffusers_worker(task, steps, repeats, bf16=variant == "diffusers_bf16")
  else:
    result = genjax_worker(task, steps, repeats, config_name=config_name,
                           dtype="bfloat16" if variant == "genjax_bf16" else "float32")
  result["seconds"] = sorted(result["times"])[len(result["times"]) // 2]
  result["images_per_s"] = result["images"] / result["seconds"]
  result["gflops"] = result["gflop"] / result["seconds"]
  result["pct_matmul"] = 100 * result["gflops"] / result["matmul_gflops"]
  result["peak_rss_mib"] = _peak_rss_mib()
  return result


# ---------------------------------------------------------------------------------- driver


def run_worker(variant: str, task: str, args) -> dict:
  env = {**os.environ}
  env.pop("GENJAX_CONV_IMPL", None)
  if variant == "genjax_onednn":
    env["GENJAX_CONV_IMPL"] = "winograd"
  # The repository root must not be on the diffusers process's path: its kernels/ folder
  # would shadow PyPI's `kernels`, which diffusers imports. That process runs this file as a
  # script with -P (no script folder on the path) and imports neither jax nor genjax, nor
  # gets genjax's malloc settings; the genjax ones run `-m benchmarks.peer` from the root.
  root = str(pathlib.Path(__file__).resolve().parents[1])
  paths = [q for q in env.get("PYTHONPATH", "").split(os.pathsep)
           if q and pathlib.Path(q).resolve() != pathlib.Path(root)]
  if variant.startswith("diffusers"):
    env["PYTHONPATH"] = os.pathsep.join(paths)
    start = ["-P", str(pathlib.Path(__file__).resolve())]
  else:
    env["PYTHONPATH"] = os.pathsep.join([root, *paths])
    start = ["-m", "benchmarks.peer"]
  cmd = [sys.executable, *start, "--worker", variant, "--task", task,
         "--train-steps", str(args.train_steps), "--ddim-repeats", str(args.ddim_repeats),
         "--genjax-config", args.genjax_config]
  done = subprocess.run(cmd, env=env, capture_output=True, text=True)
  if done.returncode != 0:
    raise RuntimeError(f"{variant} {task}: {' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
  return json.loads(done.stdout.strip().splitlines()[-1])


def _chart(summary: dict, variants: list[str], path: pathlib.Path) -> None:
  import matplotlib  # noqa: PLC0415
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # noqa: PLC0415
  panels = [("train", "images_per_s", "train step, batch 32\nimages/s (higher is better)"),
            ("ddim", "images_per_s", f"{DDIM_STEPS}-step DDIM, batch 16\nimages/s (higher is better)"),
            ("train", "peak_rss_mib", "peak RSS of the training process\nGiB (lower is better)")]
  fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
  colors = {"diffusers": "#ee4c2c", "genjax": "#1f77b4", "genjax_bf16": "#6baed6", "diffusers_bf16": "#f5a08c",
            "genjax_onednn": "#2ca02c"}
  for ax, (task, metric, title) in zip(axes, panels):
    vals = [summary[v][task][metric] / (1024 if metric == "peak_rss_mib" else 1) for v in variants]
    bars = ax.bar(variants, vals, color=[colors[v] for v in variants])
    base = vals[variants.index("diffusers")] if "diffusers" in variants else None
    for b, v in zip(bars, vals):
      label = f"{v:.2f}" + (f"\n{v / base:.2f}x" if base else "")
      ax.annotate(label, (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="x", labelsize=8, rotation=15)
    ax.margins(y=0.25)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def _ceilings(summary: dict, variants: list[str], tasks: list[str]) -> dict:
  """Per task, the most any float32 direct convolution could gain on diffusers here: the
  best float32 matrix-product rate measured by any process of the run, over diffusers'
  counted GFLOP/s (the FLOPs are the work itself; only fewer FLOPs, e.g. Winograd, or
  faster arithmetic, e.g. bfloat16, go past it). {} without a diffusers variant."""
  if "diffusers" not in variants:
    return {}
  out = {}
  for t in tasks:
    rate = max(summary[v][t]["matmul_gflops"] for v in variants if not v.endswith("_bf16"))
    out[t] = {"matmul_gflops": rate, "diffusers_gflops": summary["diffusers"][t]["gflops"],
              "ratio": rate / summary["diffusers"][t]["gflops"]}
  return out


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(prog="python -m benchmarks peer", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--rounds", type=int, default=2)
  p.add_argument("--train-steps", type=int, default=5, help="timed train steps per process")
  p.add_argument("--ddim-repeats", type=int, default=2, help="timed 50-step DDIM calls per process")
  p.add_argument("--variants", default=None, help=f"any of {', '.join(VARIANTS)} (default: "
                 "diffusers, genjax, genjax_bf16, and genjax_onednn if its glue is built)")
  p.add_argument("--tasks", default="train,ddim")
  p.add_argument("--out", default="benchmark_results/peer")
  p.add_argument("--genjax-config", default="cifar",
                 help="genjax's side (default cifar, the same-size peer; another config, e.g. "
                      "tiny, only checks that the benchmark runs)")
  p.add_argument("--worker", help=argparse.SUPPRESS)
  p.add_argument("--task", help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  if args.worker:
    print(json.dumps(worker(args.worker, args.task, args.train_steps, args.ddim_repeats,
                            args.genjax_config)))
    return {}

  from benchmarks import common  # noqa: PLC0415
  if args.variants:
    variants = args.variants.split(",")
    if not set(variants) <= set(VARIANTS):
      p.error(f"--variants {args.variants!r}; valid: {', '.join(VARIANTS)}")
  else:
    from genjax.kernels import onednn_build  # noqa: PLC0415
    variants = [v for v in VARIANTS if v != "genjax_onednn" or onednn_build.available()]
  tasks = args.tasks.split(",")
  runs = {v: {t: [] for t in tasks} for v in variants}
  for r in range(args.rounds):
    for task in tasks:
      for v in variants:
        res = run_worker(v, task, args)
        runs[v][task].append(res)
        print(f"round {r + 1} {task:5s} {v:13s} {res['images_per_s']:7.2f} images/s  "
              f"peak RSS {res['peak_rss_mib']:6.0f} MiB", flush=True)

  def med(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else 0.5 * (xs[len(xs) // 2 - 1] + xs[len(xs) // 2])

  summary = {v: {t: {"images_per_s": med([x["images_per_s"] for x in runs[v][t]]),
                     "peak_rss_mib": med([x["peak_rss_mib"] for x in runs[v][t]]),
                     "rounds_images_per_s": [x["images_per_s"] for x in runs[v][t]],
                     "rounds_peak_rss_mib": [x["peak_rss_mib"] for x in runs[v][t]],
                     "compile_s": med([x.get("compile_s", 0.0) for x in runs[v][t]]) or None,
                     **{k: med([x[k] for x in runs[v][t]])
                        for k in ("gflop", "gflops", "matmul_gflops", "pct_matmul")},
                     "params_m": runs[v][t][0]["params_m"], "conv": runs[v][t][0]["conv"]}
                 for t in tasks} for v in variants}
  rows = []
  for task, metric, label in (("train", "images_per_s", f"train step, batch {TRAIN_BATCH}, images/s"),
                              ("ddim", "images_per_s", f"{DDIM_STEPS}-step DDIM, batch {DDIM_BATCH}, images/s"),
                              ("train", "peak_rss_mib", "peak RSS, train process, MiB"),
                              ("ddim", "peak_rss_mib", "peak RSS, DDIM process, MiB"),
                              ("train", "gflops", "train step, counted GFLOP/s"),
                              ("ddim", "gflops", "DDIM, counted GFLOP/s"),
                              ("train", "pct_matmul", "train step, % of matmul rate"),
                              ("ddim", "pct_matmul", "DDIM, % of matmul rate"),
                              ("train", "compile_s", "compile, train step, s"),
                              ("ddim", "compile_s", "compile, DDIM sampler, s")):
    if task not in tasks:
      continue
    row = {"measure": label}
    for v in variants:
      row[v] = summary[v][task][metric]
      if ("diffusers" in variants and v != "diffusers"
          and metric not in ("compile_s", "pct_matmul")):
        row[f"{v}/diffusers"] = summary[v][task][metric] / summary["diffusers"][task][metric]
    rows.append(row)
  columns = [("measure", "median of rounds", "")]
  for v in variants:
    columns.append((v, v, ".2f"))
    if v != "diffusers" and "diffusers" in variants:
      columns.append((f"{v}/diffusers", f"{v} / diffusers", ".2f"))
  print(f"{args.rounds} rounds, alternated; each cell a process of its own; "
        f"torch threads = XLA threads = {os.cpu_count()} (all cores)")
  common.print_table(rows, columns)
  for v in variants:
    print(f"  {v}: {summary[v][tasks[0]]['params_m']:.2f}M parameters, conv: "
          f"{summary[v][tasks[0]]['conv']}, " + ", ".join(
              f"{t} {summary[v][t]['gflop']:.0f} GFLOP per call, matmul "
              f"{summary[v][t]['matmul_gflops']:.0f} GFLOP/s" for t in tasks))
  ceilings = _ceilings(summary, variants, tasks)
  for task, c in ceilings.items():
    print(f"  {task}: at the float32 matrix-product rate ({c['matmul_gflops']:.0f} GFLOP/s, the "
          f"best measured here) a direct-convolution step doing diffusers' FLOPs would run "
          f"at most {c['ratio']:.2f}x diffusers")
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  payload = {"benchmark": "peer", "genjax_config": args.genjax_config, "rounds": args.rounds, "train_steps": args.train_steps,
             "ddim_repeats": args.ddim_repeats, "device": common.device_info(),
             "threads": os.cpu_count(), "summary": summary, "table": rows,
             "ceilings": ceilings,
             "runs": {v: {t: [{k: x[k] for k in x if k != "times"} for x in runs[v][t]]
                          for t in tasks} for v in variants}}
  common.write_json(out / "peer.json", payload)
  (out / "peer.md").write_text(common.markdown_table(rows, columns))
  if set(tasks) == set(TASKS):
    _chart(summary, variants, out / "peer.png")
  print(f"wrote {out / 'peer.json'}, {out / 'peer.md'}" +
        (f", {out / 'peer.png'}" if set(tasks) == set(TASKS) else ""))
  return payload


if __name__ == "__main__":
  if __package__:   # `-m benchmarks.peer` (genjax workers); the diffusers worker runs as a
    import benchmarks  # bare script, without the repository on its path or genjax's settings
    benchmarks.setup()
  main()
