"""Tiny neural comic translator: paired manga, on 2 CPU cores in under ten minutes.

The README's numbers (held-out PSNR against the procedural renderer) come from this
config, trained in under ten minutes of wall time on a shared 2-core CPU:

  genjax train-comic --config genjax/configs/comic_tiny.py --workdir runs/ct

Photos: procedural landscapes, plus tiles of scikit-image's bundled photos when it is
installed (the `examples` extra), as the README examples are; data.heldout_skimage
(astronaut, coffee) are never trained on.
"""

import importlib.util

from genjax.configs import comic


def get_config():
  c = comic.get_config()
  have_skimage = importlib.util.find_spec("skimage") is not None
  c.data.source = "procedural,skimage" if have_skimage else "procedural"
  c.model.channels = (16, 32)
  c.model.num_res_blocks = 3
  c.data.num_photos = 256
  c.data.photo_size = (128, 160)
  c.data.crop_size = 64
  c.data.heldout = 16
  c.data.heldout_size = (128, 160)
  c.train.batch_size = 8
  c.train.num_steps = 6000
  c.train.time_limit_minutes = 9.0    # a guard: the run must finish within 10 minutes
  c.train.learning_rate = 2e-3
  c.train.warmup_steps = 200
  c.train.ema_decay = 0.995
  c.train.log_every = 500
  c.train.checkpoint_every = 2000
  c.train.eval_every = 0
  c.train.sample_every = 1000
  return c
