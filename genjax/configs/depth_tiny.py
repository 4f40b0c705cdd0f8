"""Tiny depth UNet: photo -> log z-depth, trained on procedural ray-cast rooms (genjax.data.rooms).

  genjax train --config=depth_tiny --workdir runs/depth_tiny

The engine's UNet with one output channel and the "depth" objective (genjax.train.depth):
the same loop, state and checkpoints as the diffusion runs. 64x64 rooms with exact depth,
a fresh room per example (5 M indices: nothing repeats in a run). 0.29 M parameters; 1 s a
step on a quiet 2-core CPU, 1.1-3.4 s on a shared one. genjax/apps/vr/depth_tiny.msgpack
(depth_estimation.export_weights), which `genjax vr --mode stereo` uses when no --depth is
given, holds the EMA weights of, in turn: 750 steps of this config's first version (fog in
every room, no gradient term in the loss); 460 steps of this one fine-tuned from them with
--config.train.init_params=<those weights> --config.train.learning_rate=0.001
--config.train.warmup_steps=50 (stopped at 460 of 1800 on the shared machine); and 1100
steps fine-tuned from those (28 min on the shared machine):

  genjax train --config=depth_tiny --workdir RUN --config.seed=3 \
      --config.train.init_params=<the previous depth_tiny.msgpack> \
      --config.train.learning_rate=0.001 --config.train.warmup_steps=50 \
      --config.train.num_steps=1100 --config.train.checkpoint_every=100 \
      --config.train.sample_every=400
  python -c "from genjax.apps.vr import depth_estimation as d; d.export_weights('RUN')"

On 64 held-out rooms (depth_estimation.evaluate_on_rooms, through estimate_depth) AbsRel
0.418, delta1 0.404 (the weights before the last fine-tune: 0.446, 0.396; the best constant:
0.706, 0.267). Tried and not shipped: a 1.13 M-parameter variant (model.channel_mult=(1, 2,
4, 4), model.attn_resolutions=(16,)) trained from scratch for 700 steps (22 min): AbsRel
0.524, delta1 0.312, too few steps for its size on this machine.
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
