"""The comic translator's train step: generator and (with a GAN) discriminator updates.

paired: random crops of the photo pool and, rendered inside the same jitted step by the
procedural renderer, their comic or manga layers with knobs drawn at random per image
from config.model.knob_ranges (an unlimited paired set). Loss: BCE on each predicted
layer + L1 on the composed image + L1 on its lightness gradients (edges) + optionally
a grayscale PatchGAN.

unpaired: photos and a pool of real comic or manga images. Losses of White-box
Cartoonization (Wang & Yu, CVPR 2020) in pixel space: adversarial on the surface (guided
filter) and texture (random colour-shift grey) representations, structure (L1 to the
output's own SLIC superpixel fill), content (translator_losses.content_loss: VGG19 feature
L1 with unpaired.vgg_weights, and an optional Gram style term against the comic crops;
without weights a filtered-image L1), and optionally the paired losses (loss.paired_weight)
so the knobs keep their meaning.

Batches are drawn inside the step from fold_in(rng, step) (a resumed run continues with the
same batches); the pools stay on the devices (uint8, replicated) and the crops are split
over the mesh's batch axes. EMA and the non-finite guard are genjax.train.step's: a step
whose losses or gradients are not finite leaves both players as they were.
"""

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from genjax.apps.comic import discriminator as disc_lib
from genjax.apps.comic import render as render_lib
from genjax.apps.comic import translator as tr
from genjax.apps.comic.translator_data import RNG_IMPL, sample_crops, sample_knobs
from genjax.apps.comic.translator_losses import (content_loss, grad_l1, paired_losses,
                                                 render_targets, representations)
from genjax.apps.comic.translator_net import Generator
from genjax.apps.comic.translator_step_config import StepConfig
from genjax.image import cartoon_reps
from genjax.train.optimizer import make_optimizer
from genjax.train.step import keep_if_finite, update_if_finite


@flax.struct.dataclass
class TranslatorState:
  step: jax.Array       # int32 []
  params: Any           # generator
  ema_params: Any
  opt_state: Any
  disc: Any             # {"params": {name: ...}, "batch_stats": {name: ...}} ({} without GAN)
  disc_opt_state: Any
  rng: jax.Array        # uint32 key data of RNG_IMPL; the step's key is fold_in(rng, step)
  skipped: jax.Array    # int32 []: steps whose losses or gradients were not finite


def make_optimizers(config):
  """(generator tx, discriminator tx)."""
  return (make_optimizer(config.train),
          optax.adam(config.train.disc_learning_rate, b1=0.5, b2=0.999))


def create_state(key: jax.Array, settings: StepConfig, g_tx, d_tx) -> TranslatorState:
  """Pure in key (translator_data.make_key), so jax.eval_shape gives the checkpoint's tree."""
  g_key, d_key, rng = jax.random.split(key, 3)
  params = tr.init_params(settings.model, g_key)
  disc = {"params": {}, "batch_stats": {}}
  gray = jnp.zeros((1, 32, 32, 1), jnp.float32)
  for i, name in enumerate(settings.disc_names):
    v = settings.discriminator().init(jax.random.fold_in(d_key, i), gray, update_stats=False)
    disc["params"][name], disc["batch_stats"][name] = v["params"], v["batch_stats"]
  zero = jnp.zeros((), jnp.int32)
  return TranslatorState(step=zero, params=params,
                         ema_params=jax.tree.map(jnp.copy, params), opt_state=g_tx.init(params),
                         disc=disc, disc_opt_state=d_tx.init(disc["params"]),
                         rng=jax.random.key_data(rng), skipped=zero)


def disc_apply(settings: StepConfig, disc, name, x, *, update_stats):
  """Logits of discriminator `name` and, with update_stats, its new batch statistics."""
  variables = {"params": disc["params"][name], "batch_stats": disc["batch_stats"][name]}
  if update_stats:
    logits, new = settings.discriminator().apply(variables, x, update_stats=True,
                                                 mutable=["batch_stats"])
    return logits, new["batch_stats"]
  return settings.discriminator().apply(variables, x, update_stats=False), None


def train_step(state: TranslatorState, batch: dict, *, settings: StepConfig, g_tx, d_tx,
               batch_sharding=None) -> tuple[TranslatorState, dict]:
  """One generator and (with a GAN) one discriminator update. Pure; jit with state donated.

  batch: {"photos": uint8 pool [N, H, W, 3], "comics": uint8 pool (unpaired mode only),
  "vgg": VGG19 params of the content / style terms (unpaired with unpaired.vgg_weights only)}.
  The VGG params come in as an argument (not donated) rather than closed over, which would
  embed them in the compiled program as constants.
  batch_sharding: where the drawn crops [B, c, c, 3] live (the mesh's batch axes), or None.
  Returns (new state, metrics): float32 loss terms, loss, grad_norm, int32 finite.
  """
  cfg = settings.model
  key = jax.random.fold_in(jax.random.wrap_key_data(state.rng, impl=RNG_IMPL), state.step)
  k_photo, k_knobs, k_comic, k_tex = jax.random.split(key, 4)
  b = settings.batch_size
  split = ((lambda a: jax.lax.with_sharding_constraint(a, batch_sharding))
           if batch_sharding is not None else (lambda a: a))
  x = split(sample_crops(k_photo, batch["photos"], b, settings.crop))
  knobs = sample_knobs(k_knobs, cfg, b)
  origin = jnp.zeros((b, 2), jnp.float32)
  generator = Generator(cfg)
  cond = tr.knob_vector(cfg, knobs, b)
  if settings.needs_targets:
    layers_t, heads_t = render_targets(x, cfg, knobs)
  real = None
  if settings.mode == "unpaired":
    real = split(sample_crops(k_comic, batch["comics"], b, settings.crop))
  gan_d, gan_g = disc_lib.get_gan_loss(settings.gan)

  def g_loss(params):
    logits = generator.apply({"params": params}, x, cond)
    pred = render_lib.compose(tr.layers_from_logits(logits, cfg.style, knobs, origin))
    terms = {}
    total = 0.0
    if settings.needs_targets:
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
      logits_d, _ = disc_apply(settings, state.disc, name, rep, update_stats=False)
      terms[f"g_{name}"] = gan_g(logits_d)
      total += weights[name] * terms[f"g_{name}"]
    if settings.mode == "unpaired":
      structure = cartoon_reps.structure(jax.lax.stop_gradient(pred))
      terms["structure"] = jnp.mean(jnp.abs(pred - structure))
      terms.update(content_loss(pred, x, settings, comics=real, vgg=batch.get("vgg")))
      terms["tv"] = grad_l1(pred, jnp.zeros_like(pred))
      total += (settings.structure * terms["structure"] + settings.content * terms["content"]
                + settings.tv * terms["tv"])
      if "style" in terms:
        total += settings.perceptual.style_weight * terms["style"]
    terms["loss"] = total
    return total, (terms, pred)

  (loss, (metrics, pred)), grads = jax.value_and_grad(g_loss, has_aux=True)(state.params)
  metrics["grad_norm"] = optax.tree.norm(grads)
  finite = jnp.isfinite(loss) & jnp.isfinite(metrics["grad_norm"])

  # Both players' gradients come from the old parameters; the updates wait for `finite`,
  # which needs both, and run under lax.cond (update_if_finite says why: in place).
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
        logits_d, stats[name] = disc_apply(settings, d, name, both, update_stats=True)
        terms[f"d_{name}"] = gan_d(logits_d[:b], logits_d[b:])
        total += terms[f"d_{name}"]
      return total, (terms, stats)

    (d_total, (d_terms, stats)), d_grads = jax.value_and_grad(d_loss, has_aux=True)(
        disc["params"])
    metrics.update(d_terms)
    finite = finite & jnp.isfinite(d_total) & jnp.isfinite(optax.tree.norm(d_grads))

    def d_update(trees):
      d_params, d_opt_state = trees
      d_updates, d_opt_state = d_tx.update(d_grads, d_opt_state, d_params)
      return optax.apply_updates(d_params, d_updates), d_opt_state

    d_params, disc_opt_state = jax.lax.cond(finite, d_update, lambda trees: trees,
                                            (disc["params"], disc_opt_state))
    disc = {"params": d_params,
            "batch_stats": keep_if_finite(finite, stats, disc["batch_stats"])}
  params, ema_params, opt_state = update_if_finite(
      finite, grads, state.params, state.ema_params, state.opt_state, tx=g_tx,
      ema_decay=settings.ema_decay)
  new_state = state.replace(
      step=state.step + 1, params=params, ema_params=ema_params, opt_state=opt_state,
      disc=disc, disc_opt_state=disc_opt_state,
      skipped=state.skipped + (~finite).astype(jnp.int32))
  metrics["finite"] = finite.astype(jnp.int32)
  return new_state, metrics
