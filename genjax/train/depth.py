"""The depth objective: a UNet maps a photo to its log z-depth (genjax train --config=depth_tiny).

The network is the engine's UNet (out_channels = 1) called with the image as its input and
a zero noise level: the same module, state, optimizer, EMA, checkpoints and loop as the
diffusion runs (genjax.train.loop); only the loss (registered in genjax.train.step.LOSSES)
and the training previews differ.

Loss: mean |log z_hat - log z| over the pixels, the L1 error of log depth, which weighs a
10 % error the same at 1 m and at 10 m (as AbsRel does) and is robust to the rare pixel a
thin object makes ambiguous; plus GRADIENT_WEIGHT times the gradient-matching term of
MegaDepth / MiDaS: the L1 norm of the x and y differences of the log-depth error r =
log z_hat - log z at scales 1, 2 and 4 (every 2^k-th pixel). It is zero for any error
constant over the image (a wrong scale), so it asks for the shape alone: sharp steps at
occlusion edges and flat planes, which a per-pixel L1 on a tiny net leaves blurred
(texture printed into depth). Stereo needs those edges: a disparity smeared across an
edge drags the background with the object.
"""

import jax
import jax.numpy as jnp
import numpy as np

from genjax.data import rooms
from genjax.train import sharding


def predict_log_depth(params, image: jax.Array, *, model) -> jax.Array:
  """image [B, H, W, 3] in [-1, 1] -> log z-depth [B, H, W] (metres). Pure; jit outside."""
  c_noise = jnp.zeros((image.shape[0],), jnp.float32)
  out = model.apply({"params": params}, image, c_noise, y=None, cond=None, train=False)
  return out[..., 0].astype(jnp.float32)


GRADIENT_WEIGHT = 0.5
GRADIENT_SCALES = (1, 2, 4)


def gradient_matching(r: jax.Array) -> jax.Array:
  """Mean over GRADIENT_SCALES of the mean |x and y differences| of r [B, H, W] sampled every
  s-th pixel: 0 for r constant per image."""
  terms = []
  for s in GRADIENT_SCALES:
    q = r[:, ::s, ::s]
    terms.append(jnp.mean(jnp.abs(q[:, :, 1:] - q[:, :, :-1]))
                 + jnp.mean(jnp.abs(q[:, 1:, :] - q[:, :-1, :])))
  return sum(terms) / len(terms)


def loss(params, batch, key, *, model, spec, cfg):
  """Mean L1 error of log depth + GRADIENT_WEIGHT * gradient_matching of that error.
  batch: {"image": [B, H, W, 3] in [-1, 1], "depth": [B, H, W] metres > 0}. spec and cfg
  are unused (the train step's loss signature)."""
  del spec, cfg
  c_noise = jnp.zeros((batch["image"].shape[0],), jnp.float32)
  out = model.apply({"params": params}, batch["image"], c_noise, y=None, cond=None, train=True,
                    rngs={"dropout": key})[..., 0]
  r = out.astype(jnp.float32) - jnp.log(batch["depth"])
  return jnp.mean(jnp.abs(r)) + GRADIENT_WEIGHT * gradient_matching(r)


def make_preview_fn(model, mesh, *, num_images: int, image_shape: tuple[int, int],
                    seed: int = 1):
  """`fn(params, key) -> [num_images, H, 2 W, 3]` in [-1, 1]: held-out rooms (indices past any
  training set) beside their predicted inverse depth (white = near), for samples.png."""
  h, w = image_shape
  views = [rooms.room(10_000_000 + i, height=h, width=w, seed=seed) for i in range(num_images)]
  images = jnp.asarray(np.stack([v[0] for v in views]), jnp.float32) / 127.5 - 1.0

  def fn(params, key):
    del key
    inv = jnp.exp(-predict_log_depth(params, images, model=model))           # 1 / metres
    grey = jnp.clip(inv / 1.0, 0.0, 1.0) * 2 - 1                           # 1 m and nearer: white
    return jnp.concatenate([images, jnp.repeat(grey[..., None], 3, -1)], axis=2)

  return jax.jit(fn, out_shardings=sharding.replicated(mesh))
