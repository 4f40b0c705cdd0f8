"""The UNet: shapes, conditioning, wrap-around equivariance, bf16, dropout, parameter counts."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import configs, models
from genjax.models import UNet, UNetConfig
from genjax.models.layers import Conv, GroupNorm, group_count
from genjax.models.unet import ResBlock

TINY = dict(base_channels=16, channel_mult=(1, 2), num_res_blocks=1, attn_resolutions=(4,),
            num_heads=2, dropout=0.0)


@functools.lru_cache(maxsize=None)
def _model(**kw):
  cfg = UNetConfig(**{**TINY, **kw})
  model = UNet(cfg)
  x = jnp.zeros((1, 8, 16, 3))
  y = jnp.zeros((1,), jnp.int32) if cfg.num_classes else None
  cond = jnp.zeros((1, 8, 16, cfg.cond_channels)) if cfg.cond_channels else None
  params = model.init(jax.random.PRNGKey(0), x, jnp.zeros((1,)), y=y, cond=cond)["params"]
  # Zero-initialized output layers make a fresh UNet output 0: perturb every parameter so
  # the properties below are tested on a generic network.
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
  params = jax.tree.unflatten(tree, [p + 0.05 * jax.random.normal(k, p.shape)
                                     for p, k in zip(leaves, keys)])
  return model, params, jax.jit(lambda p, x, t, y, c: model.apply({"params": p}, x, t, y=y,
                                                                   cond=c))


def _inputs(b=2, h=8, w=16):
  rng = np.random.default_rng(0)
  return jnp.asarray(rng.standard_normal((b, h, w, 3)), jnp.float32), jnp.asarray([3.0, 700.0])


def test_shapes_dtypes_and_conditioning():
  x, t = _inputs()
  _, _, f = _model()
  out = f(_model()[1], x, t, None, None)
  assert out.shape == (2, 8, 16, 3) and out.dtype == jnp.float32
  model, params, f = _model(num_classes=5, cond_channels=4)
  y = jnp.asarray([0, 4], jnp.int32)
  cond = jnp.ones((2, 8, 16, 4))
  a = f(params, x, t, y, cond)
  b = f(params, x, t, jnp.asarray([5, 5], jnp.int32), cond)  # the null class
  assert a.shape == (2, 8, 16, 3)
  assert float(jnp.abs(a - b).max()) > 1e-4  # the label matters
  assert float(jnp.abs(a - f(params, x, t, y, 0 * cond)).max()) > 1e-4  # so does cond


def _roll_error(padding, shift):
  x, t = _inputs()
  model, params, f = _model(padding=padding)
  out = f(params, x, t, None, None)
  rolled = f(params, jnp.roll(x, shift, axis=2), t, None, None)
  return float(jnp.abs(rolled - jnp.roll(out, shift, axis=2)).max() / jnp.abs(out).max())


@pytest.mark.parametrize("padding", ["circular_w", "sphere"])
def test_wrapping_paddings_are_longitude_equivariant(padding):
  # Shifts by multiples of the total down-sampling (2) commute with the whole network.
  assert _roll_error(padding, 4) < 1e-5
  assert _roll_error(padding, 6) < 1e-5


def test_zero_padding_is_not_equivariant():
  assert _roll_error("zeros", 4) > 1e-3


def test_bfloat16_compute_is_close_and_params_stay_float32():
  x, t = _inputs()
  _, params, f32 = _model()
  model16 = UNet(UNetConfig(**TINY, dtype=jnp.bfloat16))
  out16 = model16.apply({"params": params}, x, t)
  out32 = f32(params, x, t, None, None)
  init16 = model16.init(jax.random.PRNGKey(0), x, t)["params"]
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(init16))
  rel = float(jnp.linalg.norm(out16 - out32) / jnp.linalg.norm(out32))
  assert rel < 3e-2, rel


def test_dropout_only_in_training():
  x, t = _inputs()
  model = UNet(UNetConfig(**{**TINY, "dropout": 0.5}))
  params = _model()[1]
  eval_a = model.apply({"params": params}, x, t, train=False)
  eval_b = model.apply({"params": params}, x, t, train=False)
  train_a = model.apply({"params": params}, x, t, train=True, rngs={"dropout": jax.random.key(0)})
  np.testing.assert_array_equal(eval_a, eval_b)
  assert float(jnp.abs(train_a - eval_a).max()) > 1e-4


def test_remat_gives_the_same_gradients():
  x, t = _inputs()
  params = _model()[1]

  def loss(p, remat):
    return jnp.mean(UNet(UNetConfig(**TINY, remat=remat)).apply({"params": p}, x, t) ** 2)

  grad = jax.jit(jax.grad(loss), static_argnums=1)
  g0, g1 = grad(params, False), grad(params, True)
  for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(g1)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)


def test_bad_image_size_and_names():
  x, t = _inputs(h=7, w=16)
  model, params, _ = _model()
  with pytest.raises(ValueError, match="divisible"):
    model.apply({"params": params}, x, t)
  with pytest.raises(ValueError, match="model.padding"):
    models.build_model(configs.load("tiny", ["model.padding=mirror"]).model)


def test_parameter_counts():
  def count(name):
    c = configs.load(name)
    m = models.build_model(c.model)
    h, w = c.data.image_size
    shapes = jax.eval_shape(lambda: m.init(jax.random.PRNGKey(0), jnp.zeros((1, h, w, 3)),
                                           jnp.zeros((1,))))
    return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(shapes))

  assert 8e6 < count("cifar") < 11e6  # the CIFAR-scale reference model: about 9M
  assert count("tiny") < 1e6


class _UnfusedResBlock(nn.Module):
  """The residual block as it was written before NormActConv (flax's Dropout, genjax's
  GroupNorm and Conv layers, autodiff keeping every intermediate): the reference."""
  features: int
  cfg: UNetConfig
  deterministic: bool = True

  @nn.compact
  def __call__(self, x, emb):
    c = self.cfg
    h = nn.silu(GroupNorm(group_count(x.shape[-1]))(x))
    h = Conv(self.features)(h)
    scale, shift = jnp.split(nn.Dense(2 * self.features)(nn.silu(emb)), 2, -1)
    h = GroupNorm(group_count(self.features))(h)
    h = h * (1 + scale[:, None, None, :]) + shift[:, None, None, :]
    h = nn.Dropout(c.dropout, deterministic=self.deterministic)(nn.silu(h))
    h = Conv(self.features, zero_init=True)(h)
    if x.shape[-1] != self.features:
      x = Conv(self.features, kernel_size=1)(x)
    return (x + h) * (2 ** -0.5)


def test_res_block_is_the_unfused_block():
  # Same parameter tree and initial values, same dropout masks, same output and gradients.
  cfg = UNetConfig(**{**TINY, "dropout": 0.3})
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((2, 4, 4, 16)), jnp.float32)
  emb = jnp.asarray(rng.standard_normal((2, 24)), jnp.float32)
  fused, unfused = ResBlock(32, cfg, deterministic=False), _UnfusedResBlock(32, cfg, False)
  params = fused.init(jax.random.PRNGKey(0), x, emb)["params"]
  ref_params = unfused.init(jax.random.PRNGKey(0), x, emb)["params"]
  assert jax.tree.structure(params) == jax.tree.structure(ref_params)
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ref_params)):
    np.testing.assert_array_equal(a, b)
  leaves, tree = jax.tree.flatten(params)  # a generic block: no zero-initialized layer
  params = jax.tree.unflatten(tree, [p + 0.1 * jax.random.normal(jax.random.PRNGKey(i), p.shape)
                                     for i, p in enumerate(leaves)])

  def loss(p, module):
    out = module.apply({"params": p}, x, emb, rngs={"dropout": jax.random.PRNGKey(3)})
    return jnp.sum(out * jnp.cos(out)), out

  (_, out), grads = jax.value_and_grad(lambda p: loss(p, fused), has_aux=True)(params)
  (_, ref), ref_grads = jax.value_and_grad(lambda p: loss(p, unfused), has_aux=True)(params)
  rel = lambda a, b: float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))  # noqa: E731
  assert rel(out, ref) <= 1e-5
  scale = max(float(jnp.abs(g).max()) for g in jax.tree.leaves(ref_grads))
  for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * scale)
