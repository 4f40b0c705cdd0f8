"""benchmarks/step_profile.py's HLO reading: each thunk of a small compiled gradient is
charged to the right kind (no profiling, nothing timed)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import step_profile
from genjax.kernels import norm_act_conv


@pytest.fixture(scope="module")
def kinds():
  """{ENTRY instruction: kind} of the gradient of a norm_act_conv (GroupNorm + SiLU +
  dropout + 3x3 conv) followed by a dense layer, in a scope named like the UNet's."""
  x = jnp.ones((2, 8, 8, 8), jnp.float32)
  kernel = jnp.ones((3, 3, 8, 8), jnp.float32) * 0.1
  keep = jnp.arange(2 * 8 * 8 * 8).reshape(x.shape) % 3 > 0

  def loss(x, kernel, dense):
    with jax.named_scope("UNet"):
      y = norm_act_conv(x, jnp.ones(8), jnp.zeros(8), kernel, jnp.zeros(8), keep=keep,
                        num_groups=4, keep_prob=0.9)
      return jnp.sum(jnp.tanh(y.reshape(-1, 8) @ dense))

  dense = jnp.ones((8, 8), jnp.float32)
  grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
  comps, entry = step_profile.parse_hlo(grad.lower(x, kernel, dense).compile().as_text())
  numels = {int(np.prod(kernel.shape))}
  return {name: step_profile.classify(name, comps, entry, numels)["kind"]
          for name in comps[entry]}


def test_every_pass_of_the_convolution_is_found(kinds):
  found = set(kinds.values())
  assert {"conv forward", "conv input grad", "conv weight grad"} <= found, found


def test_the_custom_vjps_scopes_name_their_ops(kinds):
  found = set(kinds.values())
  assert "GroupNorm+SiLU backward" in found, found
  assert "matmul (dense)" in found, found


def test_parse_hlo_reads_tuple_shapes_and_the_root():
  text = """HloModule m

%fused (p0: f32[4]) -> (f32[4], f32[]) {
  %p0 = f32[4]{0} parameter(0)
  ROOT %t = (f32[4]{0}, f32[]) tuple(%p0, %p0)
}

ENTRY %main (a: f32[4]) -> (f32[4], f32[]) {
  %a = f32[4]{0} parameter(0)
  ROOT %f = (f32[4]{0}, f32[]) fusion(%a), kind=kLoop, calls=%fused, metadata={op_name="jit(f)/x"}
}
"""
  comps, entry = step_profile.parse_hlo(text)
  assert entry == "main"
  f = comps["main"]["f"]
  assert (f["opcode"], f["calls"], f["op_name"], f["root"]) == ("fusion", "fused", "jit(f)/x",
                                                                True)
  assert f["shape"] == "(f32[4]{0}, f32[])"
  assert comps["fused"]["t"]["opcode"] == "tuple"
