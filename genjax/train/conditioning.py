"""Random image conditioning for models trained to inpaint and outpaint.

A model with `cond_channels == 4` sees the kept pixels and the mask
(`concat(x0 * keep, keep)`), so at sampling time it fills whatever the mask
leaves out: the left half, a border, everything around a photo in a panorama.
"""

import jax
import jax.numpy as jnp


def random_keep_masks(key: jax.Array, batch: int, height: int, width: int) -> jax.Array:
  """Per-example keep masks, float32 [B, H, W, 1] in {0, 1}.

  A random axis-aligned box (its size 10% to 90% of each side, anywhere,
  wrapping along the width as in a panorama) is kept; 10% of the examples keep
  nothing, so the same model samples unconditionally.
  """
  k_size, k_pos, k_none = jax.random.split(key, 3)
  size = jax.random.uniform(k_size, (batch, 2), minval=0.1, maxval=0.9)
  pos = jax.random.uniform(k_pos, (batch, 2))
  rows = (jnp.arange(height) + 0.5) / height                      # [H]
  cols = (jnp.arange(width) + 0.5) / width                        # [W]
  top = pos[:, 0:1] * (1.0 - size[:, 0:1])                        # [B, 1]
  in_rows = (rows[None, :] >= top) & (rows[None, :] < top + size[:, 0:1])
  # Column distance to the box start, modulo 1: the box may wrap around.
  in_cols = jnp.mod(cols[None, :] - pos[:, 1:2], 1.0) < size[:, 1:2]
  keep = in_rows[:, :, None] & in_cols[:, None, :]                # [B, H, W]
  some = jax.random.bernoulli(k_none, 0.9, (batch,))
  return (keep & some[:, None, None]).astype(jnp.float32)[..., None]


def mask_condition(x0: jax.Array, keep: jax.Array) -> jax.Array:
  """[B, H, W, 3], [B, H, W, 1] -> [B, H, W, 4]: kept pixels (zero elsewhere) and the mask."""
  return jnp.concatenate([x0 * keep, keep], axis=-1)
