"""Targets and loss terms of the comic translator's train step.

The procedural renderer's layers and head targets of a batch (render_targets), the
paired loss terms, and the inputs of the unpaired (White-box Cartoonization) losses:
the discriminators' grey representations and the content term (VGG19 features,
perceptual.py, or a filtered-image L1).
"""

import jax
import jax.numpy as jnp
import optax

from genjax.apps.comic import discriminator as disc_lib
from genjax.apps.comic import perceptual
from genjax.apps.comic import render as render_lib
from genjax.apps.comic.styles import STYLES, edge_preserving_smooth
from genjax.apps.comic.translator_config import HEADS, TranslatorConfig
from genjax.apps.comic.translator_step_config import StepConfig
from genjax.image import cartoon_reps, color, quantize, screentone
from genjax.image.box_filter import as_bhwc, box_filter


def manga_coverage(images: jax.Array, knobs) -> jax.Array:
  """The manga screen coverage before tone_density, [B, H, W, 1] in [0, 1].

  Follows styles.manga_layers step by step (its tone layer is
  TONE_PATTERNS[...](1 - coverage * tone_density) * flat; tests/apps/comic/
  test_translator.py checks the two agree): the translator learns this smooth map and
  draws the screen itself. Solid black (band 0) gets 1.
  """
  grey = color.lightness(edge_preserving_smooth(images, knobs))
  level = box_filter(grey, jnp.round(knobs.cleanup_radius).astype(jnp.int32))
  _, band_tone = screentone.tone_bands(jnp.clip(level + as_bhwc(knobs.exposure), 0.0, 1.0),
                                       knobs.tone_levels)
  n = as_bhwc(jnp.maximum(jnp.round(knobs.tone_levels), 2.0))
  return jnp.clip((1.0 - band_tone) * (n - 1.0) / jnp.maximum(n - 2.0, 1.0), 0.0, 1.0)


def render_targets(images: jax.Array, config: TranslatorConfig, knobs):
  """Procedural layers of images (as render.render_layers, inside jit) and head targets.

  Returns (layers {"ink", "flat", "tone"}, {head name: target [B, H, W, n]}).
  """
  style = STYLES[config.style]
  palette = None
  if style.uses_palette:
    b = images.shape[0]
    thumb = jax.image.resize(images, (b, render_lib.THUMBNAIL, render_lib.THUMBNAIL, 3),
                             "linear", antialias=True)
    palette = quantize.fit_palette(jnp.clip(thumb, 0.0, 1.0), knobs.n_colors,
                                   key=jax.random.key(0), iters=knobs.kmeans_iters,
                                   fit_pixels=render_lib.THUMBNAIL ** 2)
  origin = jnp.zeros((images.shape[0], 2), jnp.float32)
  layers = style.layers(images, knobs, origin=origin, palette=palette)
  layers = {k: jnp.clip(v, 0.0, 1.0) for k, v in layers.items()}
  if config.style == "manga":
    heads = {"ink": layers["ink"], "paper": layers["flat"][..., :1],
             "tone": manga_coverage(images, knobs)}
  else:
    heads = {"ink": layers["ink"], "flat": layers["flat"]}
  return layers, heads


# ---------------------------------------------------------------- losses


def grad_l1(a: jax.Array, b: jax.Array) -> jax.Array:
  """Mean |d/dx (a - b)| + |d/dy (a - b)| (finite differences)."""
  d = a - b
  return (jnp.mean(jnp.abs(d[:, 1:] - d[:, :-1])) + jnp.mean(jnp.abs(d[:, :, 1:] - d[:, :, :-1])))


def paired_losses(logits, pred_image, layers_t, heads_t, settings: StepConfig):
  """dict of the paired loss terms (unweighted) for generator outputs and targets."""
  image_t = render_lib.compose(layers_t)
  out, i = {}, 0
  bce = []
  for name, n in HEADS[settings.model.style]:
    ce = optax.sigmoid_binary_cross_entropy(logits[..., i:i + n], heads_t[name])
    if name == "tone":  # the coverage under solid black is invisible: not learned
      ce = ce * heads_t["paper"]
    bce.append(jnp.mean(ce))
    i += n
  out["layers"] = sum(bce)
  out["image_l1"] = jnp.mean(jnp.abs(pred_image - image_t))
  out["edge"] = grad_l1(color.lightness(pred_image), color.lightness(image_t))
  return out, image_t


def representations(images, key, settings: StepConfig) -> dict[str, jax.Array]:
  """Grayscale inputs of each discriminator."""
  reps = {}
  if "image" in settings.disc_names:
    reps["image"] = disc_lib.to_gray(images)
  if "surface" in settings.disc_names:
    reps["surface"] = disc_lib.to_gray(cartoon_reps.surface(images))
  if "texture" in settings.disc_names:
    reps["texture"] = cartoon_reps.texture(images, key=key)
  return reps


def content(images: jax.Array, style: str, radius: int) -> jax.Array:
  """What the content loss compares: box-filtered colour (palette styles) or lightness."""
  x = images if STYLES[style].uses_palette else color.lightness(images)
  return box_filter(x, radius)


def content_loss(pred: jax.Array, photos: jax.Array, settings: StepConfig, *,
                 comics: jax.Array | None = None, vgg=None) -> dict[str, jax.Array]:
  """The unpaired content term (unweighted) {"content": scalar} and, with VGG19 weights and
  unpaired.style_weight > 0, the Gram style term {"style": scalar} against the comic crops.

  vgg: VGG19 params (perceptual.load_vgg): the feature L1 at unpaired.content_layer
  (perceptual.losses). None: the L1 between box-filtered lightness (colours for palette
  styles) of pred and photos. pred, photos: [B, H, W, 3] in [0, 1]; comics: [B', H, W, 3].
  """
  if vgg is not None:
    return perceptual.losses(vgg, pred, photos, comics, settings.perceptual)
  style, radius = settings.model.style, settings.content_radius
  return {"content": jnp.mean(jnp.abs(content(pred, style, radius)
                                      - content(photos, style, radius)))}
