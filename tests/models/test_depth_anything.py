"""Depth Anything V2 port against transformers' DepthAnythingForDepthEstimation, randomly
initialised with a small config (the published weights cannot be downloaded here)."""

import pathlib
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the reference implementation needs PyTorch")


def _import_transformers():
  # transformers >= 5 depends on PyPI's `kernels` package and imports it when installed; run
  # from the checkout (cwd on sys.path), the top-level kernels/ folder (genjax.kernels' source)
  # would shadow it. Import transformers' modules that probe for it without the checkout.
  root = pathlib.Path(__file__).resolve().parents[2]
  saved = list(sys.path)
  sys.path[:] = [p for p in sys.path if pathlib.Path(p or ".").resolve() != root]
  try:
    module = pytest.importorskip("transformers",
                                 reason="the reference implementation is transformers'")
    import transformers.integrations.hub_kernels  # noqa: F401
    from transformers.models.depth_anything import modeling_depth_anything  # noqa: F401
  finally:
    sys.path[:] = saved
  return module


transformers = _import_transformers()

from genjax.models import convert_depth_anything as conv  # noqa: E402
from genjax.models import depth_anything as da  # noqa: E402

# 5 blocks, out_indices not contiguous (an off-by-one in the block taken would show), pretrained
# on a 3x3 patch grid (42 px), neck channels all different.
CONFIG = da.DepthAnythingConfig(hidden_size=48, num_layers=5, num_heads=4, out_indices=(1, 3, 4, 5),
                                image_size=42, features=16, out_channels=(8, 12, 20, 24),
                                head_hidden_size=8)


def _relative_error(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _assert_close(ours, ref, name):
  err = _relative_error(ours, ref)
  print(f"{name}: max relative error ||a-b||/||b|| = {err:.2e}")
  assert err < 1e-4, (name, err)
  np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())


@pytest.fixture(scope="module")
def reference():
  """transformers' model with every parameter drawn at random (seeded), not its init: layer
  scales, norms and biases away from 1 and 0 so that a swapped or dropped one shows."""
  backbone = transformers.Dinov2Config(
      hidden_size=CONFIG.hidden_size, num_hidden_layers=CONFIG.num_layers,
      num_attention_heads=CONFIG.num_heads, mlp_ratio=CONFIG.mlp_ratio,
      image_size=CONFIG.image_size, patch_size=CONFIG.patch_size,
      out_indices=list(CONFIG.out_indices), reshape_hidden_states=False, apply_layernorm=True)
  config = transformers.DepthAnythingConfig(
      backbone_config=backbone, patch_size=CONFIG.patch_size,
      reassemble_hidden_size=CONFIG.hidden_size, reassemble_factors=[4, 2, 1, 0.5],
      neck_hidden_sizes=list(CONFIG.out_channels), fusion_hidden_size=CONFIG.features,
      head_hidden_size=CONFIG.head_hidden_size, depth_estimation_type="relative")
  torch.manual_seed(0)
  model = transformers.DepthAnythingForDepthEstimation(config).eval()
  g = torch.Generator().manual_seed(1)
  with torch.no_grad():
    for name, p in model.named_parameters():
      r = torch.randn(p.shape, generator=g)
      if p.ndim >= 2 and "embeddings." not in name:
        p.copy_(r * (0.8 / np.sqrt(p[0].numel())))
      elif name.endswith(("norm1.weight", "norm2.weight", "layernorm.weight", "lambda1")):
        p.copy_(1 + 0.3 * r)
      elif name == "head.conv3.bias":
        p.fill_(0.5)    # most outputs above the final ReLU
      else:
        p.copy_(0.3 * r)
  return model


@pytest.fixture(scope="module")
def state_dict(reference):
  return {k: v.detach().numpy().copy() for k, v in reference.state_dict().items()}


@pytest.fixture(scope="module")
def params(reference, tmp_path_factory):
  """The reference saved as model.safetensors, converted, written and read back as .npz."""
  from safetensors.torch import save_file
  folder = tmp_path_factory.mktemp("depth")
  src = folder / "model.safetensors"
  save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(src))
  assert conv.main([str(src), str(folder / "depth.npz"), "--variant", "small"]) == 1  # shapes
  conv.convert_file(src, folder / "depth.npz", config=CONFIG)
  params, config = da.load_npz(folder / "depth.npz")
  assert config == CONFIG
  return params


@pytest.fixture(scope="module")
def forward():
  return jax.jit(lambda p, x: da.DepthAnything(CONFIG).apply({"params": p}, x))


def _reference_depth(model, pixels_nhwc):
  with torch.no_grad():
    out = model(pixel_values=torch.from_numpy(pixels_nhwc.transpose(0, 3, 1, 2).copy()))
  return out.predicted_depth.numpy()


@pytest.mark.parametrize("hw", [(42, 42), (28, 70)], ids=["pretraining-size", "non-square"])
def test_matches_transformers(reference, params, forward, hw):
  # 42x42 uses the 3x3 position embeddings as stored; 28x70 resizes them bicubically to 2x5
  # (fewer rows, more columns).
  pixels = np.random.default_rng(hw[0] * 100 + hw[1]).normal(size=(2, *hw, 3)).astype(np.float32)
  ref = _reference_depth(reference, pixels)
  ours = np.asarray(forward(params, jnp.asarray(pixels)))
  assert ours.shape == ref.shape == (2, *hw)
  assert (ref > 0).mean() > 0.5    # the comparison is not of ReLU zeros
  _assert_close(ours, ref, f"depth {hw[0]}x{hw[1]}")


def test_original_offset_interpolation_differs():
  # pos_interp_offset=0.1 samples the embeddings at the original DINOv2's points: torch with
  # scale_factor=(h + 0.1) / g, not transformers' size=(h, w).
  g, d = 3, 5
  pos = np.random.default_rng(0).normal(size=(1, 1 + g * g, d)).astype(np.float32)
  grid = np.transpose(pos[:, 1:].reshape(1, g, g, d), (0, 3, 1, 2))
  cfg = da.DepthAnythingConfig(hidden_size=40, num_heads=4, image_size=42, pos_interp_offset=0.1)
  grid_of = jax.jit(da.position_grid, static_argnums=(0, 1, 2))
  ours = np.asarray(grid_of(cfg, 4, 5, jnp.asarray(pos)))[0, 1:].reshape(4, 5, d)
  ref = torch.nn.functional.interpolate(torch.from_numpy(grid), scale_factor=(4.1 / 3, 5.1 / 3),
                                        mode="bicubic", align_corners=False)
  _assert_close(ours, ref[0].numpy().transpose(1, 2, 0), "original-offset position grid")
  plain = np.asarray(grid_of(CONFIG, 4, 5, jnp.asarray(pos)))[0, 1:].reshape(4, 5, d)
  assert _relative_error(plain, ours) > 1e-3


def test_resizes_match_torch():
  x = np.random.default_rng(3).normal(size=(1, 7, 9, 2)).astype(np.float32)
  xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
  interp = torch.nn.functional.interpolate
  cases = [("bilinear_ac", (13, 4), da.resize_bilinear_align_corners,
            dict(mode="bilinear", align_corners=True)),
           ("bilinear", (5, 17), da.resize_bilinear, dict(mode="bilinear", align_corners=False)),
           ("bicubic", (4, 20), da.resize_bicubic, dict(mode="bicubic", align_corners=False))]
  for name, (h, w), fn, kw in cases:
    ref = interp(xt, size=(h, w), **kw).numpy().transpose(0, 2, 3, 1)
    ours = jax.jit(fn, static_argnums=(1, 2))(jnp.asarray(x), h, w)
    np.testing.assert_allclose(np.asarray(ours), ref, rtol=1e-5,
                               atol=1e-6, err_msg=name)


def test_predict_depth_matches_reference_pipeline(reference, params):
  # The original's infer_image with torch's bicubic in place of cv2's: resize (shorter side
  # `size`, multiples of 14), normalise, predict, resize back with align_corners=True.
  image = np.random.default_rng(7).integers(0, 256, size=(50, 75, 3), dtype=np.uint8)
  assert da.network_size(50, 75, 42) == (42, 56)       # 75 * 0.84 = 63 -> 4.5 patches -> 4
  x = torch.from_numpy(image.astype(np.float32).transpose(2, 0, 1)[None] / 255.0)
  x = torch.nn.functional.interpolate(x, size=(42, 56), mode="bicubic", align_corners=False)
  mean = torch.tensor(da.IMAGENET_MEAN).view(1, 3, 1, 1)
  std = torch.tensor(da.IMAGENET_STD).view(1, 3, 1, 1)
  with torch.no_grad():
    depth = reference(pixel_values=(x - mean) / std).predicted_depth
    ref = torch.nn.functional.interpolate(depth[:, None], size=(50, 75), mode="bilinear",
                                          align_corners=True)[0, 0].numpy()
  ours = da.predict_depth(params, image, config=CONFIG, size=42)
  assert ours.shape == (50, 75) and ours.dtype == jnp.float32
  _assert_close(np.asarray(ours), ref, "predict_depth 50x75 at 42")
  before = da._predict._cache_size()
  da.predict_depth(params, image[::-1], config=CONFIG, size=42)
  assert da._predict._cache_size() == before       # same shape: no second compile
  float_depth = da.predict_depth(params, image / np.float32(255), config=CONFIG, size=42)
  _assert_close(np.asarray(float_depth), ref, "predict_depth float input")
  assert da._predict._cache_size() == before       # uint8 and float photos share the program


def test_network_size():
  assert da.network_size(518, 518) == (518, 518)
  assert da.network_size(1000, 2000) == (518, 1036)
  assert da.network_size(300, 200) == (784, 518)       # upscales: the shorter side is 518
  with pytest.raises(ValueError, match="multiple of 14"):
    da.network_size(100, 100, 500)


# ------------------------------------------------------------------------------- key layouts

_LEGACY = {"attention.q_proj.": "attention.attention.query.",
           "attention.k_proj.": "attention.attention.key.",
           "attention.v_proj.": "attention.attention.value.",
           "attention.o_proj.": "attention.output.dense."}


def _to_legacy_hf(state):
  """transformers >= 5 names -> the names of the published *-hf checkpoints."""
  out = {}
  for k, v in state.items():
    for new, old in _LEGACY.items():
      k = k.replace(new, old)
    out[k] = v
  return out


def _to_original(state, n=4):
  """transformers names -> the original repository's (DepthAnythingV2: pretrained = DINOv2,
  depth_head = DPTHead), written from that code independently of the converter's table."""
  out = {}
  for k, v in state.items():
    m = re.fullmatch(r"backbone\.encoder\.layer\.(\d+)\.(.+)", k)
    if m:
      i, rest = m.groups()
      if re.fullmatch(r"attention\.[kv]_proj\..+", rest):
        continue   # folded into qkv below
      qkv = re.fullmatch(r"attention\.q_proj\.(weight|bias)", rest)
      if qkv:
        leaf = qkv[1]
        out[f"pretrained.blocks.{i}.attn.qkv.{leaf}"] = np.concatenate(
            [state[f"backbone.encoder.layer.{i}.attention.{p}_proj.{leaf}"] for p in "qkv"])
        continue
      rest = (rest.replace("attention.o_proj.", "attn.proj.")
              .replace("layer_scale1.lambda1", "ls1.gamma")
              .replace("layer_scale2.lambda1", "ls2.gamma"))
      out[f"pretrained.blocks.{i}.{rest}"] = v
      continue
    fusion = re.fullmatch(r"neck\.fusion_stage\.layers\.(\d+)\.(.+)", k)
    if fusion:
      rest = (fusion[2].replace("projection.", "out_conv.")
              .replace("residual_layer", "resConfUnit").replace("convolution", "conv"))
      out[f"depth_head.scratch.refinenet{n - int(fusion[1])}.{rest}"] = v
      continue
    simple = [(r"backbone\.embeddings\.cls_token", "pretrained.cls_token"),
              (r"backbone\.embeddings\.mask_token", "pretrained.mask_token"),
              (r"backbone\.embeddings\.position_embeddings", "pretrained.pos_embed"),
              (r"backbone\.embeddings\.patch_embeddings\.projection\.", "pretrained.patch_embed.proj."),
              (r"backbone\.layernorm\.", "pretrained.norm."),
              (r"neck\.reassemble_stage\.layers\.(\d)\.projection\.", r"depth_head.projects.\1."),
              (r"neck\.reassemble_stage\.layers\.(\d)\.resize\.", r"depth_head.resize_layers.\1."),
              (r"head\.conv1\.", "depth_head.scratch.output_conv1."),
              (r"head\.conv2\.", "depth_head.scratch.output_conv2.0."),
              (r"head\.conv3\.", "depth_head.scratch.output_conv2.2.")]
    convs = re.fullmatch(r"neck\.convs\.(\d)\.weight", k)
    if convs:
      out[f"depth_head.scratch.layer{int(convs[1]) + 1}_rn.weight"] = v
      continue
    for pattern, repl in simple:
      if re.match(pattern, k):
        out[re.sub(pattern, repl, k)] = v
        break
    else:
      raise AssertionError(f"no original name for {k}")
  return out


def test_layouts_convert_to_the_same_weights(state_dict):
  flat = conv.convert_state_dict(state_dict, CONFIG)
  legacy = _to_legacy_hf(state_dict)
  assert "backbone.encoder.layer.0.attention.attention.query.weight" in legacy
  original = _to_original(state_dict)
  assert "pretrained.blocks.4.attn.qkv.weight" in original
  assert "depth_head.scratch.refinenet4.resConfUnit2.conv1.bias" in original
  assert conv.detect_format(original) == "original"
  for name, other in [("legacy", legacy), ("original", original)]:
    converted = conv.convert_state_dict(other, CONFIG)
    assert converted.keys() == flat.keys(), name
    for k in flat:
      np.testing.assert_array_equal(converted[k], flat[k], err_msg=f"{name}: {k}")


def test_torch_bin_file(tmp_path, reference, params):
  src = tmp_path / "pytorch_model.bin"
  torch.save(reference.state_dict(), src)
  flat = conv.convert_state_dict(conv.read_state_dict(src), CONFIG)
  for k, v in da.flatten_params(params).items():
    np.testing.assert_array_equal(flat[k], v, err_msg=k)


def test_errors_name_keys_and_shapes(state_dict):
  broken = dict(state_dict)
  del broken["neck.convs.2.weight"]
  broken["head.conv2.weight"] = np.zeros((8, 8, 1, 1), np.float32)
  broken["backbone.encoder.layer.0.attention.extra.weight"] = np.zeros((2, 2), np.float32)
  with pytest.raises(da.DepthAnythingWeightsError, match="attention.extra.weight"):
    conv.convert_state_dict(broken, CONFIG)
  del broken["backbone.encoder.layer.0.attention.extra.weight"]
  with pytest.raises(da.DepthAnythingWeightsError) as err:
    conv.convert_state_dict(broken, CONFIG, "'model.safetensors'")
  msg = str(err.value)
  assert "'model.safetensors'" in msg and "missing (1): neck_conv_2/kernel" in msg
  assert "head_conv2/kernel expected (3, 3, 8, 8), found (1, 1, 8, 8)" in msg
  with pytest.raises(da.DepthAnythingWeightsError, match="hidden size 48 and 5 blocks, but the "
                     "chosen variant has hidden size 384 and 12 blocks"):
    conv.convert_state_dict(state_dict, da.variant("small"))


def test_cli_refuses_to_overwrite_input_and_bad_files(tmp_path, state_dict, capsys):
  from safetensors.numpy import save_file
  src = tmp_path / "model.safetensors"
  save_file(state_dict, str(src))
  before = src.read_bytes()
  assert conv.main([str(src), str(src), "--variant", "small"]) == 1
  assert "must end in .npz" in capsys.readouterr().err
  same = tmp_path / "weights.npz"
  same.write_bytes(b"not a zip")
  with pytest.raises(ValueError, match="refusing to overwrite"):
    conv.convert_file(same, same, config=CONFIG)
  assert src.read_bytes() == before
  with pytest.raises(da.DepthAnythingWeightsError, match="weights.npz.*not a .npz"):
    da.load_npz(same)
  assert conv.main([str(tmp_path / "absent.pth"), str(tmp_path / "o.npz")]) == 1
  assert "absent.pth" in capsys.readouterr().err
  assert not (tmp_path / "o.npz").exists()
