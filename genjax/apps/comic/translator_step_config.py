"""StepConfig of the comic translator: the static, hashable part of its train step.

The same idea as genjax.train.step.StepConfig (the diffusion step's), for the translator's
trainer; its own module so that the losses and the step both import it.
"""

import dataclasses

from genjax.apps.comic import discriminator as disc_lib
from genjax.apps.comic.perceptual import PerceptualConfig
from genjax.apps.comic.translator_config import TranslatorConfig

MODES = ("paired", "unpaired")


@dataclasses.dataclass(frozen=True)
class StepConfig:
  """Everything static about a translator train step (hashable)."""
  model: TranslatorConfig
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
  perceptual: PerceptualConfig   # unpaired content / style on VGG19 features (config unpaired.*)

  @classmethod
  def from_config(cls, config) -> "StepConfig":
    """ValueError naming the key for a bad train.mode, loss.gan or unpaired.* value."""
    mode = config.train.mode
    if mode not in MODES:
      raise ValueError(f"train.mode must be 'paired' or 'unpaired', got {mode!r}")
    disc_lib.get_gan_loss(config.loss.gan)
    loss = config.loss
    if mode == "paired":
      names = ("image",) if loss.adversarial > 0 else ()
    else:
      names = tuple(n for n, w in (("surface", loss.surface), ("texture", loss.texture)) if w > 0)
    return cls(model=TranslatorConfig.from_config(config.model,
                                                  conv_impl=config.kernels.conv_impl),
               mode=mode, batch_size=config.train.batch_size, crop=config.data.crop_size,
               disc_names=names, disc_features=tuple(config.model.disc_features),
               ema_decay=config.train.ema_decay, image_l1=loss.image_l1, edge=loss.edge,
               layers=loss.layers, adversarial=loss.adversarial, gan=loss.gan,
               surface=loss.surface, texture=loss.texture, structure=loss.structure,
               content=loss.content, content_radius=loss.content_radius, tv=loss.tv,
               paired_weight=loss.paired_weight,
               perceptual=PerceptualConfig.from_config(config))

  @property
  def needs_targets(self) -> bool:
    """Whether the step renders the procedural targets (paired losses in play)."""
    return self.mode == "paired" or self.paired_weight > 0

  def discriminator(self) -> disc_lib.PatchDiscriminator:
    return disc_lib.PatchDiscriminator(self.disc_features, conv_impl=self.model.conv_impl)
