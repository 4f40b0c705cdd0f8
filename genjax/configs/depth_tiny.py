"""Tiny depth UNet: photo -> log z-depth, trained on procedural ray-cast rooms (genjax.data.rooms).

  genjax train --config=depth_tiny --workdir runs/depth_tiny

The engine's UNet with one output channel and the "depth" objective (genjax.train.depth):
the same loop, state and checkpoints as the diffusion runs. 64x64 rooms with exact depth,
a fresh room per example (5 M indices: nothing repeats in a run). 0.29 M parameters; 1 s a
step on a quiet 2-core CPU, 2.7-3.6 s on a shared one. genjax/apps/vr/depth_tiny.msgpack
(depth_estimation.export_weights), which `genjax vr --mode stereo` uses when no --depth is
given, holds the EMA weights of 750 steps of this config's first version (fog in every room,
no gradient term in the loss), fine-tuned for 460 steps of this one with
--config.train.init_params=<those weights> --config.train.learning_rate=0.001
--config.train.warmup_steps=50 (stopped at 460 of 1800 on the shared machine).
"""

from genjax.configs import tiny


def get_config():
  c = tiny.get_config()
  c.data.source = "rooms"
  c.data.image_size = (64, 64)
  c.data.random_flip = False
  c.data.num_examples = 5_000_000
  c.model.base_channels = 16
  c.model.channel_mult = (1, 2, 2)
  c.model.num_res_blocks = 1
  c.model.attn_resolutions = ()
  c.model.num_heads = 2
  c.model.padding = "zeros"
  c.model.out_channels = 1
  c.train.objective = "depth"
  c.train.batch_size = 16
  c.train.num_steps = 1500
  c.train.learning_rate = 2e-3
  c.train.warmup_steps = 100
  c.train.ema_decay = 0.995
  c.train.log_every = 50
  c.train.sample_every = 500
  c.train.checkpoint_every = 250
  c.train.num_sample_images = 8
  return c
