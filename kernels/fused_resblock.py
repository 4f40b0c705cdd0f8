"""`fused_conv3x3`: the body of a UNet residual block, conv3x3(SiLU(GroupNorm(x))) + bias
(+ residual), as one entry point with interchangeable implementations.

The implementation is chosen per call, at trace time, in this order:
  1. the `impl` argument, unless None or "auto";
  2. the environment variable GENJAX_FUSED_IMPL, unless unset, empty or "auto";
  3. per backend: "pallas" on GPU, "xla" elsewhere. On the CPU the Pallas kernel runs only
     in interpret mode (for tests). On TPU it is not the default: the kernel is written
     for Triton (power-of-two tiles, unaligned row slices of a whole-image block), which
     Mosaic's tiling rules do not promise to accept, and no TPU has lowered it yet.

Implementations:
  "xla"     GroupNorm and SiLU in jnp, the convolution through genjax.kernels.conv2d
            (so on the CPU it is the conv dispatcher's choice); XLA fuses what it can.
  "pallas"  fused_resblock_pallas: one implicit-GEMM kernel with the normalization in its
            prologue and bias + residual in its epilogue. Forward only: its gradients are
            those of the "xla" composition (a custom VJP that recomputes the forward).
"""

import functools
import os

import jax
import jax.numpy as jnp

from genjax.kernels.conv import conv2d
from genjax.kernels.fused_resblock_pallas import check_operands, fused_conv3x3_pallas
from genjax.kernels.group_norm import group_affine

IMPL_ENV = "GENJAX_FUSED_IMPL"
IMPLEMENTATIONS = ("xla", "pallas")
DEFAULTS = {"gpu": "pallas"}


def select_impl(impl: str | None = None, device=None) -> str:
  """The implementation fused_conv3x3 uses (see the module docstring)."""
  for name, source in ((impl, "the impl argument"), (os.environ.get(IMPL_ENV), f"${IMPL_ENV}")):
    if name not in (None, "", "auto"):
      if name not in IMPLEMENTATIONS:
        raise ValueError(f"fused_conv3x3: unknown implementation {name!r} from {source}; "
                         f"valid: {', '.join(['auto', *IMPLEMENTATIONS])}")
      return name
  device = device or jax.devices()[0]
  return DEFAULTS.get(device.platform, "xla")


def fused_conv3x3_xla(x, w, *, gn_scale, gn_bias, num_groups: int, bias, residual=None,
                      padding: str = "SAME", epsilon: float = 1e-6) -> jax.Array:
  """The "xla" implementation; same contract as fused_conv3x3. Differentiable by JAX."""
  a, s = group_affine(x, gn_scale, gn_bias, num_groups=num_groups, epsilon=epsilon)
  h = jax.nn.silu(x.astype(jnp.float32) * a[:, None, None] + s[:, None, None])
  y = conv2d(h.astype(x.dtype), w, padding=padding).astype(jnp.float32)
  y += bias.astype(jnp.float32)[None, None, None, :]
  if residual is not None:
    y += residual.astype(jnp.float32)
  return y.astype(x.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _pallas_with_xla_vjp(num_groups, padding, epsilon, x, w, gn_scale, gn_bias, bias, residual):
  return fused_conv3x3_pallas(x, w, gn_scale=gn_scale, gn_bias=gn_bias, num_groups=num_groups,
                              bias=bias, residual=residual, padding=padding, epsilon=epsilon)


def _fwd(num_groups, padding, epsilon, *operands):
  return _pallas_with_xla_vjp(num_groups, padding, epsilon, *operands), operands


def _bwd(num_groups, padding, epsilon, operands, g):
  def composition(x, w, gn_scale, gn_bias, bias, residual):
    return fused_conv3x3_xla(x, w, gn_scale=gn_scale, gn_bias=gn_bias, num_groups=num_groups,
                             bias=bias, residual=residual, padding=padding, epsilon=epsilon)
  return jax.vjp(composition, *operands)[1](g)


_pallas_with_xla_vjp.defvjp(_fwd, _bwd)


def fused_conv3x3(x: jax.Array, w: jax.Array, *, gn_scale: jax.Array, gn_bias: jax.Array,
                  num_groups: int, bias: jax.Array, residual: jax.Array | None = None,
                  padding: str = "SAME", impl: str | None = None,
                  epsilon: float = 1e-6) -> jax.Array:
  """conv3x3(SiLU(GroupNorm(x))) + bias (+ residual), stride 1, NHWC.

  Args:
    x: [B, H, W, C_in], float32 or bfloat16.
    w: [3, 3, C_in, C_out]; cast to x's dtype, float32 accumulation.
    gn_scale, gn_bias: [C_in], GroupNorm's scale and bias; num_groups divides C_in.
    bias: [C_out]. residual: None or [B, H, W, C_out].
    padding: "SAME", "CIRCULAR_W" or "SPHERE" (genjax.kernels.padding), applied to the
      activation, as a convolution of SiLU(GroupNorm(x)) would.
    impl: "xla", "pallas", or None / "auto" for the dispatcher's choice.
    epsilon: GroupNorm's variance epsilon (flax.linen.GroupNorm's default).
  Returns:
    [B, H, W, C_out] in x's dtype. Differentiable in every array argument (the
    Pallas implementation's gradients are those of the "xla" composition).
  """
  check_operands(x, w, gn_scale, gn_bias, bias, residual, num_groups, padding)
  if select_impl(impl) == "xla":
    return fused_conv3x3_xla(x, w, gn_scale=gn_scale, gn_bias=gn_bias, num_groups=num_groups,
                             bias=bias, residual=residual, padding=padding, epsilon=epsilon)
  return _pallas_with_xla_vjp(num_groups, padding, epsilon, x, w, gn_scale, gn_bias, bias,
                              residual)
