"""Training the neural comic translator: paired (procedural targets) or unpaired (GAN).

  from genjax import configs
  train_translator(configs.load("genjax/configs/comic_tiny.py"), "runs/comic")

paired: random crops of the photo pool and, rendered inside the same jitted step by the
procedural renderer, their comic or manga layers with knobs drawn at random per image
from config.model.knob_ranges (an unlimited paired set). Loss: BCE on each predicted
layer + L1 on the composed image + L1 on its lightness gradients (edges) + optionally
a grayscale PatchGAN.

unpaired: photos and a folder of real comic or manga images (data.comics). Losses of
White-box Cartoonization (Wang & Yu, CVPR 2020) in pixel space: adversarial on the
surface (guided filter) and texture (random colour-shift grey) representations,
structure (L1 to the output's own SLIC superpixel fill), content (VGG19 relu4_2 feature
L1 to the input with unpaired.vgg_weights, a converted torchvision .npz, and an optional
Gram style term against the comic crops, perceptual.py; without weights the L1 of
box-filtered lightness), and optionally the paired losses (loss.paired_weight) so the knobs keep their meaning.

Everything that changes lives in TranslatorState; batches are drawn inside the step
from fold_in(rng, step), so a resumed run continues with the same batches. The photo
pools stay on the device (uint8). The step is a pure function, several steps run per
compiled call (lax.scan), jitted once with the state donated.

workdir/: config.json, checkpoints/ (Orbax, the whole state), translator/ (the EMA
generator for genjax comic --model), log.jsonl, eval.json, samples.png.

Photo pools, crops and knobs: translator_data; targets and loss terms: translator_losses;
held-out PSNR and sample sheets: translator_eval.
"""

import dataclasses
import functools
import json
import logging
import pathlib
import time
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax
import orbax.checkpoint as ocp

from genjax import files
from genjax.apps.comic import discriminator as disc_lib
from genjax.apps.comic import perceptual
from genjax.apps.comic import render as render_lib
from genjax.apps.comic import translator as tr
from genjax.apps.comic.translator_data import (RNG_IMPL, folder_pool, heldout_photos,
                                               make_key, photo_pool, sample_crops,
                                               sample_knobs)
from genjax.apps.comic.translator_eval import evaluate, save_samples
from genjax.apps.comic.translator_losses import (content, grad_l1, paired_losses,
                                                 render_targets, representations)
from genjax.image import cartoon_reps
from genjax.train.optimizer import make_optimizer

log = logging.getLogger("genjax.comic")

@flax.struct.dataclass
class TranslatorState:
  step: jax.Array       # int32 []
  params: Any           # generator
  ema_params: Any
  opt_state: Any
  disc: Any             # {"params": {name: ...}, "batch_stats": {name: ...}} ({} without GAN)
  disc_opt_state: Any
  rng: jax.Array        # uint32 key data of RNG_IMPL; the step's key is fold_in(rng, step)


@dataclasses.dataclass(frozen=True)
class StepSettings:
  """Everything static about a train step (hashable)."""
  model: tr.TranslatorConfig
  mode: str
  batch_size: int
  crop: int
  disc_names: tuple[str, ...]
  disc_features: tuple[int, ...]
  ema_decay: float
  image_l1: float
  edge: float
  layers: float
  adversarial: float
  gan: str
  surface: float
  texture: float
  structure: float
  content: float
  content_radius: int
  tv: float
  paired_weight: float
  perceptual: perceptual.PerceptualConfig

  @classmethod
  def from_config(cls, config) -> "StepSettings":
    mode = config.train.mode
    if mode not in ("paired", "unpaired"):
      raise ValueError(f"train.mode must be 'paired' or 'unpaired', got {mode!r}")
    disc_lib.get_gan_loss(config.loss.gan)
    loss = config.loss
    if mode == "paired":
      names = ("image",) if loss.adversarial > 0 else ()
    else:
      names = tuple(n for n, w in (("surface", loss.surface), ("texture", loss.texture)) if w > 0)
    return cls(model=tr.TranslatorConfig.from_config(config.model,
                                                     conv_impl=config.kernels.conv_impl),
               mode=mode, batch_size=config.train.batch_size, crop=config.data.crop_size,
               disc_names=names, disc_features=tuple(config.model.disc_features),
               ema_decay=config.train.ema_decay, image_l1=loss.image_l1, edge=loss.edge,
               layers=loss.layers, adversarial=loss.adversarial, gan=loss.gan,
               surface=loss.surface, texture=loss.texture, structure=loss.structure,
               content=loss.content, content_radius=loss.content_radius, tv=loss.tv,
               paired_weight=loss.paired_weight,
               perceptual=perceptual.PerceptualConfig.from_config(config))

  def discriminator(self) -> disc_lib.PatchDiscriminator:
    return disc_lib.PatchDiscriminator(self.disc_features, conv_impl=self.model.conv_impl)


def make_optimizers(config):
  """(generator tx, discriminator tx); non-finite updates are skipped."""
  g = optax.apply_if_finite(make_optimizer(config.train), max_consecutive_errors=20)
  d = optax.apply_if_finite(optax.adam(config.train.disc_learning_rate, b1=0.5, b2=0.999),
                            max_consecutive_errors=20)
  return g, d


def create_state(key: jax.Array, settings: StepSettings, g_tx, d_tx) -> TranslatorState:
  """Pure in key (make_key), so jax.eval_shape gives the checkpoint's abstract tree."""
  g_key, d_key, rng = jax.random.split(key, 3)
  params = tr.init_params(settings.model, g_key)
  disc = {"params": {}, "batch_stats": {}}
  gray = jnp.zeros((1, 32, 32, 1), jnp.float32)
  for i, name in enumerate(settings.disc_names):
    v = settings.discriminator().init(jax.random.fold_in(d_key, i), gray, update_stats=False)
    disc["params"][name], disc["batch_stats"][name] = v["params"], v["batch_stats"]
  return TranslatorState(step=jnp.zeros((), jnp.int32), params=params,
                         ema_params=jax.tree.map(jnp.copy, params), opt_state=g_tx.init(params),
                         disc=disc, disc_opt_state=d_tx.init(disc["params"]),
                         rng=jax.random.key_data(rng))


def _disc_apply(settings, disc, name, x, *, update_stats):
  variables = {"params": disc["params"][name], "batch_stats": disc["batch_stats"][name]}
  if update_stats:
    logits, new = settings.discriminator().apply(variables, x, update_stats=True,
                                                 mutable=["batch_stats"])
    return logits, new["batch_stats"]
  return settings.discriminator().apply(variables, x, update_stats=False), None


def train_step(state: TranslatorState, photos: jax.Array, comics: jax.Array | None, vgg=None,
               *, settings: StepSettings, g_tx, d_tx) -> tuple[TranslatorState, dict]:
  """One generator and (with a GAN) one discriminator update. Pure; jit with state donated.

  photos, comics: uint8 pools [N, H, W, 3] (comics only in unpaired mode); vgg: VGG19
  params of the unpaired content loss (perceptual.load_vgg) or None.
  """
  cfg = settings.model
  key = jax.random.fold_in(jax.random.wrap_key_data(state.rng, impl=RNG_IMPL), state.step)
  k_photo, k_knobs, k_comic, k_tex = jax.random.split(key, 4)
  b = settings.batch_size
  x = sample_crops(k_photo, photos, b, settings.crop)
  knobs = sample_knobs(k_knobs, cfg, b)
  origin = jnp.zeros((b, 2), jnp.float32)
  generator = tr.Generator(cfg)
  cond = tr.knob_vector(cfg, knobs, b)
  need_targets = settings.mode == "paired" or settings.paired_weight > 0
  if need_targets:
    layers_t, heads_t = render_targets(x, cfg, knobs)
  real = None
  if settings.mode == "unpaired":
    real = sample_crops(k_comic, comics, b, settings.crop)
  gan_d, gan_g = disc_lib.get_gan_loss(settings.gan)

  def g_loss(params):
    logits = generator.apply({"params": params}, x, cond)
    pred = render_lib.compose(tr.layers_from_logits(logits, cfg.style, knobs, origin))
    terms = {}
    total = 0.0
    if need_targets:
      p, image_t = paired_losses(logits, pred, layers_t, heads_t, settings)
      w = 1.0 if settings.mode == "paired" else settings.paired_weight
      total += w * (settings.layers * p["layers"] + settings.image_l1 * p["image_l1"]
                    + settings.edge * p["edge"])
      terms.update(p)
      terms["psnr"] = jnp.mean(-10.0 * jnp.log10(
          jnp.mean(jnp.square(pred - image_t), axis=(1, 2, 3)) + 1e-10))
    weights = {"image": settings.adversarial, "surface": settings.surface,
               "texture": settings.texture}
    for name, rep in representations(pred, k_tex, settings).items():
      logits_d, _ = _disc_apply(settings, state.disc, name, rep, update_stats=False)
      terms[f"g_{name}"] = gan_g(logits_d)
      total += weights[name] * terms[f"g_{name}"]
    if settings.mode == "unpaired":
      structure = cartoon_reps.structure(jax.lax.stop_gradient(pred))
      terms["structure"] = jnp.mean(jnp.abs(pred - structure))
      terms.update(content(pred, x, real, vgg, settings))
      terms["tv"] = grad_l1(pred, jnp.zeros_like(pred))
      total += (settings.structure * terms["structure"] + settings.content * terms["content"]
                + settings.perceptual.style_weight * terms.get("style", 0.0)
                + settings.tv * terms["tv"])
    terms["loss"] = total
    return total, (terms, pred)

  (_, (metrics, pred)), grads = jax.value_and_grad(g_loss, has_aux=True)(state.params)
  updates, opt_state = g_tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  # EMA warm-up (decay (1 + t) / (10 + t) early on): the average is not stuck on the init.
  t = state.step.astype(jnp.float32)
  decay = jnp.minimum(settings.ema_decay, (1.0 + t) / (10.0 + t))
  ema = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, state.ema_params, params)
  metrics["grad_norm"] = optax.tree.norm(grads)

  disc, disc_opt_state = state.disc, state.disc_opt_state
  if settings.disc_names:
    fake_reps = representations(jax.lax.stop_gradient(pred), k_tex, settings)
    real_images = real if settings.mode == "unpaired" else render_lib.compose(layers_t)
    real_reps = representations(real_images, k_tex, settings)

    def d_loss(dparams):
      stats, total, terms = {}, 0.0, {}
      d = {"params": dparams, "batch_stats": state.disc["batch_stats"]}
      for name in settings.disc_names:
        both = jnp.concatenate([real_reps[name], fake_reps[name]], axis=0)
        logits_d, stats[name] = _disc_apply(settings, d, name, both, update_stats=True)
        terms[f"d_{name}"] = gan_d(logits_d[:b], logits_d[b:])
        total += terms[f"d_{name}"]
      return total, (terms, stats)

    (_, (d_terms, stats)), d_grads = jax.value_and_grad(d_loss, has_aux=True)(disc["params"])
    d_updates, disc_opt_state = d_tx.update(d_grads, disc_opt_state, disc["params"])
    disc = {"params": optax.apply_updates(disc["params"], d_updates), "batch_stats": stats}
    metrics.update(d_terms)
  new_state = state.replace(step=state.step + 1, params=params, ema_params=ema,
                            opt_state=opt_state, disc=disc, disc_opt_state=disc_opt_state)
  return new_state, metrics


def multi_step(state, photos, comics, vgg=None, *, num_steps: int, **kwargs):
  """num_steps train_steps in one lax.scan (one plain step if 1); metrics averaged.

  On XLA:CPU (jax 0.10) convolution gradients inside a loop body ran ~10x slower than
  the same program outside one (0.38 s vs 0.036 s per generator gradient), so the
  configs default to train.steps_per_call = 1 there.
  """
  if num_steps == 1:
    return train_step(state, photos, comics, vgg, **kwargs)

  def body(s, _):
    return train_step(s, photos, comics, vgg, **kwargs)
  state, metrics = jax.lax.scan(body, state, None, length=num_steps)
  return state, jax.tree.map(jnp.mean, metrics)


# ---------------------------------------------------------------- the loop


def _checkpoint_manager(directory: pathlib.Path, keep: int) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(directory.absolute(), options=ocp.CheckpointManagerOptions(
      max_to_keep=keep, create=True, cleanup_tmp_directories=True))


def train_translator(config, workdir, *, progress: bool = True) -> dict[str, Any]:
  """Trains (or resumes) a translator in workdir; returns the final metrics and eval.

  Writes workdir/config.json, checkpoints/, translator/ (load with
  translator.load_translator(workdir)), log.jsonl, eval.json and samples.png.
  """
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  files.write_text(workdir / "config.json", config.to_json(indent=1))
  settings = StepSettings.from_config(config)
  g_tx, d_tx = make_optimizers(config)
  t_start = time.perf_counter()
  photos = jnp.asarray(photo_pool(config))
  comics = None
  if settings.mode == "unpaired":
    if not config.data.comics:
      raise ValueError("train.mode='unpaired' needs data.comics (a folder of comic images)")
    comics = jnp.asarray(folder_pool(config.data.comics, tuple(config.data.photo_size),
                                     max_images=config.data.max_images,
                                     max_pixels=config.data.max_image_pixels))
  log.info("%s; %d photos%s", tr.describe(settings.model), photos.shape[0],
           "" if comics is None else f", {comics.shape[0]} comic images")

  key = make_key(config.seed)
  create = functools.partial(create_state, settings=settings, g_tx=g_tx, d_tx=d_tx)
  # One device, explicitly: a fresh and a restored state then lower to the same program
  # (the persistent compilation cache serves a resumed run). The model is too small to
  # gain from data parallelism on CPU.
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  photos = jax.device_put(photos, device)
  comics = None if comics is None else jax.device_put(comics, device)
  vgg = None
  if settings.mode == "unpaired":
    vgg = jax.device_put(perceptual.load_vgg(settings.perceptual, content_weight=settings.content,
                                             radius=settings.content_radius), device)
  manager = _checkpoint_manager(workdir / "checkpoints", config.train.keep_checkpoints)
  latest = manager.latest_step()
  if latest is not None:
    abstract = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=device),
                            jax.eval_shape(create, key))
    state = manager.restore(latest, args=ocp.args.StandardRestore(abstract))
    log.info("resumed from step %d", latest)
  else:
    state = jax.jit(create, out_shardings=device)(key)

  kwargs = dict(settings=settings, g_tx=g_tx, d_tx=d_tx)
  spc = max(1, config.train.steps_per_call)
  step_fns = {}

  def run(n):
    if n not in step_fns:
      step_fns[n] = jax.jit(functools.partial(multi_step, num_steps=n, **kwargs),
                            donate_argnums=0)
    return step_fns[n](state, photos, comics, vgg)

  num_steps, limit = config.train.num_steps, config.train.time_limit_minutes * 60.0
  step = int(state.step)
  heldout = heldout_photos(config)
  history, metrics, stopped_early = [], {}, False
  log_file = (workdir / "log.jsonl").open("a")
  try:
    from tqdm import tqdm
    bar = tqdm(total=num_steps, initial=step, desc="comic translator", disable=not progress)
    while step < num_steps:
      n = spc if num_steps - step >= spc else 1
      state, metrics = run(n)
      step += n
      bar.update(n)
      boundary = lambda every: every and step // every != (step - n) // every
      if boundary(config.train.log_every) or step == num_steps:
        row = {"step": step, "seconds": round(time.perf_counter() - t_start, 1),
               **{k: round(float(v), 5) for k, v in jax.device_get(metrics).items()}}
        history.append(row)
        log_file.write(json.dumps(row) + "\n")
        log_file.flush()
        bar.set_postfix(loss=row["loss"], psnr=row.get("psnr"))
      if boundary(config.train.eval_every) and heldout:
        current = tr.Translator(settings.model, state.ema_params)
        row = {"step": step, **{f"{group}/{k}": v for group, photos in heldout.items()
                                for k, v in evaluate(current, photos).items()}}
        log_file.write(json.dumps(row) + "\n")
      if boundary(config.train.checkpoint_every):
        manager.save(step, args=ocp.args.StandardSave(state))
      if limit and time.perf_counter() - t_start > limit and step < num_steps:
        log.warning("train.time_limit_minutes reached at step %d of %d", step, num_steps)
        stopped_early = True
        break
    bar.close()
    if manager.latest_step() != step:
      manager.save(step, args=ocp.args.StandardSave(state), force=True)
    manager.wait_until_finished()
  finally:
    manager.close()
    log_file.close()
  train_seconds = time.perf_counter() - t_start
  translator = tr.Translator(settings.model, jax.device_get(
      state.ema_params if settings.ema_decay > 0 else state.params))
  tr.save_translator(workdir / "translator", translator)
  result = {"step": step, "train_seconds": round(train_seconds, 1),
            "stopped_early": stopped_early, "last": history[-1] if history else {},
            "params": tr.count_params(translator.params)}
  if heldout and (settings.mode == "paired" or settings.paired_weight > 0):
    result["heldout"] = {group: evaluate(translator, photos) for group, photos in heldout.items()}
    save_samples(workdir / "samples.png", translator,
                 [p for photos in heldout.values() for p in photos[:3]])
  files.write_json(workdir / "eval.json", result, indent=1)
  return result

