"""CIFAR-scale UNet: 32x32 images, base width 64, 9.6M parameters, batch 32.

The reference shape for the train-step and sampler benchmarks."""

from genjax.configs import base


def get_config():
  c = base.get_config()
  c.data.image_size = (32, 32)
  c.model.base_channels = 64
  c.model.channel_mult = (1, 2, 2, 2)
  c.model.num_res_blocks = 2
  c.model.attn_resolutions = (16,)
  c.train.batch_size = 32
  return c
