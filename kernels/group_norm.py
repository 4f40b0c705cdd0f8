"""GroupNorm as a per-(sample, channel) affine map: GN(x) = x * a + s.

The statistics pre-pass of the fused residual-block kernel, of its XLA composition and
of the models' GroupNorm layer. Mean and biased variance over H, W and the C / G
channels of each group, in float32, two-pass (E[x^2] - E[x]^2 loses digits when
|mean| >> std). Each pass first sums over H * W per channel, an [B, H*W, C] reduction
along its middle axis, then adds the channels of each group: on XLA:CPU, reducing the
[B, H*W, G, C/G] view over axes (1, 3) at once was several times slower. GroupNorm + SiLU
at 32x32x32x64, 32 groups, against flax.linen.GroupNorm: forward 4x, forward + backward
1.5x faster (`python -m benchmarks layers`, benchmarks/README.md).
"""

import jax
import jax.numpy as jnp
from jax import lax


def _group_mean(per_channel_sum: jax.Array, num_groups: int, count: int) -> jax.Array:
  """[B, C] sums over H*W -> [B, C]: the mean of each channel's group, repeated per channel."""
  b, c = per_channel_sum.shape
  group = per_channel_sum.reshape(b, num_groups, c // num_groups).sum(-1) / count
  return jnp.repeat(group, c // num_groups, axis=1)


def group_affine(x: jax.Array, gn_scale: jax.Array, gn_bias: jax.Array, *, num_groups: int,
                 epsilon: float) -> tuple[jax.Array, jax.Array]:
  """GroupNorm folded into x * a + s.

  Args:
    x: [B, H, W, C], any float dtype; num_groups divides C.
    gn_scale, gn_bias: [C] GroupNorm scale and bias.
  Returns:
    (a, s), both float32 [B, C].
  """
  b, h, w, c = x.shape
  xr = x.astype(jnp.float32).reshape(b, h * w, c)
  count = h * w * (c // num_groups)
  mean = _group_mean(jnp.sum(xr, axis=1), num_groups, count)                  # [B, C]
  var = _group_mean(jnp.sum(jnp.square(xr - mean[:, None, :]), axis=1), num_groups, count)
  a = gn_scale.astype(jnp.float32)[None, :] * lax.rsqrt(var + epsilon)
  return a, gn_bias.astype(jnp.float32)[None, :] - mean * a


def group_norm(x: jax.Array, gn_scale: jax.Array, gn_bias: jax.Array, *, num_groups: int,
               epsilon: float) -> jax.Array:
  """GroupNorm of x [B, H, W, C] -> float32 [B, H, W, C] (as flax.linen.GroupNorm)."""
  a, s = group_affine(x, gn_scale, gn_bias, num_groups=num_groups, epsilon=epsilon)
  return x.astype(jnp.float32) * a[:, None, None, :] + s[:, None, None, :]
