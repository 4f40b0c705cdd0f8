"""Winograd F(4x4, 3x3) convolution written in JAX (3x3, stride 1), for every backend.

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016): each 4x4
output tile of a 3x3 correlation is computed from a 6x6 input tile d as

    Y = A^T [(G g G^T) * (B^T d B)] A        (* elementwise over the 6x6 positions)

so the channel contraction is 36 matrix products, one per tile position, instead of the
144 multiplications per channel pair of the direct convolution (4x fewer):

    V = B^T d B   [36, B * tiles, Cin]     (input transform, one XLA loop fusion)
    U = G g G^T   [36, Cin, Cout]
    M = V @ U     [36, B * tiles, Cout]    (one batched matrix product)
    y = A^T M A   -> [B, H', W', Cout]     (output transform)

Spatial sizes that are not multiples of 4 are padded with zero tiles and cropped; the
wrap-around modes are padded explicitly first, as in conv_onednn. Custom VJP, so that
the 2.25x-larger V is not a residual (x and w are): the input gradient is this same
Winograd correlation of g with the kernel flipped and its channels swapped; the weight
gradient is XLA's. Measured per pass (CPU ms, 2-core AVX-512, batch 32, float32,
genjax's XLA flags and malloc settings):

    shape [H, W, Cin->Cout]   XLA fwd / dx / dw     Winograd fwd / dx / (dw)
    32x32x64->64              29 / 28 / 40          23 / 29 / 47 (XLA's)
    16x16x128->128            29 / 28 / 38          16 / 19 / 35 (XLA's)
    16x16x256->128            61 / 54 / 71          35 / 41 / 71 (XLA's)

Winograd's own weight gradient (dU = V^T dM per tile position, back through G) ran
1.4-2.5x slower than XLA's, and the input gradient as the transpose of the input
transform (an overlap-add of the tiles) 2x slower than XLA's; both were removed.

Accuracy: the transforms mix values of different magnitudes; float32 results are
about 1e-6 from the float64 convolution (tests/kernels/test_conv_winograd_jax.py holds
them to the conv core's 1e-5). bfloat16 operands are computed in float32 throughout:
rounding V and U to bfloat16 for the products put the result 2e-2 from the float64
convolution, twice the conv core's bfloat16 tolerance.
"""

import functools

import jax
import jax.numpy as jnp

from genjax.kernels import conv_xla
from genjax.kernels.conv_onednn import explicit_padding

_F32 = jnp.float32
TILE = 4     # output tile (m)
ALPHA = 6    # input tile, m + 3 - 1
# Lavin & Gray's F(4x4, 3x3) matrices (points 0, +-1, +-2, infinity).
BT = ((4, 0, -5, 0, 1, 0),
      (0, -4, -4, 1, 1, 0),
      (0, 4, -4, -1, 1, 0),
      (0, -2, -1, 2, 1, 0),
      (0, 2, -1, -2, 1, 0),
      (0, 4, 0, -5, 0, 1))
G = ((1 / 4, 0, 0),
     (-1 / 6, -1 / 6, -1 / 6),
     (-1 / 6, 1 / 6, -1 / 6),
     (1 / 24, 1 / 12, 1 / 6),
     (1 / 24, -1 / 12, 1 / 6),
     (0, 0, 1))
AT = ((1, 1, 1, 1, 1, 0),
      (0, 1, -1, 2, -2, 0),
      (0, 1, 1, 4, 4, 0),
      (0, 1, -1, 8, -8, 1))


def covers(x_shape, w_shape, stride: int) -> bool:
  """Whether Winograd computes this convolution (3x3, stride 1); else XLA's does."""
  return (*w_shape[:2], stride) == (3, 3, 1)


def _combine(matrix, parts):
  """[sum_k matrix[i][k] * parts[k] for each row i], with the zero terms left out and
  the +-1 ones unmultiplied (the constants are exact, so XLA fuses plain adds)."""
  out = []
  for row in matrix:
    acc = None
    for c, p in zip(row, parts):
      if c == 0:
        continue
      term = p if c == 1 else -p if c == -1 else p * c
      acc = term if acc is None else acc + term
    out.append(acc)
  return out


def _tiles(n: int) -> int:
  return -(-n // TILE)


def input_transform(xe: jax.Array, pads: tuple[int, int], out_hw) -> jax.Array:
  """float32 xe [B, He, We, C] -> V [36, B * nh * nw, C], nh = ceil(H' / 4) (nw alike):
  B^T d B of every 6x6 tile (stride 4) of xe zero-padded by `pads` at the top and left
  and with zeros (or cropped) at the bottom and right to 4 nh + 2 rows."""
  b, he, we, c = xe.shape
  nh, nw = _tiles(out_hw[0]), _tiles(out_hw[1])
  rows, cols = TILE * nh + 2, TILE * nw + 2
  xe = xe[:, :rows - pads[0], :cols - pads[1]]
  xp = jnp.pad(xe, ((0, 0), (pads[0], rows - pads[0] - xe.shape[1]),
                    (pads[1], cols - pads[1] - xe.shape[2]), (0, 0)))
  r = [xp[:, a:a + TILE * (nh - 1) + 1:TILE] for a in range(ALPHA)]           # [B, nh, cols, C]
  r = _combine(BT, r)
  v = [[t[:, :, a:a + TILE * (nw - 1) + 1:TILE] for a in range(ALPHA)] for t in r]  # [B,nh,nw,C]
  v = [_combine(BT, row) for row in v]
  return jnp.stack([t for row in v for t in row]).reshape(ALPHA * ALPHA, b * nh * nw, c)


def weight_transform(w: jax.Array) -> jax.Array:
  """float32 w [3, 3, Cin, Cout] -> U = G w G^T [36, Cin, Cout]."""
  rows = _combine(G, [w[i] for i in range(3)])                               # 6 x [3, Ci, Co]
  u = [_combine(G, [r[j] for j in range(3)]) for r in rows]
  return jnp.stack([t for row in u for t in row])


def output_transform(m: jax.Array, batch: int, out_hw) -> jax.Array:
  """M [36, B * nh * nw, Cout] -> float32 [B, H', W', Cout]: A^T M A per tile, cropped."""
  nh, nw = _tiles(out_hw[0]), _tiles(out_hw[1])
  m = m.reshape(ALPHA, ALPHA, batch, nh, nw, m.shape[-1])
  rows = _combine(AT, [m[i] for i in range(ALPHA)])                          # 4 x [6, B, ...]
  y = jnp.stack([jnp.stack(_combine(AT, [r[j] for j in range(ALPHA)])) for r in rows])
  y = y.transpose(2, 3, 0, 4, 1, 5).reshape(batch, TILE * nh, TILE * nw, -1)  # [B, 4nh, 4nw, C]
  return y[:, :out_hw[0], :out_hw[1]]


def _product(v, u, dims):
  """The 36 tile-position products: dot_general batched over axis 0, contracting `dims`."""
  return jax.lax.dot_general(v, u, (dims, ((0,), (0,))), preferred_element_type=v.dtype)


def _dtype(x: jax.Array):
  """The transforms' and products' dtype: float32, or float64 where x is (tests)."""
  return jnp.promote_types(x.dtype, _F32)


def _forward(xe, w, pads, out_hw):
  """xe [B, He, We, Cin], w [3, 3, Cin, Cout] -> [B, H', W', Cout] (float32, or float64
  for float64 operands): the stride-1 correlation of xe zero-padded by `pads` at the
  top and left (and as much as out_hw needs at the bottom and right)."""
  dt = _dtype(xe)
  v = input_transform(xe.astype(dt), pads, out_hw)
  u = weight_transform(w.astype(dt))
  return output_transform(_product(v, u, ((2,), (1,))), xe.shape[0], out_hw)


def _explicit(x: jax.Array, pad_mode: str):
  return explicit_padding(x, 3, 3, 1, pad_mode)[0]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv(x, w, pad_mode):
  """x [B, H, W, Cin], w [3, 3, Cin, Cout] -> float32 [B, H, W, Cout]."""
  xe, pads, out_hw = explicit_padding(x, 3, 3, 1, pad_mode)
  return _forward(xe, w, pads, out_hw)


def _conv_fwd(x, w, pad_mode):
  return _conv(x, w, pad_mode), (x, w)


def _conv_bwd(pad_mode, residuals, g):
  x, w = residuals
  xe, vjp_pad = jax.vjp(lambda a: _explicit(a, pad_mode), x)
  _, pads, _ = explicit_padding(x, 3, 3, 1, pad_mode)
  # Input gradient: a stride-1 correlation again, of g with the kernel flipped and its
  # channels swapped, g zero-padded by 2 - pads, then back through the wrap-around
  # padding (transposing the overlap-add of the input transform instead measured 2x
  # slower than XLA's input gradient).
  w_flip = jnp.flip(w, (0, 1)).swapaxes(2, 3)
  (dx,) = vjp_pad(_forward(g, w_flip, (2 - pads[0], 2 - pads[1]), xe.shape[1:3]).astype(x.dtype))
  # Weight gradient: XLA's. Winograd's (V^T dM per tile position, back through G)
  # measured 1.4-2.5x slower at the CIFAR shapes (benchmarks/README.md).
  _, vjp_w = jax.vjp(lambda a: conv_xla.conv_lax(x, a, stride=1, pad_mode=pad_mode), w)
  (dw,) = vjp_w(g.astype(_F32))
  return dx, dw


_conv.defvjp(_conv_fwd, _conv_bwd)


def conv2d_winograd_jax(x: jax.Array, w: jax.Array, *, stride: int,
                        pad_mode: str) -> jax.Array:
  """x [B, H, W, Cin], w [kh, kw, Cin, Cout] -> [B, H', W', Cout] in x's dtype.

  Same contract as genjax.kernels.conv2d; what Winograd does not cover goes to "xla"."""
  if not covers(x.shape, w.shape, stride):
    return conv_xla.conv2d_xla(x, w, stride=stride, pad_mode=pad_mode)
  return _conv(x, w.astype(x.dtype), pad_mode).astype(x.dtype)
