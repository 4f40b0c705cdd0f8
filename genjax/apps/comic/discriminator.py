"""Spectral-norm PatchGAN discriminator on grayscale images, and the adversarial losses.

PatchGAN (Isola et al. 2017): a stack of stride-2 convolutions whose output is a grid of
logits, one per overlapping patch, so the critic judges local texture (lines, screentone,
flat fills) and is fully convolutional. Spectral normalization (Miyato et al. 2018,
flax.linen.SpectralNorm around each conv) bounds every layer's Lipschitz constant; the
power-iteration vector u lives in the "batch_stats" collection: apply with
update_stats=True and mutable=["batch_stats"] in the discriminator's own update.

It sees grayscale (to_gray): texture is judged apart from colour, which suits manga and
lets a colour photo's comic be compared with black-and-white references.
"""

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.image import color
from genjax.models.layers import Conv


def to_gray(images: jax.Array) -> jax.Array:
  """[B, H, W, 3] sRGB -> [B, H, W, 1] CIE lightness / 100; [B, H, W, 1] is returned as is."""
  return images if images.shape[-1] == 1 else color.lightness(images)


class PatchDiscriminator(nn.Module):
  """images [B, H, W, C] in [0, 1] -> patch logits [B, H / 2^n, W / 2^n, 1].

  features: channels of the n = len(features) stride-2 3x3 convolutions; a stride-1
  conv and a 1-channel conv follow. Each logit sees a patch 2 (2^n - 1) + 2^(n+2) + 1
  pixels wide (47 for n = 3).
  """
  features: tuple[int, ...] = (32, 64, 128)
  conv_impl: str | None = None
  negative_slope: float = 0.2

  @nn.compact
  def __call__(self, images: jax.Array, *, update_stats: bool) -> jax.Array:
    def sn(features, stride=1):
      return nn.SpectralNorm(Conv(features, stride=stride, conv_impl=self.conv_impl))

    x = images * 2.0 - 1.0
    for f in self.features:
      x = nn.leaky_relu(sn(f, 2)(x, update_stats=update_stats), self.negative_slope)
    x = nn.leaky_relu(sn(self.features[-1])(x, update_stats=update_stats), self.negative_slope)
    return sn(1)(x, update_stats=update_stats)


def lsgan_d(real: jax.Array, fake: jax.Array) -> jax.Array:
  """Least-squares GAN critic loss (Mao et al. 2017): E (D(real) - 1)^2 + E D(fake)^2."""
  return jnp.mean(jnp.square(real - 1.0)) + jnp.mean(jnp.square(fake))


def lsgan_g(fake: jax.Array) -> jax.Array:
  return jnp.mean(jnp.square(fake - 1.0))


def hinge_d(real: jax.Array, fake: jax.Array) -> jax.Array:
  """Hinge loss (Lim & Ye 2017; SAGAN): E relu(1 - D(real)) + E relu(1 + D(fake))."""
  return jnp.mean(nn.relu(1.0 - real)) + jnp.mean(nn.relu(1.0 + fake))


def hinge_g(fake: jax.Array) -> jax.Array:
  return -jnp.mean(fake)


# name -> (critic loss(real logits, fake logits), generator loss(fake logits))
GAN_LOSSES: dict[str, tuple[Callable, Callable]] = {
    "lsgan": (lsgan_d, lsgan_g),
    "hinge": (hinge_d, hinge_g),
}


def get_gan_loss(name: str) -> tuple[Callable, Callable]:
  try:
    return GAN_LOSSES[name]
  except KeyError:
    raise ValueError(f"unknown adversarial loss {name!r}; valid: {sorted(GAN_LOSSES)}") from None
