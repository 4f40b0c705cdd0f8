"""Sample grids during training: the embedding sampler, jitted once, on the run's mesh."""

import jax

from genjax.sample import make_sampler
from genjax.train import sharding


def make_preview_fn(model, spec, mesh, *, num_images: int, steps: int,
                    image_shape: tuple[int, int], num_classes: int, cond_channels: int):
  """`fn(params, key) -> [num_images, H, W, 3]` in [-1, 1], replicated on every device.

  Deterministic DDIM (the plain loop of the foundation issue) with x0 clipped to the
  data range; class-conditional models get labels 0, 1, 2, ... cycling; mask-
  conditioned models get an empty mask (unconditional).
  """
  sample = make_sampler(model, spec, image_shape=image_shape, sampler="ddim", steps=steps,
                        clip_x0=1.0)
  h, w = image_shape

  def fn(params, key):
    labels = jax.numpy.arange(num_images) % num_classes if num_classes else None
    cond = (jax.numpy.zeros((num_images, h, w, cond_channels), jax.numpy.float32)
            if cond_channels else None)
    return sample(params, key, num_images, labels=labels, cond=cond)

  return jax.jit(fn, out_shardings=sharding.replicated(mesh))
