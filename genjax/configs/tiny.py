"""Tiny UNet on the procedural panoramas: the CPU demo and the tests.

Trains in a couple of minutes on 2 CPU cores."""

from genjax.configs import base


def get_config():
  c = base.get_config()
  c.data.image_size = (16, 32)
  c.data.random_flip = True
  c.model.base_channels = 32
  c.model.channel_mult = (1, 2)
  c.model.num_res_blocks = 1
  c.model.attn_resolutions = (8,)
  c.model.num_heads = 2
  c.model.dropout = 0.0
  c.model.padding = "circular_w"
  c.train.batch_size = 16
  c.train.num_steps = 500
  c.train.learning_rate = 2e-3
  c.train.warmup_steps = 50
  c.train.ema_decay = 0.99
  c.train.log_every = 10
  c.train.sample_every = 250
  c.train.checkpoint_every = 250
  c.train.num_sample_images = 16
  c.train.sample_steps = 25
  return c
