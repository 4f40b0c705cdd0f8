"""fused_conv3x3 (GroupNorm + SiLU + conv3x3 + bias + residual) against a float64 NumPy
reference: the Pallas kernel in interpret mode, forward; the public entry, forward and
gradients, with both implementations; the reference's own gradient by finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.kernels import fused_resblock
from genjax.kernels.fused_resblock_pallas import BlockSizes, fused_conv3x3_pallas
from genjax.kernels.fused_resblock_reference import fused_conv3x3_reference, \
    fused_conv3x3_reference_vjp

TOL = {jnp.float32: 1e-5, jnp.bfloat16: 1e-2}
ARGS = ("x", "w", "gn_scale", "gn_bias", "bias", "residual")


def _rel(a, b):
  return float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b))


def _operands(b, h, w, cin, cout, *, residual, seed=0):
  """float64 operands; x has a nonzero mean and scale so the normalization matters."""
  rng = np.random.default_rng(seed)
  ops = {"x": 1.5 * rng.standard_normal((b, h, w, cin)) + 0.7,
         "w": rng.standard_normal((3, 3, cin, cout)) / np.sqrt(9 * cin),
         "gn_scale": 1 + 0.3 * rng.standard_normal(cin), "gn_bias": 0.3 * rng.standard_normal(cin),
         "bias": rng.standard_normal(cout),
         "residual": rng.standard_normal((b, h, w, cout)) if residual else None}
  return ops


def _cast(ops, dtype):
  """Activations (x, w, residual) in `dtype`; the normalization and bias parameters stay
  float32, as flax keeps them."""
  return {k: None if v is None else
          jnp.asarray(v, dtype if k in ("x", "w", "residual") else jnp.float32)
          for k, v in ops.items()}


FORWARD_CASES = [  # (B, H, W, Cin, Cout, groups, padding, residual, block sizes)
    (2, 5, 7, 6, 5, 3, "SAME", True, None),                         # odd sizes, C % 8 != 0
    (1, 4, 6, 20, 20, 5, "CIRCULAR_W", False, BlockSizes(16, 16, 16)),  # batch 1; 2 tiles on
                                                                    # M, N and the reduction
]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("case", FORWARD_CASES, ids=lambda c: "x".join(map(str, c[:7])))
def test_pallas_forward_matches_float64(case, dtype):
  *shape, groups, padding, residual, block_sizes = case
  ops = _operands(*shape, residual=residual)
  ref = fused_conv3x3_reference(**ops, num_groups=groups, padding=padding)
  y = fused_conv3x3_pallas(**_cast(ops, dtype), num_groups=groups, padding=padding,
                           block_sizes=block_sizes, interpret=True)
  # bf16 is judged against the unrounded float64 inputs: its input rounding is in the 1e-2.
  assert y.dtype == dtype and y.shape == ref.shape
  assert _rel(y, ref) <= TOL[dtype]


def test_pallas_sphere_padding():
  """SPHERE padding (pole rows are copies of real pixels, so they are normalized too)."""
  ops = _operands(1, 3, 6, 4, 3, residual=True, seed=3)
  ref = fused_conv3x3_reference(**ops, num_groups=2, padding="SPHERE")
  y = fused_conv3x3_pallas(**_cast(ops, jnp.float32), num_groups=2, padding="SPHERE",
                           interpret=True)
  assert _rel(y, ref) <= 1e-5


@jax.jit
def _forward_and_vjp_pallas(ops, g):
  return _forward_and_vjp(ops, g, "pallas")


@jax.jit
def _forward_and_vjp_xla(ops, g):
  return _forward_and_vjp(ops, g, "xla")


def _forward_and_vjp(ops, g, impl):
  def f(x, w, gn_scale, gn_bias, bias, residual):
    return fused_resblock.fused_conv3x3(x, w, gn_scale=gn_scale, gn_bias=gn_bias, num_groups=2,
                                        bias=bias, residual=residual, padding="CIRCULAR_W",
                                        impl=impl)
  y, vjp = jax.vjp(f, *(ops[k] for k in ARGS))
  return y, dict(zip(ARGS, vjp(g)))


@pytest.mark.parametrize("impl", ["pallas", "xla"])
@pytest.mark.parametrize("dtype, residual", [(jnp.float32, True), (jnp.bfloat16, False)],
                         ids=["f32-residual", "bf16"])
def test_forward_and_gradients_match_float64(impl, dtype, residual):
  ops = _operands(1, 3, 5, 6, 5, residual=residual, seed=1)
  kw = {"num_groups": 2, "padding": "CIRCULAR_W"}
  ref = fused_conv3x3_reference(**ops, **kw)
  g = np.random.default_rng(2).standard_normal(ref.shape)
  grads_ref = fused_conv3x3_reference_vjp(**ops, g=g, **kw)
  fn = _forward_and_vjp_pallas if impl == "pallas" else _forward_and_vjp_xla
  with jax.default_matmul_precision("highest"):
    y, grads = fn(_cast(ops, dtype), jnp.asarray(g, dtype))
  assert _rel(y, ref) <= TOL[dtype]
  for k in ARGS:
    if ops[k] is None:
      assert grads[k] is None
      continue
    assert grads[k].shape == ops[k].shape
    assert grads[k].dtype == (dtype if k in ("x", "w", "residual") else jnp.float32), k
    assert _rel(grads[k], grads_ref[k]) <= TOL[dtype], k


def test_reference_gradient_matches_finite_differences():
  """The hand-written float64 backward of the reference against central differences."""
  ops = _operands(2, 3, 4, 4, 3, residual=True, seed=4)
  kw = {"num_groups": 2, "padding": "SAME"}
  g = np.random.default_rng(5).standard_normal((2, 3, 4, 3))
  grads = fused_conv3x3_reference_vjp(**ops, g=g, **kw)
  rng = np.random.default_rng(6)
  eps = 1e-6
  for k in ARGS:
    d = rng.standard_normal(ops[k].shape)
    plus = dict(ops, **{k: ops[k] + eps * d})
    minus = dict(ops, **{k: ops[k] - eps * d})
    numeric = np.sum(g * (fused_conv3x3_reference(**plus, **kw)
                          - fused_conv3x3_reference(**minus, **kw))) / (2 * eps)
    assert np.isclose(np.sum(grads[k] * d), numeric, rtol=1e-6, atol=1e-8), k


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
def test_pallas_lowers_to_triton_for_cuda(dtype):
  """Without a GPU: the kernel lowers for CUDA through Pallas's Triton lowering, which
  rejects non-power-of-two tiles and unsupported ops (PTX compilation is not checked)."""
  spec = lambda *shape, dt=dtype: jax.ShapeDtypeStruct(shape, dt)
  def f(x, w, scale, bias, residual):
    return fused_conv3x3_pallas(x, w, gn_scale=scale, gn_bias=scale, num_groups=32, bias=bias,
                                residual=residual, interpret=False)
  exported = jax.export.export(
      jax.jit(f), platforms=("cuda",),
      disabled_checks=[jax.export.DisabledSafetyCheck.custom_call("__gpu$xla.gpu.triton")])(
          spec(2, 16, 12, 96), spec(3, 3, 96, 80), spec(96, dt=jnp.float32),
          spec(80, dt=jnp.float32), spec(2, 16, 12, 80))
  assert "xla.gpu.triton" in exported.mlir_module()


def test_select_impl(monkeypatch):
  monkeypatch.delenv(fused_resblock.IMPL_ENV, raising=False)
  cpu, gpu, tpu = (type("Device", (), {"platform": p})() for p in ("cpu", "gpu", "tpu"))
  assert fused_resblock.select_impl(device=cpu) == "xla"
  assert fused_resblock.select_impl(device=gpu) == "pallas"
  assert fused_resblock.select_impl("auto", device=tpu) == "xla"
  monkeypatch.setenv(fused_resblock.IMPL_ENV, "xla")
  assert fused_resblock.select_impl(device=gpu) == "xla"
  assert fused_resblock.select_impl("pallas", device=cpu) == "pallas"  # the argument wins
  monkeypatch.setenv(fused_resblock.IMPL_ENV, "triton")
  with pytest.raises(ValueError, match=r"'triton' from \$GENJAX_FUSED_IMPL; valid: auto, xla"):
    fused_resblock.select_impl(device=cpu)
  with pytest.raises(ValueError, match="'cudnn' from the impl argument"):
    fused_resblock.select_impl("cudnn")


def test_env_forces_the_pallas_kernel(monkeypatch):
  """GENJAX_FUSED_IMPL=pallas on the CPU lowers to the (interpreted) Pallas kernel."""
  ops = _cast(_operands(1, 3, 3, 2, 2, residual=False), jnp.float32)

  def jaxpr():  # a new function each time: make_jaxpr caches traces per function
    return str(jax.make_jaxpr(lambda x: fused_resblock.fused_conv3x3(
        x, ops["w"], gn_scale=ops["gn_scale"], gn_bias=ops["gn_bias"], num_groups=1,
        bias=ops["bias"]))(ops["x"]))
  monkeypatch.setenv(fused_resblock.IMPL_ENV, "pallas")
  assert "pallas_call" in jaxpr()
  monkeypatch.setenv(fused_resblock.IMPL_ENV, "xla")
  assert "pallas_call" not in jaxpr()


@pytest.mark.parametrize("change, message", [
    ({"w": jnp.zeros((3, 3, 5, 4))}, r"w must be \[3, 3, 6, C_out\].*\(3, 3, 5, 4\)"),
    ({"bias": jnp.zeros(3)}, r"bias must be \(4,\), got \(3,\)"),
    ({"gn_scale": jnp.zeros(4)}, r"gn_scale \(4,\)"),
    ({"residual": jnp.zeros((1, 4, 4, 3))}, r"residual must be \(1, 4, 4, 4\)"),
    ({"num_groups": 4}, "num_groups=4 must divide the 6 input channels"),
    ({"padding": "REFLECT"}, "padding must be one of"),
    ({"x": jnp.zeros((1, 4, 4, 6), jnp.float16)}, "float32 or bfloat16"),
])
def test_bad_operands(change, message):
  args = {"x": jnp.zeros((1, 4, 4, 6)), "w": jnp.zeros((3, 3, 6, 4)), "gn_scale": jnp.ones(6),
          "gn_bias": jnp.zeros(6), "bias": jnp.zeros(4), "num_groups": 3, **change}
  with pytest.raises(ValueError, match=message):
    fused_resblock.fused_conv3x3(**args, impl="xla")


def test_block_sizes_must_be_powers_of_two():
  with pytest.raises(ValueError, match="block_n must be a positive power of two, got 48"):
    BlockSizes(block_n=48)
