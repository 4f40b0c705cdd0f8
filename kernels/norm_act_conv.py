"""conv(dropout(SiLU(GroupNorm(x) * (1 + scale) + shift))) + bias, keeping only x for the
backward pass.

The two halves of a UNet residual block. Differentiated by JAX, each keeps, per block, the
SiLU output (the convolution's input), often a transposed copy of it for the weight
gradient, the convolution's output before and after the bias, the GroupNorm output and the
dropout's random bits (uint32, one per element): on the CIFAR train step these were most
of the XLA temporaries live at the end of the forward pass. This custom VJP keeps the
operands (x, the [C] / [B, C] parameters and the dropout's keep mask, one bit per element)
and the [B, C] GroupNorm statistics, and recomputes the activation in the backward pass,
where the convolution's own VJP and genjax.kernels.group_norm_silu's hand-written one
take it back to x. The recomputation is tied to the output gradient
(genjax.kernels.recompute.tied_to), so that XLA neither merges it with the forward pass
nor runs it there. On the CIFAR train step (with the attention's recomputation) the XLA
temporaries went from 1387 to 668 MiB (benchmarks/README.md).

The convolution goes through genjax.kernels.conv2d (`impl` as there), so the conv
dispatcher's choice is unchanged. Without gradients (sampling) this is the plain
composition.
"""

import functools

import jax
import jax.numpy as jnp
from jax import lax

from genjax.kernels.conv import conv2d
from genjax.kernels.group_norm_silu import apply_with_stats, group_norm_silu, group_stats, \
    vjp_with_stats
from genjax.kernels.recompute import SCOPES, pack_bits, tied_to, unpack_bits


def _dropout(h, keep, keep_prob):
  return h if keep is None else lax.select(keep, h / keep_prob, jnp.zeros_like(h))  # as flax


def _conv_bias(h, kernel, bias, *, padding, stride, impl, dtype):
  y = conv2d(h, kernel.astype(dtype), stride=stride, padding=padding, impl=impl)
  return y + bias.astype(dtype)[None, None, None, :]


def _compose(x, gn_scale, gn_bias, scale, shift, kernel, bias, keep, *, num_groups, epsilon,
             keep_prob, padding, stride, impl, dtype):
  h = group_norm_silu(x, gn_scale, gn_bias, scale, shift, num_groups=num_groups,
                      epsilon=epsilon, dtype=dtype)
  return _conv_bias(_dropout(h, keep, keep_prob), kernel, bias, padding=padding,
                    stride=stride, impl=impl, dtype=dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(8,))
def _norm_act_conv(x, gn_scale, gn_bias, scale, shift, kernel, bias, keep, static):
  return _compose(x, gn_scale, gn_bias, scale, shift, kernel, bias, keep, **dict(static))


def _fwd(x, gn_scale, gn_bias, scale, shift, kernel, bias, keep, static):
  st = dict(static)
  with jax.named_scope(SCOPES["gn_silu"]):
    mean, rstd = group_stats(x, st["num_groups"], st["epsilon"])
    h = apply_with_stats(x, mean, rstd, gn_scale, gn_bias, scale, shift, st["dtype"])
  conv_kw = {k: st[k] for k in ("padding", "stride", "impl", "dtype")}
  with jax.named_scope(SCOPES["dropout"]):
    packed = None if keep is None else pack_bits(keep)
    # The dropout reads the packed bits, as the backward pass does: XLA fuses the mask's
    # making (the random bits' hash, genjax.kernels.bernoulli) into each of its readers,
    # so reading `keep` here too would hash every element twice.
    h = _dropout(h, None if keep is None else unpack_bits(packed, x.shape), st["keep_prob"])
  out = _conv_bias(h, kernel, bias, **conv_kw)
  # The [B, C] statistics are kept too: recomputing them would be two more passes over x.
  return out, (x, mean, rstd, gn_scale, gn_bias, scale, shift, kernel, bias, packed)


def _bwd(static, res, g):
  st = dict(static)
  x, mean, rstd, gn_scale, gn_bias, scale, shift, kernel, bias, packed = res
  with jax.named_scope(SCOPES["tie"]):
    x = tied_to(x, g)  # see the module docstring
  with jax.named_scope(SCOPES["recompute"]):
    h = apply_with_stats(x, mean, rstd, gn_scale, gn_bias, scale, shift, st["dtype"])
  with jax.named_scope(SCOPES["dropout"]):
    keep = None if packed is None else unpack_bits(packed, x.shape)
    h = _dropout(h, keep, st["keep_prob"])
  conv_kw = {k: st[k] for k in ("padding", "stride", "impl", "dtype")}
  _, conv_vjp = jax.vjp(lambda h, k, b: _conv_bias(h, k, b, **conv_kw), h, kernel, bias)
  dh, d_kernel, d_bias = conv_vjp(g)
  with jax.named_scope(SCOPES["dropout"]):
    dh = _dropout(dh, keep, st["keep_prob"])
  with jax.named_scope(SCOPES["gn_silu_vjp"]):
    dx, d_gn_scale, d_gn_bias, d_scale, d_shift = vjp_with_stats(
        x, mean, rstd, gn_scale, gn_bias, scale, shift, dh, st["num_groups"])
  return dx, d_gn_scale, d_gn_bias, d_scale, d_shift, d_kernel, d_bias, None


_norm_act_conv.defvjp(_fwd, _bwd)


def norm_act_conv(x: jax.Array, gn_scale: jax.Array, gn_bias: jax.Array, kernel: jax.Array,
                  bias: jax.Array, scale: jax.Array | None = None,
                  shift: jax.Array | None = None, keep: jax.Array | None = None, *,
                  num_groups: int, epsilon: float = 1e-6, keep_prob: float = 1.0,
                  padding: str = "SAME", stride: int = 1, impl: str | None = None,
                  dtype=None) -> jax.Array:
  """conv2d(dropout(group_norm_silu(x, ...)), kernel) + bias.

  Args:
    x: [B, H, W, Cin]; gn_scale, gn_bias: [Cin]; scale, shift: [B, Cin] or None (see
      genjax.kernels.group_norm_silu).
    kernel: [k, k, Cin, Cout]; bias: [Cout] (cast to `dtype`).
    keep: bool [B, H, W, Cin], the dropout's keep mask (kept elements are divided by
      keep_prob), or None for no dropout.
    padding, stride, impl: as genjax.kernels.conv2d.
    dtype: the activation's and the convolution's dtype (default x's).
  Returns:
    [B, H', W', Cout] in `dtype`.
  """
  if keep is not None and (keep.shape != x.shape or keep.dtype != jnp.bool_):
    raise ValueError(f"norm_act_conv: keep {keep.shape} {keep.dtype} is not a bool mask of "
                     f"x's shape {x.shape}")
  b, c = x.shape[0], x.shape[-1]
  zeros = jnp.zeros((b, c), jnp.float32)
  static = (("num_groups", num_groups), ("epsilon", epsilon), ("keep_prob", keep_prob),
            ("padding", padding), ("stride", stride), ("impl", impl),
            ("dtype", jnp.dtype(dtype or x.dtype)))
  return _norm_act_conv(x, gn_scale, gn_bias, zeros if scale is None else scale,
                        zeros if shift is None else shift, kernel, bias, keep, static)
