"""Real-scale UNet for 360-degree panoramas: 128x256 equirectangular images, about 100M parameters.

Sized for a GPU/TPU pod (global batch 256); convolutions wrap around the poles too.
"""

from genjax.configs import base


def get_config():
  c = base.get_config()
  c.data.image_size = (128, 256)
  c.model.base_channels = 128
  c.model.channel_mult = (1, 1, 2, 3, 4)
  c.model.num_res_blocks = 2
  c.model.attn_resolutions = (16, 8)
  c.model.num_heads = 8
  c.model.padding = "sphere"
  c.train.batch_size = 256
  c.train.learning_rate = 1e-4
  c.mesh.fsdp = 1
  return c
