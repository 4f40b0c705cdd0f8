"""Real-scale mask-conditioned panorama UNet: 256x512 equirectangular images (2:1).

Sphere padding (longitude wraps, rows continue across the poles), cos(latitude) loss
weighting, and mask conditioning (cond_channels = 4: kept pixels and the keep mask) so it
outpaints photos into 360-degree panoramas. Train it on a folder of equirectangular
panoramas (`--config.data.source=folder --config.data.path=...`: 2:1 images, resized, not
cropped, so keep random_crop off). Sized for a GPU/TPU pod (global batch 256).
"""

from genjax.configs import base


def get_config():
  c = base.get_config()
  c.data.image_size = (256, 512)
  c.data.random_crop = False
  c.model.base_channels = 128
  c.model.channel_mult = (1, 1, 2, 2, 3, 4)
  c.model.num_res_blocks = 2
  c.model.attn_resolutions = (16, 8)
  c.model.num_heads = 8
  c.model.padding = "sphere"
  c.model.cond_channels = 4
  c.model.remat = True
  c.train.latitude_weighting = True
  c.train.batch_size = 256
  c.train.learning_rate = 1e-4
  c.train.sample_every = 10_000
  c.train.checkpoint_every = 5000
  return c
