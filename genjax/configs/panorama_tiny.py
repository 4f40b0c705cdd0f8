"""Tiny mask-conditioned panorama UNet on the procedural panoramas: the CPU demo's VR model.

16x32 equirectangular images (2:1). Every convolution wraps in longitude and across the
poles (padding "sphere"), the loss is weighted by cos(latitude), and the model sees a
random keep box and its pixels (cond_channels = 4, genjax.train.conditioning), so it
outpaints a photo into a full panorama. Trains in a few minutes on 2 CPU cores.
"""

from genjax.configs import tiny


def get_config():
  c = tiny.get_config()
  c.data.image_size = (16, 32)
  c.model.padding = "sphere"
  c.model.cond_channels = 4
  c.train.latitude_weighting = True
  # A horizontal flip is a valid panorama too (it mirrors longitude).
  c.data.random_flip = True
  return c
