"""Box filter (windowed mean) by cumulative sums: O(1) work per pixel for any radius.

The radius is a runtime array (one per image), not a compile-time constant: window
bounds are gathered from the cumulative sums, so one compiled program serves every
radius. At the borders the mean is over the valid pixels only (the window is
clipped to the image and divided by its true pixel count), so a constant image
stays exactly constant and no border colour leaks in.

Conventions of the genjax.image operators: images are batched [B, H, W, C] float32 with
values in [0, 1] (sRGB unless a docstring says otherwise), any H and W; knobs are
scalars or one value per image ([B]), traced at run time unless marked static.
"""

import jax
import jax.numpy as jnp


def per_image(value, batch: int, dtype=jnp.float32) -> jax.Array:
  """A scalar or [B] knob -> [B] array of dtype (the batch convention of genjax.image)."""
  value = jnp.asarray(value, dtype)
  if value.ndim > 1 or (value.ndim == 1 and value.shape[0] not in (1, batch)):
    raise ValueError(f"per-image value must be a scalar or shape [{batch}], got {value.shape}")
  return jnp.broadcast_to(value.reshape(-1) if value.ndim else value, (batch,))


def as_bhwc(value: jax.Array) -> jax.Array:
  """[B] -> [B, 1, 1, 1], to scale images without implicit rank promotion."""
  return value[:, None, None, None]


def _window_sum(x: jax.Array, radius: jax.Array, axis: int) -> tuple[jax.Array, jax.Array]:
  """Sums over [i - r, i + r] clipped to [0, n) along axis; returns (sums, counts [B, n])."""
  n = x.shape[axis]
  zero = jnp.zeros_like(jax.lax.slice_in_dim(x, 0, 1, axis=axis))
  csum = jnp.concatenate([zero, jnp.cumsum(x, axis=axis)], axis=axis)  # csum[j] = sum x[:j]
  i = jnp.arange(n)[None, :]
  hi = jnp.clip(i + radius[:, None] + 1, 0, n)  # [B, n]
  lo = jnp.clip(i - radius[:, None], 0, n)
  shape = [x.shape[0], 1, 1, 1]
  shape[axis] = n
  take = lambda idx: jnp.take_along_axis(csum, idx.reshape(shape), axis=axis)
  return take(hi) - take(lo), (hi - lo).astype(x.dtype)


@jax.jit
def box_filter(x: jax.Array, radius) -> jax.Array:
  """Mean over the (2 r + 1)^2 window around each pixel, clipped to the image.

  Args:
    x: [B, H, W, C] float.
    radius: int scalar or [B] ints >= 0, in pixels (0 returns x).
  Returns:
    [B, H, W, C], same dtype as x.
  """
  if x.ndim != 4:
    raise ValueError(f"box_filter expects [B, H, W, C], got shape {x.shape}")
  r = jnp.maximum(per_image(radius, x.shape[0], jnp.int32), 0)
  # Subtracting the per-image mean keeps the running sums small, so float32
  # differences of large prefix sums lose little precision on big images.
  mean = jnp.mean(x, axis=(1, 2), keepdims=True)
  s, count_h = _window_sum(x - mean, r, axis=1)
  s, count_w = _window_sum(s, r, axis=2)
  count = count_h[:, :, None, None] * count_w[:, None, :, None]
  return s / count + mean


@jax.jit
def box_sum(x: jax.Array, radius) -> jax.Array:
  """Sum over the (2 r + 1)^2 window around each pixel, clipped to the image.

  Unlike box_filter there is no mean subtraction, so for integer-valued x (counts, one-hot
  labels) every partial sum is an exact float32 integer while the total stays below
  2^24: the result then does not depend on where the image was cut (tiles agree exactly).

  Args:
    x: [B, H, W, C] float.
    radius: int scalar or [B] ints >= 0, in pixels.
  Returns:
    [B, H, W, C], same dtype as x.
  """
  if x.ndim != 4:
    raise ValueError(f"box_sum expects [B, H, W, C], got shape {x.shape}")
  r = jnp.maximum(per_image(radius, x.shape[0], jnp.int32), 0)
  s, _ = _window_sum(x, r, axis=1)
  return _window_sum(s, r, axis=2)[0]
