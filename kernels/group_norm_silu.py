"""SiLU(GroupNorm(x) * (1 + scale) + shift) with a hand-written gradient that keeps only x.

The pre-activation of every UNet residual branch: GroupNorm, the noise embedding's
per-sample scale and shift (optional), SiLU. Differentiated by JAX, the composition keeps
the normalized tensor, the pre-activation and the SiLU output for the backward pass (three
[B, H, W, C] float32 tensors); this custom VJP keeps x and the per-(sample, group) mean and
reciprocal standard deviation, and recomputes the rest in the backward pass, which is two
passes over x and the output gradient:

  z = x * a + c                  (a, c: [B, C], GroupNorm and scale / shift folded)
  dz = g * s(z) * (1 + z * (1 - s(z)))                  s: the logistic sigmoid
  A = sum_hw dz,  Bx = sum_hw dz * xhat                 per (sample, channel)
  dshift = A,  dscale = gn_scale * Bx + gn_bias * A
  dgn_scale = sum_b (1 + scale) * Bx,  dgn_bias = sum_b (1 + scale) * A
  dx = rstd * (dxhat - mean_group(dxhat) - xhat * mean_group(dxhat * xhat)),
       dxhat = dz * (1 + scale) * gn_scale

Statistics as genjax.kernels.group_norm (float32, two-pass variance).
"""

import functools

import jax
import jax.numpy as jnp
from jax import lax

from genjax.kernels.recompute import SCOPES, tied_to

_F32 = jnp.float32


def _check(x, gn_scale, gn_bias, scale, shift, num_groups):
  if x.ndim != 4 or x.shape[-1] % num_groups:
    raise ValueError(f"group_norm_silu: x {x.shape} is not [B, H, W, C] with C divisible by "
                     f"num_groups={num_groups}")
  b, c = x.shape[0], x.shape[-1]
  if gn_scale.shape != (c,) or gn_bias.shape != (c,):
    raise ValueError(f"group_norm_silu: gn_scale {gn_scale.shape}, gn_bias {gn_bias.shape} "
                     f"are not [{c}]")
  for name, a in (("scale", scale), ("shift", shift)):
    if a is not None and a.shape != (b, c):
      raise ValueError(f"group_norm_silu: {name} {a.shape} is not [{b}, {c}]")


def _group_sum(per_channel: jax.Array, num_groups: int) -> jax.Array:
  """[B, C] -> [B, C]: the sum over each channel's group, repeated per channel."""
  b, c = per_channel.shape
  s = per_channel.reshape(b, num_groups, c // num_groups).sum(-1)
  return jnp.repeat(s, c // num_groups, axis=1)


def group_stats(x: jax.Array, num_groups: int, epsilon: float = 1e-6
                ) -> tuple[jax.Array, jax.Array]:
  """x [B, H, W, C] -> the group mean and 1 / sqrt(variance + epsilon), one copy per
  channel: float32 [B, C] each."""
  b, h, w, c = x.shape
  xr = x.astype(_F32).reshape(b, h * w, c)
  n = h * w * (c // num_groups)
  mean = _group_sum(jnp.sum(xr, axis=1), num_groups) / n
  var = _group_sum(jnp.sum(jnp.square(xr - mean[:, None, :]), axis=1), num_groups) / n
  return mean, lax.rsqrt(var + epsilon)


def _fold(mean, rstd, gn_scale, gn_bias, scale, shift):
  """z = x * a + c with a, c float32 [B, C]."""
  s1 = 1.0 + scale.astype(_F32)
  a = rstd * gn_scale.astype(_F32)[None, :] * s1
  c = (gn_bias.astype(_F32)[None, :] - mean * rstd * gn_scale.astype(_F32)[None, :]) * s1
  return a, c + shift.astype(_F32)


def _bc(a):
  return a[:, None, None, :]


def apply_with_stats(x, mean, rstd, gn_scale, gn_bias, scale, shift, dtype) -> jax.Array:
  """group_norm_silu's result from group_stats(x): [B, H, W, C] in `dtype`; scale and
  shift [B, C] (zeros for none)."""
  a, c = _fold(mean, rstd, gn_scale, gn_bias, scale, shift)
  return jax.nn.silu(x.astype(_F32) * _bc(a) + _bc(c)).astype(dtype)


def _forward(x, gn_scale, gn_bias, scale, shift, num_groups, epsilon, dtype):
  mean, rstd = group_stats(x, num_groups, epsilon)
  return apply_with_stats(x, mean, rstd, gn_scale, gn_bias, scale, shift, dtype), (mean, rstd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6, 7))
def _gn_silu(x, gn_scale, gn_bias, scale, shift, num_groups, epsilon, dtype):
  return _forward(x, gn_scale, gn_bias, scale, shift, num_groups, epsilon, dtype)[0]


def _fwd(x, gn_scale, gn_bias, scale, shift, num_groups, epsilon, dtype):
  with jax.named_scope(SCOPES["gn_silu"]):
    out, (mean, rstd) = _forward(x, gn_scale, gn_bias, scale, shift, num_groups, epsilon,
                                 dtype)
  # Group statistics only ([B, G] of information, kept per channel: [B, C] is small).
  return out, (x, gn_scale, gn_bias, scale, shift, mean, rstd)


def _bwd(num_groups, epsilon, dtype, res, g):
  del epsilon, dtype
  x, gn_scale, gn_bias, scale, shift, mean, rstd = res
  with jax.named_scope(SCOPES["tie"]):
    x = tied_to(x, g)  # recomputed in the backward pass (genjax.kernels.recompute)
  with jax.named_scope(SCOPES["gn_silu_vjp"]):
    return vjp_with_stats(x, mean, rstd, gn_scale, gn_bias, scale, shift, g, num_groups)


def vjp_with_stats(x, mean, rstd, gn_scale, gn_bias, scale, shift, g, num_groups: int):
  """The gradients of sum(group_norm_silu(x, ...) * g) with respect to (x, gn_scale, gn_bias,
  scale, shift), each in its operand's dtype, from group_stats(x) (the formulas in the
  module docstring). Recomputes from x: callers tie x to g (genjax.kernels.recompute)."""
  b, h, w, c = x.shape
  n = h * w * (c // num_groups)
  a, cc = _fold(mean, rstd, gn_scale, gn_bias, scale, shift)
  x32 = x.astype(_F32)
  z = x32 * _bc(a) + _bc(cc)
  sig = jax.nn.sigmoid(z)
  dz = g.astype(_F32) * sig * (1.0 + z * (1.0 - sig))
  xhat = (x32 - _bc(mean)) * _bc(rstd)
  big_a = jnp.sum(dz, axis=(1, 2))                                    # [B, C]
  big_b = jnp.sum(dz * xhat, axis=(1, 2))                             # [B, C]
  s1 = 1.0 + scale.astype(_F32)
  gs, gb = gn_scale.astype(_F32)[None, :], gn_bias.astype(_F32)[None, :]
  d_shift = big_a
  d_scale = gs * big_b + gb * big_a
  d_gn_scale = jnp.sum(s1 * big_b, axis=0)
  d_gn_bias = jnp.sum(s1 * big_a, axis=0)
  k = s1 * gs                                                         # dxhat = dz * k
  m1 = _group_sum(k * big_a, num_groups) / n
  m2 = _group_sum(k * big_b, num_groups) / n
  dx = _bc(rstd) * (dz * _bc(k) - _bc(m1) - xhat * _bc(m2))
  return (dx.astype(x.dtype), d_gn_scale.astype(gn_scale.dtype),
          d_gn_bias.astype(gn_bias.dtype), d_scale.astype(scale.dtype),
          d_shift.astype(shift.dtype))


_gn_silu.defvjp(_fwd, _bwd)


def group_norm_silu(x: jax.Array, gn_scale: jax.Array, gn_bias: jax.Array,
                    scale: jax.Array | None = None, shift: jax.Array | None = None, *,
                    num_groups: int, epsilon: float = 1e-6, dtype=None) -> jax.Array:
  """SiLU(GroupNorm(x) * (1 + scale) + shift), GroupNorm as flax.linen.GroupNorm.

  Args:
    x: [B, H, W, C], any float dtype; num_groups divides C.
    gn_scale, gn_bias: [C], GroupNorm's scale and bias.
    scale, shift: [B, C] per-sample scale and shift after the normalization, or None.
    dtype: the result's dtype (default x's); arithmetic in float32.
  Returns:
    [B, H, W, C] in `dtype`.
  """
  _check(x, gn_scale, gn_bias, scale, shift, num_groups)
  b, c = x.shape[0], x.shape[-1]
  zeros = jnp.zeros((b, c), _F32)
  return _gn_silu(x, gn_scale, gn_bias, zeros if scale is None else scale,
                  zeros if shift is None else shift, num_groups, epsilon,
                  jnp.dtype(dtype or x.dtype))
