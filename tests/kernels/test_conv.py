"""Every conv2d implementation against a float64 NumPy reference: forward, input and
weight gradients, in float32 and bfloat16."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.kernels import conv, onednn_build
from genjax.kernels.conv_reference import conv2d_reference, pad_reference

TOL = {jnp.float32: 1e-5, jnp.bfloat16: 1e-2}


def _random_shapes(n, seed=7):
  """Seeded random cases: odd and even sizes, channels that are not multiples of 8."""
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(n):
    mode = str(rng.choice(["SAME", "CIRCULAR_W", "SPHERE"]))
    w = int(rng.integers(2, 6)) * 2 if mode == "SPHERE" else int(rng.integers(3, 12))
    out.append((int(rng.integers(1, 4)), int(rng.integers(3, 12)), w, int(rng.integers(1, 14)),
                int(rng.integers(1, 14)), int(rng.choice([1, 3])), int(rng.choice([1, 2])), mode))
  return out


SHAPES = [  # (B, H, W, Cin, Cout, k, stride, padding)
    (2, 7, 9, 3, 5, 3, 1, "SAME"),          # odd spatial sizes
    (1, 8, 6, 12, 10, 3, 2, "SAME"),        # batch 1, stride 2
    (2, 7, 5, 5, 9, 3, 2, "SAME"),          # stride 2 on odd sizes
    (2, 6, 8, 5, 7, 3, 1, "CIRCULAR_W"),
    (1, 5, 7, 6, 3, 3, 2, "CIRCULAR_W"),
    (1, 5, 8, 3, 4, 3, 1, "SPHERE"),        # odd height on the sphere
    (2, 8, 8, 6, 6, 3, 2, "SPHERE"),
    (3, 5, 7, 9, 11, 1, 1, "SAME"),         # 1x1
    (2, 6, 6, 10, 4, 1, 2, "SAME"),         # 1x1 stride 2
    *_random_shapes(2),
]


def _skip_unavailable(impl):
  if impl not in conv.available_implementations():
    pytest.skip(f"conv2d impl {impl!r} not available here: {onednn_build.status()}")


def _rel(a, b):
  return float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b))


def _data(shape, seed=0):
  b, h, w, ci, co, k, *_ = shape
  rng = np.random.default_rng(seed)
  return rng.standard_normal((b, h, w, ci)), rng.standard_normal((k, k, ci, co)) / k


def _reference_grads(x, w, g, stride, padding):
  """Input and weight gradients of <conv(x, w), g> in float64 by the chain rule on taps."""
  k = w.shape[0]
  p = (k - 1) // 2
  xp = pad_reference(x, p, p, padding)
  ho, wo = g.shape[1:3]
  dxp = np.zeros_like(xp)
  dw = np.zeros_like(w)
  for i in range(k):
    for j in range(k):
      sl = (slice(None), slice(i, i + stride * (ho - 1) + 1, stride),
            slice(j, j + stride * (wo - 1) + 1, stride))
      dw[i, j] = np.einsum("bhwc,bhwd->cd", xp[sl], g)
      dxp[sl] += g @ w[i, j].T
  # Fold the padded gradient back onto x through the padding map (pad is linear:
  # its transpose sums the gradient of every copy of a pixel). Padded cells that are
  # zeros, not copies, are masked out.
  probe = np.arange(x.size, dtype=np.float64).reshape(x.shape)
  idx = pad_reference(probe, p, p, padding)
  valid = pad_reference(np.ones_like(x), p, p, padding) > 0
  dx = np.zeros(x.size)
  np.add.at(dx, idx[valid].astype(np.int64), dxp[valid])
  return dx.reshape(x.shape), dw


@functools.partial(jax.jit, static_argnames=("impl", "stride", "padding"))
def _forward_and_vjp(x, w, g, *, impl, stride, padding):
  f = functools.partial(conv.conv2d, stride=stride, padding=padding, impl=impl)
  y, vjp = jax.vjp(f, x, w)
  return (y, *vjp(g))


# bfloat16 on a subset (every padding mode, both strides, 1x1): a compile per case.
CASES = ([(s, jnp.float32) for s in SHAPES] +
         [(s, jnp.bfloat16) for s in (SHAPES[0], SHAPES[4], SHAPES[6], SHAPES[8])])


@pytest.mark.parametrize("impl", list(conv.IMPLEMENTATIONS))
@pytest.mark.parametrize("shape, dtype", CASES,
                         ids=["x".join(map(str, s)) + f"-{jnp.dtype(d).name}" for s, d in CASES])
def test_forward_and_gradients_match_float64(shape, dtype, impl):
  _skip_unavailable(impl)
  *_, stride, padding = shape
  x, w = _data(shape)
  y_ref = conv2d_reference(x, w, stride=stride, padding=padding)
  g = np.random.default_rng(1).standard_normal(y_ref.shape)
  with jax.default_matmul_precision("highest"):
    y, dx, dw = _forward_and_vjp(jnp.asarray(x, dtype), jnp.asarray(w, dtype),
                                 jnp.asarray(g, dtype), impl=impl, stride=stride,
                                 padding=padding)
  dx_ref, dw_ref = _reference_grads(x, w, g, stride, padding)
  # bf16 is judged against the unrounded float64 inputs: its input rounding is in the 1e-2.
  assert y.dtype == dx.dtype == dw.dtype == dtype
  assert y.shape == y_ref.shape and dx.shape == x.shape and dw.shape == w.shape
  assert _rel(y, y_ref) <= TOL[dtype]
  assert _rel(dx, dx_ref) <= TOL[dtype]
  assert _rel(dw, dw_ref) <= TOL[dtype]


@pytest.mark.parametrize("impl", list(conv.IMPLEMENTATIONS))
def test_float32_weights_with_bfloat16_activations(impl):
  """Models keep float32 parameters and compute in bfloat16: the weight gradient comes
  back float32 through the cast."""
  _skip_unavailable(impl)
  x, w = _data((2, 6, 6, 4, 5, 3, 1, ""))
  f = lambda x, w: conv.conv2d(x, w, impl=impl).astype(jnp.float32).sum()
  dw = jax.jit(jax.grad(f, argnums=1))(jnp.asarray(x, jnp.bfloat16), jnp.asarray(w, jnp.float32))
  dw_ref = _reference_grads(x, w, np.ones((2, 6, 6, 5)), 1, "SAME")[1]
  assert dw.dtype == jnp.float32
  assert _rel(dw, dw_ref) <= 1e-2


@pytest.mark.parametrize("impl", list(conv.IMPLEMENTATIONS))
def test_batch_sharded_over_devices(impl):
  """Data parallel: x and g sharded along the batch over the (fake) devices; the weight
  gradient is a sum over every device's batch."""
  _skip_unavailable(impl)
  n = jax.device_count()
  mesh = jax.make_mesh((n,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  shard = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  x, w = _data((2 * n, 6, 8, 4, 5, 3, 1, ""))
  g = np.random.default_rng(1).standard_normal((2 * n, 6, 8, 5))
  with jax.default_matmul_precision("highest"):
    y, dx, dw = _forward_and_vjp(
        jax.device_put(jnp.asarray(x, jnp.float32), shard), jnp.asarray(w, jnp.float32),
        jax.device_put(jnp.asarray(g, jnp.float32), shard), impl=impl, stride=1,
        padding="CIRCULAR_W")
  dx_ref, dw_ref = _reference_grads(x, w, g, 1, "CIRCULAR_W")
  assert _rel(y, conv2d_reference(x, w, padding="CIRCULAR_W")) <= 1e-5
  assert _rel(dx, dx_ref) <= 1e-5 and _rel(dw, dw_ref) <= 1e-5


@pytest.mark.parametrize("impl", list(conv.IMPLEMENTATIONS))
def test_circular_equals_explicit_wrap(impl):
  _skip_unavailable(impl)
  x, w = _data((2, 6, 8, 4, 3, 3, 1, ""))
  wrapped = np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 0)), mode="wrap")
  ref = conv2d_reference(wrapped, w, padding="SAME")[:, :, 1:-1]
  with jax.default_matmul_precision("highest"):
    out = conv.conv2d(jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32),
                      padding="CIRCULAR_W", impl=impl)
  assert _rel(out, ref) <= 1e-5


@pytest.mark.parametrize("kwargs, message", [
    ({"stride": 3}, "stride"), ({"padding": "REFLECT"}, "padding"), ({"impl": "cuda9"}, "unknown"),
])
def test_bad_arguments(kwargs, message):
  x, w = jnp.zeros((1, 4, 4, 2)), jnp.zeros((3, 3, 2, 2))
  with pytest.raises(ValueError, match=message):
    conv.conv2d(x, w, **kwargs)


def test_bad_shapes():
  with pytest.raises(ValueError, match=r"\(1, 4, 4, 2\).*\(3, 3, 5, 2\)"):
    conv.conv2d(jnp.zeros((1, 4, 4, 2)), jnp.zeros((3, 3, 5, 2)))
  with pytest.raises(ValueError, match="odd"):
    conv.conv2d(jnp.zeros((1, 4, 4, 2)), jnp.zeros((2, 2, 2, 2)))


# oneDNN keeps weights in blocked layouts (16, 32 or 64 channels a block) and copies them
# tap by tap; channel counts that are not multiples of a block pad the layout. Winograd
# covers 3x3 stride 1 with channels in whole 16-blocks (the rest is oneDNN's direct path):
# every padding mode, odd sizes, batch 1, a 4x4 image smaller than two output tiles.
BLOCKED = [(2, 9, 11, 40, 72, 3, 1, "SAME"), (1, 10, 8, 72, 40, 3, 2, "CIRCULAR_W"),
           (2, 6, 8, 64, 48, 3, 1, "SPHERE"), (2, 7, 7, 48, 80, 1, 2, "SAME")]
WINOGRAD = [(2, 9, 11, 16, 32, 3, 1, "SAME"), (1, 7, 10, 32, 16, 3, 1, "CIRCULAR_W"),
            (2, 5, 8, 48, 16, 3, 1, "SPHERE"), (3, 4, 4, 16, 64, 3, 1, "SAME")]
ONEDNN_CASES = ([("onednn", s, jnp.float32) for s in BLOCKED] +
                [("winograd", s, jnp.float32) for s in WINOGRAD] +
                [("winograd", WINOGRAD[2], jnp.bfloat16)])


@pytest.mark.parametrize("impl, shape, dtype", ONEDNN_CASES,
                         ids=[f"{i}-" + "x".join(map(str, s)) + f"-{jnp.dtype(d).name}"
                              for i, s, d in ONEDNN_CASES])
def test_onednn_blocked_layouts(impl, shape, dtype):
  _skip_unavailable(impl)
  *_, stride, padding = shape
  x, w = _data(shape)
  y_ref = conv2d_reference(x, w, stride=stride, padding=padding)
  g = np.random.default_rng(1).standard_normal(y_ref.shape)
  y, dx, dw = _forward_and_vjp(jnp.asarray(x, dtype), jnp.asarray(w, dtype),
                               jnp.asarray(g, dtype), impl=impl, stride=stride,
                               padding=padding)
  dx_ref, dw_ref = _reference_grads(x, w, g, stride, padding)
  assert y.dtype == dx.dtype == dw.dtype == dtype
  assert max(_rel(y, y_ref), _rel(dx, dx_ref), _rel(dw, dw_ref)) <= TOL[dtype]


def test_winograd_covers_only_what_it_computes():
  from genjax.kernels import conv_winograd  # pylint: disable=import-outside-toplevel
  covers = conv_winograd.covers
  assert covers((2, 8, 8, 16), (3, 3, 16, 32), 1)
  assert not covers((2, 8, 8, 16), (3, 3, 16, 32), 2)      # stride 2
  assert not covers((2, 8, 8, 16), (1, 1, 16, 32), 1)      # 1x1
  assert not covers((2, 8, 8, 40), (3, 3, 40, 32), 1)      # not whole 16-channel blocks


def test_winograd_cases_run_onednn_winograd():
  """The WINOGRAD cases above are computed by Winograd, not by the direct fallback: oneDNN
  created Winograd primitives for both passes (a workspace size, not -1)."""
  _skip_unavailable("winograd")
  from genjax.kernels import conv_onednn, conv_winograd  # pylint: disable=import-outside-toplevel
  for b, h, w, ci, co, k, stride, padding in WINOGRAD:
    xe, pads, out_hw = conv_onednn.explicit_padding(jnp.zeros((b, h, w, ci)), k, k, stride,
                                                    padding)
    for backward in (False, True):
      nbytes = conv_winograd.workspace_bytes(backward, xe.shape, (k, k, ci, co),
                                             (b, *out_hw, co), pads)
      assert nbytes > b * h * w * (ci + co) * 4  # at least the blocked copies
