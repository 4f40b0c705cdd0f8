"""Perceptual content and Gram-style losses of unpaired comic training, on VGG19 features.

Content (Gatys et al. 2016; White-box Cartoonization, Wang & Yu 2020, uses VGG19 features the
same way): L1 between the VGG19 features of the output and of the photo at
`unpaired.content_layer` (relu4_2), divided by the mean |feature| of the photo (gradient
stopped), so that loss.content keeps one meaning whatever the weights file.
Style (Gatys et al. 2016, optional, weight `unpaired.style_weight`): per layer of
`unpaired.style_layers`, L1 between each output's Gram matrix and the comic batch's mean Gram
matrix, divided by the mean |entry| of the latter, averaged over the layers.

Weights: `unpaired.vgg_weights`, a .npz made by `python -m genjax.models.convert_vgg19` from
torchvision's vgg19-dcbb9e9d.pth. Without it the content term is the L1 of box-filtered
lightness (translator_losses.content_loss) and load_vgg says so in one log line. The params
enter the jitted translator step as an argument (translator_step.train_step's batch["vgg"],
not donated), never closed over: a closure would embed the weights in the HLO as constants.
"""

import dataclasses
import logging

import jax
import jax.numpy as jnp

from genjax.models import vgg19

log = logging.getLogger("genjax.comic")


@dataclasses.dataclass(frozen=True)
class PerceptualConfig:
  """The static part of the perceptual losses (hashable; the weights travel separately)."""
  weights: str = ""                        # .npz path; "" = no VGG (filtered-image L1)
  content_layer: str = vgg19.CONTENT_LAYER
  style_layers: tuple[str, ...] = vgg19.STYLE_LAYERS
  style_weight: float = 0.0

  def __post_init__(self):
    for key, taps in (("content_layer", (self.content_layer,)),
                      ("style_layers", tuple(self.style_layers))):
      try:
        vgg19.check_taps(taps)
      except ValueError as e:
        raise ValueError(f"unpaired.{key}: {e}") from None
    if self.style_weight < 0:
      raise ValueError(f"unpaired.style_weight must be >= 0, got {self.style_weight}")
    if self.style_weight > 0 and not self.weights:
      raise ValueError("unpaired.style_weight > 0 needs unpaired.vgg_weights (a VGG19 .npz "
                       "from python -m genjax.models.convert_vgg19)")

  @classmethod
  def from_config(cls, config) -> "PerceptualConfig":
    u = config.unpaired
    return cls(weights=str(u.vgg_weights), content_layer=u.content_layer,
               style_layers=tuple(u.style_layers), style_weight=float(u.style_weight))

  @property
  def taps(self) -> tuple[str, ...]:
    style = self.style_layers if self.style_weight > 0 else ()
    return tuple(dict.fromkeys((self.content_layer,) + tuple(style)))


def check_weights(pc: PerceptualConfig) -> None:
  """Before a run folder is made: the weights file (if any) exists and fits VGG19, read from
  its array headers only (vgg19.check_npz). The error names unpaired.vgg_weights."""
  if not pc.weights:
    return
  try:
    vgg19.check_npz(pc.weights)
  except (FileNotFoundError, vgg19.VGG19WeightsError) as e:
    raise type(e)(f"unpaired.vgg_weights: {e}") from None


def load_vgg(pc: PerceptualConfig, *, content_weight: float, radius: int) -> dict | None:
  """The VGG19 params the losses need (None without a weights file); logs which content loss
  unpaired training uses, in one line."""
  if not pc.weights:
    log.info("unpaired content loss: L1 of box-filtered lightness (radius %d px, weight %g); "
             "set unpaired.vgg_weights to a VGG19 .npz for the %s feature loss", radius,
             content_weight, vgg19.CONTENT_LAYER)
    return None
  params = vgg19.load_npz(pc.weights, taps=pc.taps)
  style = (f" + Gram style at {', '.join(pc.style_layers)} (weight {pc.style_weight:g})"
           if pc.style_weight > 0 else "")
  log.info("unpaired content loss: VGG19 %s feature L1 (weight %g, %s)%s", pc.content_layer,
           content_weight, pc.weights, style)
  return params


def features(params, images: jax.Array, taps) -> dict[str, jax.Array]:
  """images [B, H, W, 3] in [0, 1] -> {tap: [B, h, w, C]} (float32)."""
  return vgg19.VGG19(taps=tuple(taps)).apply({"params": params}, images)


def gram(f: jax.Array) -> jax.Array:
  """[B, h, w, C] -> [B, C, C], sum over positions of f f^T / (h w)."""
  b, h, w, c = f.shape
  f = f.reshape(b, h * w, c)
  return jnp.einsum("bpc,bpd->bcd", f, f, precision=jax.lax.Precision.HIGHEST) / (h * w)


def _relative_l1(a: jax.Array, b: jax.Array) -> jax.Array:
  return jnp.mean(jnp.abs(a - b)) / (jax.lax.stop_gradient(jnp.mean(jnp.abs(b))) + 1e-8)


def gram_distance(out_feats, style_feats, layers) -> jax.Array:
  """Mean over layers of the relative L1 between each output's Gram matrix and the style
  batch's mean Gram matrix. Scalar."""
  total = 0.0
  for layer in layers:
    target = jnp.mean(gram(style_feats[layer]), axis=0, keepdims=True)
    total += _relative_l1(gram(out_feats[layer]), jnp.broadcast_to(
        target, (out_feats[layer].shape[0],) + target.shape[1:]))
  return total / len(layers)


def losses(params, pred: jax.Array, photo: jax.Array, comics: jax.Array | None,
           pc: PerceptualConfig) -> dict[str, jax.Array]:
  """{"content": scalar[, "style": scalar]} for outputs pred and photos [B, H, W, 3] and comic
  crops [B', H, W, 3] (all in [0, 1]); "style" only when pc.style_weight > 0."""
  out = features(params, pred, pc.taps)
  ref = features(params, photo, (pc.content_layer,))
  terms = {"content": _relative_l1(out[pc.content_layer],
                                   jax.lax.stop_gradient(ref[pc.content_layer]))}
  if pc.style_weight > 0 and comics is not None:
    style = jax.lax.stop_gradient(features(params, comics, pc.style_layers))
    terms["style"] = gram_distance(out, style, pc.style_layers)
  return terms
