"""The body of a UNet residual block as one Pallas kernel (GPU, Triton-style BlockSpecs):

    y = conv3x3(SiLU(GroupNorm(x))) + bias (+ residual)

Implicit GEMM: no im2col buffer. The spatially padded input is flattened to rows of
length Wp = W + 2, so the 3x3 tap (dy, dx) of output position m (a flat index into the
H x Wp output grid) is input row m + dy * Wp + dx, and every tap is a plain 2-D slice
[block_m, block_k] of the flattened image. The two output columns per row that land in
the padding are computed and cropped: 2 / Wp wasted work, but tiles span several image
rows, so small images (W = 4, 8) still fill a block_m = 64 tile.

Prologue: GroupNorm + SiLU is applied to each loaded slice in float32 before the matrix
product. The group statistics need the whole image, so a cheap XLA pre-pass (one read of
x) folds them with the GroupNorm scale and bias into a per-(batch, channel) affine map
x * a + s. Padding must be zero *after* the activation, so a 0/1 mask of padded cells
(flattened like x) zeroes them; wrap-around cells (CIRCULAR_W, SPHERE) are copies of real
pixels and stay. Epilogue: bias and residual are added to the float32 accumulator before
the one rounding to the output dtype.

Layout in the spirit of jax.experimental.pallas.ops.gpu (attention.py, layer_norm.py):
a frozen BlockSizes, whole-image input blocks sliced with pl.ds inside the kernel, a
(batch, M tile, N tile) grid, power-of-two tile shapes (Triton needs them). On CPU the
kernel runs only in interpret mode (the tests); GPU timings are not yet measured.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

from genjax.kernels import padding as padding_lib
from genjax.kernels.group_norm import group_affine

# Triton's tl.dot needs every tile dimension >= 16.
MIN_TILE = 16


@dataclasses.dataclass(frozen=True, slots=True)
class BlockSizes:
  """Tile sizes of the kernel (powers of two; clamped to the problem, at least 16).

  Attributes:
    block_m: output positions (flattened H x (W + 2) grid) per program.
    block_n: output channels per program.
    block_k: input channels per step of the reduction loop (9 taps per step).
    num_warps: Triton warps per program.
    num_stages: Triton software-pipelining stages of the reduction loop.
  """
  block_m: int = 64
  block_n: int = 64
  block_k: int = 32
  num_warps: int = 4
  num_stages: int = 2

  def __post_init__(self):
    for f in ("block_m", "block_n", "block_k"):
      v = getattr(self, f)
      if v < 1 or v & (v - 1):
        raise ValueError(f"BlockSizes.{f} must be a positive power of two, got {v}")

  @classmethod
  def get_default(cls) -> "BlockSizes":
    return cls()


def _round_up(n: int, m: int) -> int:
  return -(-n // m) * m


def _tile(want: int, size: int) -> int:
  """`want` shrunk to the next power of two >= size, but not below MIN_TILE."""
  return max(MIN_TILE, min(want, pl.next_power_of_2(size)))


def _kernel(x_ref, mask_ref, a_ref, s_ref, w_ref, bias_ref, *refs, row_stride: int,
            block_m: int, block_k: int, num_k: int):
  """One [block_m, block_n] output tile; the reduction runs over channel blocks x 9 taps.

  x_ref [L, Cp] (one flattened padded image), mask_ref [L] (1 = real pixel), a_ref, s_ref
  [Cp] (GroupNorm affine of this sample), w_ref [9, Cp, block_n], bias_ref [block_n],
  optional residual ref and the output ref, both [block_m, block_n].
  """
  res_ref, o_ref = refs if len(refs) == 2 else (None, refs[0])
  m0 = pl.program_id(1) * block_m

  def body(kc, acc):
    ks = pl.ds(pl.multiple_of(kc * block_k, block_k), block_k)
    a = a_ref[ks][None, :]
    s = s_ref[ks][None, :]
    for tap in range(9):  # unrolled: the row offsets are constants
      dy, dx = divmod(tap, 3)
      rows = pl.ds(m0 + dy * row_stride + dx, block_m)
      hpre = x_ref[rows, ks].astype(jnp.float32) * a + s
      # SiLU, then zero padding applied after the activation (as the conv would see it).
      hact = hpre * jax.nn.sigmoid(hpre) * mask_ref[rows][:, None]
      acc += jnp.dot(hact.astype(w_ref.dtype), w_ref[tap, ks, :],
                     preferred_element_type=jnp.float32)
    return acc

  acc = lax.fori_loop(0, num_k, body, jnp.zeros(o_ref.shape, jnp.float32))
  acc += bias_ref[...].astype(jnp.float32)[None, :]
  if res_ref is not None:
    acc += res_ref[...].astype(jnp.float32)
  o_ref[...] = acc.astype(o_ref.dtype)


def check_operands(x, w, gn_scale, gn_bias, bias, residual, num_groups: int, padding: str):
  """ValueError naming the values unless the operands fit fused_conv3x3's contract."""
  if x.ndim != 4:
    raise ValueError(f"fused_conv3x3: x must be [B, H, W, C], got shape {x.shape}")
  b, h, wd, c = x.shape
  if w.shape[:3] != (3, 3, c) or w.ndim != 4:
    raise ValueError(f"fused_conv3x3: w must be [3, 3, {c}, C_out] for x {x.shape}, "
                     f"got {w.shape}")
  if gn_scale.shape != (c,) or gn_bias.shape != (c,):
    raise ValueError(f"fused_conv3x3: gn_scale {gn_scale.shape} and gn_bias {gn_bias.shape} "
                     f"must be ({c},)")
  if bias.shape != (w.shape[3],):
    raise ValueError(f"fused_conv3x3: bias must be ({w.shape[3]},), got {bias.shape}")
  if residual is not None and residual.shape != (b, h, wd, w.shape[3]):
    raise ValueError(f"fused_conv3x3: residual must be {(b, h, wd, w.shape[3])}, "
                     f"got {residual.shape}")
  if num_groups < 1 or c % num_groups:
    raise ValueError(f"fused_conv3x3: {num_groups=} must divide the {c} input channels")
  if padding not in padding_lib.MODES:
    raise ValueError(f"fused_conv3x3: padding must be one of {padding_lib.MODES}, "
                     f"got {padding!r}")
  if x.dtype not in (jnp.float32, jnp.bfloat16):
    raise ValueError(f"fused_conv3x3: x must be float32 or bfloat16, got {x.dtype}")


@functools.partial(jax.jit, static_argnames=("num_groups", "padding", "epsilon",
                                             "block_sizes", "interpret"))
def fused_conv3x3_pallas(x: jax.Array, w: jax.Array, *, gn_scale: jax.Array,
                         gn_bias: jax.Array, num_groups: int, bias: jax.Array,
                         residual: jax.Array | None = None, padding: str = "SAME",
                         epsilon: float = 1e-6, block_sizes: BlockSizes | None = None,
                         interpret: bool | None = None) -> jax.Array:
  """conv3x3(SiLU(GroupNorm(x))) + bias (+ residual), stride 1, as one Pallas kernel.

  Forward only (fused_resblock.fused_conv3x3 adds the gradients).

  Args:
    x: [B, H, W, C_in], float32 or bfloat16.
    w: [3, 3, C_in, C_out], cast to x's dtype; the products accumulate in float32.
    gn_scale, gn_bias: [C_in] GroupNorm parameters; num_groups divides C_in.
    bias: [C_out]. residual: None or [B, H, W, C_out], added in float32.
    padding: "SAME", "CIRCULAR_W" or "SPHERE" (genjax.kernels.padding), applied to the
      activation SiLU(GroupNorm(x)) as a convolution of it would.
    epsilon: GroupNorm's variance epsilon (flax's default).
    block_sizes: tile sizes; None: BlockSizes.get_default().
    interpret: run the kernel in Pallas interpret mode; None: only on the CPU.
  Returns:
    [B, H, W, C_out] in x's dtype.
  """
  check_operands(x, w, gn_scale, gn_bias, bias, residual, num_groups, padding)
  bs = block_sizes or BlockSizes.get_default()
  if interpret is None:
    interpret = jax.default_backend() == "cpu"
  b, h, wd, cin = x.shape
  cout = w.shape[3]
  wp = wd + 2
  block_m = _tile(bs.block_m, h * wp)
  block_n = _tile(bs.block_n, cout)
  block_k = _tile(bs.block_k, cin)
  cp, np_, mp = _round_up(cin, block_k), _round_up(cout, block_n), _round_up(h * wp, block_m)
  # The last tile reads up to row mp - 1 + 2 * wp + 2 of the flattened padded image.
  length = max((h + 2) * wp, mp + 2 * wp + 2)

  a, s = group_affine(x, gn_scale, gn_bias, num_groups=num_groups, epsilon=epsilon)
  a = jnp.pad(a, ((0, 0), (0, cp - cin)))
  s = jnp.pad(s, ((0, 0), (0, cp - cin)))
  flat = lambda t: jnp.pad(t.reshape(t.shape[0], -1, t.shape[-1]),
                           ((0, 0), (0, length - (h + 2) * wp), (0, 0)))
  xf = flat(padding_lib.pad(jnp.pad(x, ((0, 0),) * 3 + ((0, cp - cin),)), 1, 1, padding))
  mask = flat(padding_lib.pad(jnp.ones((1, h, wd, 1), jnp.float32), 1, 1, padding))[0, :, 0]
  wf = jnp.pad(w.astype(x.dtype).reshape(9, cin, cout), ((0, 0), (0, cp - cin), (0, np_ - cout)))
  bf = jnp.pad(bias, (0, np_ - cout))

  in_specs = [
      pl.BlockSpec((None, length, cp), lambda i, j, n: (i, 0, 0)),
      pl.BlockSpec((length,), lambda i, j, n: (0,)),
      pl.BlockSpec((None, cp), lambda i, j, n: (i, 0)),
      pl.BlockSpec((None, cp), lambda i, j, n: (i, 0)),
      pl.BlockSpec((9, cp, block_n), lambda i, j, n: (0, 0, n)),
      pl.BlockSpec((block_n,), lambda i, j, n: (n,)),
  ]
  out_spec = pl.BlockSpec((None, block_m, block_n), lambda i, j, n: (i, j, n))
  operands = [xf, mask, a, s, wf, bf]
  if residual is not None:
    # The residual in the output's flattened H x Wp layout (zero in the cropped columns).
    rf = jnp.pad(residual, ((0, 0), (0, 0), (0, 2), (0, np_ - cout))).reshape(b, h * wp, np_)
    operands.append(jnp.pad(rf, ((0, 0), (0, mp - h * wp), (0, 0))))
    in_specs.append(out_spec)
  # Triton's parameters also select the Triton lowering on GPU (without them jax 0.10
  # picks Mosaic GPU); interpret mode ignores them; Mosaic TPU rejects them.
  compiler_params = None
  if jax.default_backend() != "tpu":
    compiler_params = plgpu.CompilerParams(num_warps=bs.num_warps, num_stages=bs.num_stages)
  kernel = functools.partial(_kernel, row_stride=wp, block_m=block_m, block_k=block_k,
                             num_k=cp // block_k)
  out = pl.pallas_call(
      kernel,
      grid=(b, mp // block_m, np_ // block_n),
      in_specs=in_specs,
      out_specs=out_spec,
      out_shape=jax.ShapeDtypeStruct((b, mp, np_), x.dtype),
      compiler_params=compiler_params,
      interpret=interpret,
      name="fused_gn_silu_conv3x3",
  )(*operands)
  return out[:, :h * wp].reshape(b, h, wp, np_)[:, :, :wd, :cout]
