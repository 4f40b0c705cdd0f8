"""Winograd F(4x4, 3x3) forward pass written in JAX (3x3, stride 1); XLA's backward pass.

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016): each 4x4
output tile of a 3x3 correlation is computed from a 6x6 input tile d as

    Y = A^T [(G g G^T) * (B^T d B)] A        (* elementwise over the 6x6 positions)

so the channel contraction is 36 matrix products, one per tile position, instead of the
144 multiplications per channel pair of the direct convolution (4x fewer):

    V = B^T d B   [36, B * tiles, Cin]     (input transform: strided slices, 6x6 products)
    U = G g G^T   [36, Cin, Cout]
    M = V @ U     [36, B * tiles, Cout]    (one batched matrix product)
    y = A^T M A   -> [B, H', W', Cout]     (output transform, cropped)

Spatial sizes that are not multiples of 4 are padded with zero tiles and cropped; the
wrap-around modes are padded explicitly first, as in conv_onednn.

Only the forward pass is Winograd's. The custom VJP keeps x and w (not the 2.25x-larger
V) and returns XLA's own input and weight gradients (the transposes of
conv_xla.conv_lax), so a program differentiated through this implementation keeps what
"xla" keeps and gets the same gradients, bit for bit. Route 4 (benchmarks/README.md,
issue 16) had Winograd backward passes: its weight gradient ran 1.4-2.5x slower than
XLA's, its input gradient (a flipped Winograd correlation) won at two CIFAR shapes and
lost at two, and the train step with it lost (0.875x). What this is for is programs without
gradients (sampling): genjax.kernels.conv picks it there (`forward_only`).

Accuracy: the transforms mix values of different magnitudes; float32 results are
1-3e-6 from the float64 convolution (XLA's direct one: 3e-7), inside the conv core's
1e-5. bfloat16 operands are computed in float32 throughout (rounding V and U to
bfloat16 put the result 2e-2 from float64, twice the conv core's bfloat16 tolerance).
"""

import functools

import jax
import jax.numpy as jnp

from genjax.kernels import conv_xla
from genjax.kernels.conv_onednn import explicit_padding

_F32 = jnp.float32
TILE = 4     # output tile (m)
ALPHA = 6    # input tile, m + 3 - 1
# Working-set bound of one step of the loop over the batch (see batch_chunk).
CHUNK_BYTES = 8 << 20
# Lavin & Gray's F(4x4, 3x3) matrices (interpolation points 0, +-1, +-2, infinity).
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


def _apply(matrix, stacked, axis: int):
  """sum_k matrix[i][k] * stacked[..., k (at `axis`), ...]: a constant 6x6 (or 4x6)
  matrix applied along `axis`, as one matrix product.

  Route 4 unrolled the transforms into one sum of slices per tile position (zero terms
  left out): faster per call (16x32x32x128->64 forward 20.6 CPU ms against 30.8 this
  way, XLA's 30-33), but ~2,300 HLO lines per convolution: the CIFAR DDIM sampler
  compiled in 65 s with 880 MiB more peak RSS, against 7.4 s and 79 MiB this way (XLA's
  convolutions: 5.1 s). A broadcast product summed over k (one loop fusion) compiled as
  fast and ran 8-15x slower than XLA's convolution."""
  m = jnp.asarray(matrix, stacked.dtype)
  out = jax.lax.dot_general(m, stacked, (((1,), (axis,)), ((), ())))
  return jnp.moveaxis(out, 0, axis)


def _tiles(n: int) -> int:
  return -(-n // TILE)


def _windows(x: jax.Array, axis: int, count: int) -> jax.Array:
  """The ALPHA strided views x[a : a + 4 (count - 1) + 1 : 4] along `axis`, a = 0..5,
  stacked on a new leading axis."""
  def view(a):
    index = [slice(None)] * x.ndim
    index[axis] = slice(a, a + TILE * (count - 1) + 1, TILE)
    return x[tuple(index)]
  return jnp.stack([view(a) for a in range(ALPHA)])


def input_transform(xe: jax.Array, pads: tuple[int, int], out_hw) -> jax.Array:
  """xe [B, He, We, C] -> V [36, B * nh * nw, C], nh = ceil(H' / 4) (nw alike):
  B^T d B of every 6x6 tile (stride 4) of xe zero-padded by `pads` at the top and left,
  and at the bottom and right (or cropped) to 4 nh + 2 rows, 4 nw + 2 columns."""
  b, _, _, c = xe.shape
  nh, nw = _tiles(out_hw[0]), _tiles(out_hw[1])
  rows, cols = TILE * nh + 2, TILE * nw + 2
  xe = xe[:, :rows - pads[0], :cols - pads[1]]
  xp = jnp.pad(xe, ((0, 0), (pads[0], rows - pads[0] - xe.shape[1]),
                    (pads[1], cols - pads[1] - xe.shape[2]), (0, 0)))
  r = _apply(BT, _windows(xp, 1, nh), 0)                      # [6, B, nh, cols, C]
  v = _apply(BT, _windows(r, 3, nw), 0).swapaxes(0, 1)       # [6 (row), 6 (col), B, nh, nw, C]
  return v.reshape(ALPHA * ALPHA, b * nh * nw, c)


def weight_transform(w: jax.Array) -> jax.Array:
  """w [3, 3, Cin, Cout] -> U = G w G^T [36, Cin, Cout]."""
  u = _apply(G, _apply(G, w, 0), 1)                          # [6, 6, Cin, Cout]
  return u.reshape(ALPHA * ALPHA, *w.shape[2:])


def output_transform(m: jax.Array, batch: int, out_hw) -> jax.Array:
  """M [36, B * nh * nw, Cout] -> [B, H', W', Cout]: A^T M A per tile, cropped."""
  nh, nw = _tiles(out_hw[0]), _tiles(out_hw[1])
  m = m.reshape(ALPHA, ALPHA, batch, nh, nw, m.shape[-1])
  y = _apply(AT, _apply(AT, m, 0), 1)                        # [4, 4, B, nh, nw, C]
  y = y.transpose(2, 3, 0, 4, 1, 5).reshape(batch, TILE * nh, TILE * nw, -1)
  return y[:, :out_hw[0], :out_hw[1]]


def batch_chunk(batch: int, tiles: int, channels: int) -> int:
  """Images per step of the loop over the batch: the largest divisor of `batch` whose
  V and M ([36, chunk * tiles, Cin] and [.., Cout] float32, `channels` = Cin + Cout)
  fit in CHUNK_BYTES. Over the whole batch at once the transforms stream tens of MiB
  through memory: with route 4's unrolled transforms a 16x32x32x128->64 forward took
  44 CPU ms that way, 16 ms in chunks of 4 images (XLA's: 26 ms)."""
  per_image = ALPHA * ALPHA * tiles * channels * 4
  fits = max(1, CHUNK_BYTES // per_image)
  return max(d for d in range(1, min(batch, fits) + 1) if batch % d == 0)


def forward(xe: jax.Array, w: jax.Array, pads: tuple[int, int], out_hw) -> jax.Array:
  """xe [B, He, We, Cin], w [3, 3, Cin, Cout] -> [B, H', W', Cout]: the stride-1
  correlation of xe zero-padded by `pads` at the top and left (and as much as out_hw
  needs at the bottom and right). Computed in float32, or float64 for float64 operands
  (tests: the tile algorithm is exact), `batch_chunk` images at a time."""
  dt = jnp.promote_types(xe.dtype, _F32)
  u = weight_transform(w.astype(dt))

  def tiles(xc):  # [b, He, We, Cin] -> [b, H', W', Cout]
    v = input_transform(xc.astype(dt), pads, out_hw)
    m = jax.lax.dot_general(v, u, (((2,), (1,)), ((0,), (0,))), preferred_element_type=dt)
    return output_transform(m, xc.shape[0], out_hw)

  b, cout = xe.shape[0], w.shape[-1]
  chunk = batch_chunk(b, _tiles(out_hw[0]) * _tiles(out_hw[1]), xe.shape[-1] + cout)
  if chunk == b:
    return tiles(xe)
  y = jax.lax.map(tiles, xe.reshape(b // chunk, chunk, *xe.shape[1:]))
  return y.reshape(b, *out_hw, cout)


def preferred(x_shape, w_shape, stride: int) -> bool:
  """Whether this forward pass measured faster than XLA's for such a convolution
  (benchmarks/README.md, float32, 2-core AVX-512): covered, H and W at least 8 (on 4x4
  images, one tile, it was no faster), at least 16 channels in and out (3 -> 64 and
  64 -> 3 were slower or no faster)."""
  return (covers(x_shape, w_shape, stride) and min(x_shape[1:3]) >= 8
          and min(w_shape[2:]) >= 16)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv(x, w, pad_mode):
  """x [B, H, W, Cin], w [3, 3, Cin, Cout] (x's dtype) -> float32 [B, H, W, Cout]."""
  xe, pads, out_hw = explicit_padding(x, 3, 3, 1, pad_mode)
  return forward(xe, w, pads, out_hw)


def _conv_fwd(x, w, pad_mode):
  return _conv(x, w, pad_mode), (x, w)


def _conv_bwd(pad_mode, residuals, g):
  # XLA's gradients: the transposes of the "xla" implementation's convolution.
  x, w = residuals
  _, vjp = jax.vjp(lambda x_, w_: conv_xla.conv_lax(x_, w_, stride=1, pad_mode=pad_mode), x, w)
  return vjp(g.astype(_F32))


_conv.defvjp(_conv_fwd, _conv_bwd)


def conv2d_winograd_jax(x: jax.Array, w: jax.Array, *, stride: int,
                        pad_mode: str) -> jax.Array:
  """x [B, H, W, Cin], w [kh, kw, Cin, Cout] -> [B, H', W', Cout] in x's dtype.

  Same contract as genjax.kernels.conv2d; what Winograd does not cover (1x1, stride 2)
  is the "xla" implementation."""
  if not covers(x.shape, w.shape, stride):
    return conv_xla.conv2d_xla(x, w, stride=stride, pad_mode=pad_mode)
  return _conv(x, w.astype(x.dtype), pad_mode).astype(x.dtype)
