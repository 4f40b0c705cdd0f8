"""Helpers for custom VJPs that recompute activations in the backward pass.

`tied_to(x, g)` is x, made to depend on the output gradient g. A backward pass that
recomputes from x must do so from tied_to(x, g): otherwise XLA merges the recomputation
with the forward pass's identical ops (CSE) and may schedule what is left of it in the
forward pass, and the [B, H, W, C] intermediates stay alive until the backward pass, as if
nothing were recomputed. `lax.optimization_barrier`, which jax.checkpoint relies on, does
not prevent it on XLA:CPU: its pipeline removes the barriers before these passes (jax 0.10;
the CIFAR train step's temporaries stayed at 1.39 GB with a remat policy that cut the saved
residuals from 1675 to 516 MiB). A data dependency survives: x + 0 * sum(g), which XLA
does not simplify for floats (0 * inf is NaN); the add is fused into x's readers at no
memory cost, the sum is one pass over g. It must depend on all of g: with x + 0 * g[0],
XLA pushed the slice through g's elementwise producers and ran the recomputations early
again (a chain of six layers kept 18 activations instead of 6). Non-finite output
gradients make the result NaN; the gradients it feeds are then not finite anyway.

`pack_bits` / `unpack_bits` keep a bool mask (a dropout mask) in one bit per element:
XLA fuses the comparison that makes a mask into its readers and keeps the random uint32
bits instead, 32 times the packed size.
"""

import jax
import jax.numpy as jnp

# jax.named_scope names of the custom VJPs' parts (GroupNorm + SiLU, its recomputation and
# hand-written gradient, the ties, the dropout masks): they name the XLA ops in the HLO's
# metadata, so a profile can charge each fusion to its part (benchmarks/step_profile.py).
SCOPES = {"gn_silu": "gn_silu", "recompute": "gn_silu_recompute", "gn_silu_vjp": "gn_silu_vjp",
          "tie": "recompute_tie", "dropout": "dropout_mask"}


def tied_to(x: jax.Array, g: jax.Array) -> jax.Array:
  """x (exactly, any float dtype), depending on all of g (see the module docstring)."""
  zero = (jnp.sum(g, dtype=jnp.float32) * 0).astype(x.dtype)
  return x + zero


def pack_bits(mask: jax.Array) -> jax.Array:
  """bool [...] (n elements) -> uint8 [ceil(n / 8)], element i in bit i % 8 of byte i // 8."""
  flat = mask.reshape(-1)
  flat = jnp.pad(flat, (0, -flat.size % 8))
  weights = jnp.left_shift(jnp.uint8(1), jnp.arange(8, dtype=jnp.uint8))
  return jnp.sum(flat.reshape(-1, 8).astype(jnp.uint8) * weights[None, :], axis=1,
                 dtype=jnp.uint8)


def unpack_bits(packed: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """The inverse of pack_bits: uint8 [ceil(n / 8)] -> bool `shape`."""
  bits = jnp.right_shift(packed[:, None], jnp.arange(8, dtype=jnp.uint8)[None, :]) & 1
  n = 1
  for d in shape:
    n *= d
  return bits.reshape(-1)[:n].reshape(shape).astype(jnp.bool_)
