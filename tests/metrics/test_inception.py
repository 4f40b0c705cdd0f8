"""FID InceptionV3: structure against published parameter counts, loading and refusing
weights files, layer semantics against NumPy, one small forward pass (compiled once)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.metrics import inception
from genjax.metrics.inception import InceptionWeightsError


def _rel(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.linalg.norm(a - b) / np.linalg.norm(b)


def test_parameter_count_matches_torchvision():
  # torchvision's inception_v3 has 27,161,264 parameters; without fc (2048 * 1000 + 1000)
  # and AuxLogits (98,560 + 2,459,136 + 769,000) that leaves 21,785,568 for the trunk:
  # conv kernels plus BN scale and bias. Keras' InceptionV3(include_top=False), which has
  # no BN scale but counts moving mean and variance, reports 21,802,784 = trunk + 17,216
  # (one more value per BN channel): both published numbers pinned down.
  shapes = inception.expected_shapes()
  trainable = sum(int(np.prod(s)) for k, s in shapes.items() if not k.endswith(("/mean", "/var")))
  bn_channels = sum(s[0] for k, s in shapes.items() if k.endswith("/bn/mean"))
  assert trainable == 27_161_264 - 2_049_000 - 3_326_696 == 21_785_568
  assert trainable + bn_channels == 21_802_784
  assert sum(k.endswith("/conv/kernel") for k in shapes) == 94 and len(shapes) == 470


def test_known_layer_shapes():
  # From torchvision's Inception3 definition ([out, in, kh, kw] there, HWIO here).
  s = inception.expected_shapes()
  assert s["Conv2d_1a_3x3/conv/kernel"] == (3, 3, 3, 32)
  assert s["Mixed_5b/branch_pool/conv/kernel"] == (1, 1, 192, 32)
  assert s["Mixed_6a/branch3x3/conv/kernel"] == (3, 3, 288, 384)
  assert s["Mixed_6b/branch7x7_2/conv/kernel"] == (1, 7, 128, 128)
  assert s["Mixed_6e/branch7x7dbl_4/conv/kernel"] == (7, 1, 192, 192)
  assert s["Mixed_7a/branch7x7x3_4/conv/kernel"] == (3, 3, 192, 192)
  assert s["Mixed_7b/branch3x3dbl_3b/conv/kernel"] == (3, 1, 384, 384)
  assert s["Mixed_7c/branch_pool/conv/kernel"] == (1, 1, 2048, 192)
  assert s["Mixed_7c/branch_pool/bn/var"] == (192,)


@pytest.fixture(scope="module")
def loaded(inception_weights_file):
  return inception.inception_from_npz(inception_weights_file, resize=None)


def test_loads_file_into_variables(loaded, inception_arrays):
  module, variables = loaded
  assert module.resize is None and module.value_range == (-1.0, 1.0)
  assert variables["batch_stats"]["Mixed_5b"]["branch1x1"]["bn"]["mean"].shape == (64,)
  flat = inception.flatten_variables(variables)
  assert flat.keys() == inception_arrays.keys()
  for k, v in inception_arrays.items():
    np.testing.assert_array_equal(flat[k], v)


def test_refuses_wrong_file_listing_layers(tmp_path, inception_arrays):
  bad = dict(inception_arrays)
  bad["Mixed_6c/branch7x7_2/conv/kernel"] = np.zeros((7, 1, 160, 160), np.float32)  # transposed
  bad["Conv2d_1a_3x3/bn/var"] = np.zeros((16,), np.float32)
  del bad["Mixed_7b/branch3x3_2a/conv/kernel"]
  bad["Mixed_7b/branch3x3_2a/conv/weight"] = np.zeros((384, 384, 1, 3), np.float32)
  path = tmp_path / "bad.npz"
  np.savez(path, **bad)
  with pytest.raises(InceptionWeightsError) as err:
    inception.inception_from_npz(path)
  msg = str(err.value)
  assert "missing (1 arrays)" in msg and "unexpected (1 arrays)" in msg
  assert "wrong shape (2 arrays)" in msg
  assert "Mixed_7b/branch3x3_2a: conv/kernel" in msg                      # missing
  assert "Mixed_7b/branch3x3_2a/conv/weight" in msg                       # unexpected
  assert "Mixed_6c/branch7x7_2: conv/kernel expected (1, 7, 160, 160), found (7, 1, 160, 160)" in msg
  assert "Conv2d_1a_3x3: bn/var expected (32,), found (16,)" in msg
  assert str(path) in msg


def test_refuses_non_npz_and_missing_files(tmp_path):
  pth = tmp_path / "pt_inception.pth"
  pth.write_bytes(b"PK\x03\x04 not really a zip")
  with pytest.raises(InceptionWeightsError, match="convert_inception"):
    inception.inception_from_npz(pth)
  with pytest.raises(FileNotFoundError, match="nowhere.npz"):
    inception.inception_from_npz(tmp_path / "nowhere.npz")
  torch_named = tmp_path / "torch_names.npz"
  np.savez(torch_named, **{"Conv2d_1a_3x3.conv.weight": np.zeros((32, 3, 3, 3))})
  with pytest.raises(InceptionWeightsError, match="look like a PyTorch state dict"):
    inception.inception_from_npz(torch_named)


def test_forward_small_input(loaded):
  # 75x75 is the smallest input (Mixed_7c at 1x1); the resize path is tested separately.
  module, variables = loaded
  apply = jax.jit(module.apply)
  x = jax.random.uniform(jax.random.key(0), (3, 75, 75, 3), minval=-1.0, maxval=1.0)
  feats = np.asarray(apply(variables, x))
  assert feats.shape == (3, inception.FEATURE_DIM) and np.all(np.isfinite(feats))
  assert np.all(feats >= 0) and np.std(feats) > 0          # mean of ReLU outputs
  assert _rel(feats[0], feats[1]) > 1e-2                   # images are told apart
  # Inference BatchNorm: no mixing across the batch, so a permutation permutes features.
  perm = np.asarray(apply(variables, x[::-1]))
  assert _rel(perm[::-1], feats) < 1e-6
  assert apply._cache_size() == 1


def test_basic_conv_matches_numpy():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, 9, 8, 4)).astype(np.float32)
  block = inception.BasicConv2d(6, (3, 3), strides=2, padding=(1, 1))
  kernel = rng.normal(size=(3, 3, 4, 6)).astype(np.float32)
  scale, bias, mean = (rng.normal(size=6).astype(np.float32) for _ in range(3))
  var = rng.uniform(0.5, 2, 6).astype(np.float32)
  variables = {"params": {"conv": {"kernel": kernel}, "bn": {"scale": scale, "bias": bias}},
               "batch_stats": {"bn": {"mean": mean, "var": var}}}
  got = np.asarray(block.apply(variables, x))
  xp = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
  out = np.zeros((2, 5, 4, 6))
  for i in range(5):
    for j in range(4):
      out[:, i, j] = np.einsum("bhwc,hwco->bo", xp[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3], kernel)
  ref = np.maximum((out - mean) / np.sqrt(var + 1e-3) * scale + bias, 0.0)
  assert got.shape == ref.shape and _rel(got, ref) < 1e-6


def _pool_reference(x, kind):
  """3x3 / stride 1 / pad 1 over real pixels only (count_include_pad=False, or max)."""
  h, w = x.shape[1:3]
  out = np.zeros_like(x, dtype=np.float64)
  for i in range(h):
    for j in range(w):
      win = x[:, max(i - 1, 0):i + 2, max(j - 1, 0):j + 2]
      out[:, i, j] = win.mean(axis=(1, 2)) if kind == "avg" else win.max(axis=(1, 2))
  return out


@pytest.mark.parametrize("kind", ["avg", "max"])
def test_same_pooling_matches_numpy(kind):
  x = np.random.default_rng(1).normal(size=(2, 5, 6, 3)).astype(np.float32) - 2.0
  got = np.asarray(inception.pool_3x3_same(jnp.asarray(x), kind))
  assert _rel(got, _pool_reference(x, kind)) < 1e-6


@pytest.mark.parametrize("pool", ["avg", "max"])
def test_inception_e_pool_branch(pool):
  # The last 192 channels of Mixed_7b / Mixed_7c are branch_pool(pool(x)): avg in E_1,
  # max in E_2 (pytorch-fid's FIDInceptionE_1 / _2).
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.normal(size=(1, 3, 3, 16)), jnp.float32)
  block = inception.InceptionE(pool=pool)
  shapes = jax.eval_shape(block.init, jax.random.key(0), x)
  variables = jax.tree.map(lambda s: jnp.asarray(rng.uniform(0.5, 1.5, s.shape), jnp.float32),
                           shapes)   # positive: var > 0; random: non-trivial BN
  got = np.asarray(jax.jit(block.apply)(variables, x))[..., -192:]
  sub = lambda c: variables[c]["branch_pool"]
  pooled = jnp.asarray(_pool_reference(np.asarray(x), pool), jnp.float32)
  ref = inception.BasicConv2d(192).apply(
      {"params": sub("params"), "batch_stats": sub("batch_stats")}, pooled)
  assert _rel(got, ref) < 1e-5
  kinds = {name: kw.get("pool") for name, _, kw in inception.MIXED_BLOCKS}
  assert kinds["Mixed_7b"] == "avg" and kinds["Mixed_7c"] == "max"


def _torch_bilinear_reference(x, out_h, out_w):
  """F.interpolate(mode="bilinear", align_corners=False) in NumPy: src = (dst + 0.5) *
  in / out - 0.5, clamped at 0, neighbours clamped at the last pixel. x: [H, W]."""
  def axis(n_in, n_out):
    src = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0.0)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, src - i0
  r0, r1, ry = axis(x.shape[0], out_h)
  c0, c1, cx = axis(x.shape[1], out_w)
  top = x[r0][:, c0] * (1 - cx) + x[r0][:, c1] * cx
  bottom = x[r1][:, c0] * (1 - cx) + x[r1][:, c1] * cx
  return top * (1 - ry)[:, None] + bottom * ry[:, None]


@pytest.mark.parametrize("shape", [(7, 10, 17, 23), (40, 33, 17, 13)])
def test_resize_matches_torch_bilinear(shape):
  h, w, oh, ow = shape
  x = np.random.default_rng(3).normal(size=(h, w)).astype(np.float32)
  got = np.asarray(inception.resize_bilinear(jnp.asarray(x)[None, :, :, None], oh, ow))[0, ..., 0]
  assert _rel(got, _torch_bilinear_reference(x.astype(np.float64), oh, ow)) < 1e-5   # float32


def test_preprocess_value_ranges_and_size():
  x = jax.random.uniform(jax.random.key(1), (2, 20, 30, 3), minval=-1.0, maxval=1.0)
  a = inception.preprocess(x, resize=None)
  np.testing.assert_array_equal(np.asarray(a), np.asarray(x))
  b = inception.preprocess(((x + 1.0) * 127.5).round().astype(jnp.uint8), (0.0, 255.0), None)
  assert np.max(np.abs(np.asarray(b) - np.asarray(x))) <= 1.0 / 255 + 1e-6   # uint8 rounding
  c = inception.preprocess((x + 1.0) / 2, (0.0, 1.0))                         # pytorch-fid's input
  assert c.shape == (2, 299, 299, 3)
  assert _rel(c, inception.resize_bilinear(x, 299, 299)) < 1e-6
