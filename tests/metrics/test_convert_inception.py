"""pytorch-fid state dict -> genjax weights: round trip on a synthetic state dict with
pytorch-fid's names and shapes (the real .pth cannot be downloaded here)."""

import ast
import inspect

import numpy as np
import pytest

from genjax.metrics import inception
from genjax.metrics.convert_inception import convert_pytorch_fid_state_dict
from genjax.metrics.inception import InceptionWeightsError

_TORCH_LEAF = {"conv/kernel": "conv.weight", "bn/scale": "bn.weight", "bn/bias": "bn.bias",
               "bn/mean": "bn.running_mean", "bn/var": "bn.running_var"}


def _to_torch(flat, prefix_map=None):
  """Our arrays -> a state dict as fid_inception_v3().state_dict() has it (inverse map)."""
  out = {}
  for key, value in flat.items():
    layer, leaf = key.rsplit("/", 2)[0], "/".join(key.rsplit("/", 2)[1:])
    name = layer.replace("/", ".")
    if prefix_map:
      top, _, rest = name.partition(".")
      name = prefix_map[top] + ("." + rest if rest else "")
    if leaf == "conv/kernel":
      value = value.transpose(3, 2, 0, 1)   # HWIO -> OIHW
    out[f"{name}.{_TORCH_LEAF[leaf]}"] = value
    if leaf == "bn/var":
      out[f"{name}.bn.num_batches_tracked"] = np.array(0, np.int64)
  return out


@pytest.fixture(scope="module")
def torch_state(inception_arrays):
  state = _to_torch(inception_arrays)
  state["fc.weight"] = np.zeros((1008, 2048), np.float32)   # the 1008-class TF head
  state["fc.bias"] = np.zeros((1008,), np.float32)
  return state


def test_synthetic_state_dict_has_pytorch_fid_names(torch_state):
  # Names and shapes as torchvision's Inception3 (pytorch-fid's FID variant) defines them.
  known = {
      "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
      "Conv2d_4a_3x3.bn.running_var": (192,),
      "Mixed_5b.branch5x5_1.conv.weight": (48, 192, 1, 1),
      "Mixed_5d.branch_pool.conv.weight": (64, 288, 1, 1),
      "Mixed_6a.branch3x3dbl_3.conv.weight": (96, 96, 3, 3),
      "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7),
      "Mixed_6b.branch7x7dbl_2.conv.weight": (128, 128, 7, 1),
      "Mixed_7a.branch3x3_2.conv.weight": (320, 192, 3, 3),
      "Mixed_7b.branch3x3_2a.conv.weight": (384, 384, 1, 3),
      "Mixed_7c.branch3x3dbl_1.conv.weight": (448, 2048, 1, 1),
      "Mixed_7c.branch_pool.bn.weight": (192,),
  }
  for name, shape in known.items():
    assert torch_state[name].shape == shape, name
  assert len(torch_state) == 94 * 6 + 2


def test_round_trip(torch_state, inception_arrays):
  flat = convert_pytorch_fid_state_dict(torch_state)
  assert flat.keys() == inception_arrays.keys()
  for k, v in inception_arrays.items():
    np.testing.assert_array_equal(flat[k], v)
    assert flat[k].dtype == np.float32


def test_wrapper_names_and_module_prefix(inception_arrays):
  # pytorch-fid's InceptionV3 wrapper keeps the layers in nn.Sequential blocks.
  blocks = {"Conv2d_1a_3x3": "blocks.0.0", "Conv2d_2a_3x3": "blocks.0.1",
            "Conv2d_2b_3x3": "blocks.0.2", "Conv2d_3b_1x1": "blocks.1.0",
            "Conv2d_4a_3x3": "blocks.1.1",
            **{f"Mixed_{n}": f"blocks.2.{i}" for i, n in enumerate(
                ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e"))},
            **{f"Mixed_{n}": f"blocks.3.{i}" for i, n in enumerate(("7a", "7b", "7c"))}}
  state = {"module." + k: v for k, v in _to_torch(inception_arrays, blocks).items()}
  assert "module.blocks.2.4.branch7x7_2.conv.weight" in state
  flat = convert_pytorch_fid_state_dict(state)
  for k, v in inception_arrays.items():
    np.testing.assert_array_equal(flat[k], v)


def test_converted_file_loads(tmp_path, torch_state):
  path = tmp_path / "converted.npz"
  inception.save_npz(path, convert_pytorch_fid_state_dict(torch_state))
  _, variables = inception.inception_from_npz(path)
  assert variables["params"]["Mixed_7c"]["branch_pool"]["conv"]["kernel"].shape == (1, 1, 2048, 192)


def test_refuses_foreign_and_incomplete_state_dicts(torch_state):
  with pytest.raises(InceptionWeightsError, match="layer4.0.conv1.weight"):
    convert_pytorch_fid_state_dict({**torch_state, "layer4.0.conv1.weight": np.zeros((1,))})
  broken = dict(torch_state)
  del broken["Mixed_6e.branch7x7dbl_5.bn.running_mean"]
  broken["Mixed_5b.branch1x1.conv.weight"] = np.zeros((64, 192, 3, 3), np.float32)
  with pytest.raises(InceptionWeightsError) as err:
    convert_pytorch_fid_state_dict(broken)
  msg = str(err.value)
  assert "Mixed_6e/branch7x7dbl_5: bn/mean" in msg
  assert "Mixed_5b/branch1x1: conv/kernel expected (1, 1, 192, 64), found (3, 3, 192, 64)" in msg


def test_only_main_imports_torch():
  # Module-level imports (also those of genjax.metrics) must not need PyTorch.
  from genjax.metrics import convert_inception
  tree = ast.parse(inspect.getsource(convert_inception))
  top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
  names = {a.name for n in top for a in n.names} | {n.module for n in top
                                                     if isinstance(n, ast.ImportFrom)}
  assert not any(str(n).split(".")[0] == "torch" for n in names)
  main = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main")
  assert any(isinstance(n, ast.Import) and n.names[0].name == "torch" for n in ast.walk(main))
