"""pytorch-fid's Inception weights -> the genjax .npz weights file (see inception.py).

    python -m genjax.metrics.convert_inception pt_inception-2015-12-05-6726825d.pth inception_fid.npz

Run it where the weights and PyTorch are: main() imports torch (only to read the .pth);
convert_pytorch_fid_state_dict itself takes NumPy arrays and does not need torch.
Accepted names: those of pytorch-fid's fid_inception_v3() (torchvision Inception3,
"Mixed_5b.branch1x1.conv.weight", ...), i.e. the released .pth file, and those of its
InceptionV3 wrapper ("blocks.2.0.branch1x1.conv.weight", ...), with an optional
"module." prefix. The classifier (fc.*), AuxLogits.* and bn.num_batches_tracked are
dropped: FID uses the 2048-d pool features.
"""

import argparse
import re
import sys
from typing import Mapping

import numpy as np

from genjax import files
from genjax.metrics import inception

# pytorch-fid's InceptionV3 wrapper: blocks.<i>.<j> -> the torchvision layer name.
_WRAPPER_NAMES = {
    "blocks.0.0": "Conv2d_1a_3x3", "blocks.0.1": "Conv2d_2a_3x3", "blocks.0.2": "Conv2d_2b_3x3",
    "blocks.1.0": "Conv2d_3b_1x1", "blocks.1.1": "Conv2d_4a_3x3",
    **{f"blocks.2.{i}": n for i, n in enumerate(
        ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
         "Mixed_6e"))},
    **{f"blocks.3.{i}": n for i, n in enumerate(("Mixed_7a", "Mixed_7b", "Mixed_7c"))},
}
# torch leaf -> ours; the conv kernel is transposed [out, in, kh, kw] -> [kh, kw, in, out].
_LEAVES = {"conv.weight": "conv/kernel", "bn.weight": "bn/scale", "bn.bias": "bn/bias",
           "bn.running_mean": "bn/mean", "bn.running_var": "bn/var"}
_DROPPED = re.compile(r"^(fc\.|AuxLogits\.)|\.num_batches_tracked$")
_KEY = re.compile(r"^(?P<layer>.+)\.(?P<leaf>conv\.weight|bn\.(weight|bias|running_mean|"
                  r"running_var))$")


def _torch_layer(layer: str) -> str:
  for prefix, name in _WRAPPER_NAMES.items():
    if layer == prefix or layer.startswith(prefix + "."):
      return name + layer[len(prefix):]
  return layer


def convert_pytorch_fid_state_dict(state_dict: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """pytorch-fid state dict (name -> NumPy array) -> genjax weights (key -> float32 array).

  Raises InceptionWeightsError when a name is not a pytorch-fid Inception parameter, or
  when the result does not fit InceptionV3 (lists missing layers and wrong shapes).
  """
  flat, unknown = {}, []
  for name, value in state_dict.items():
    name = name.removeprefix("module.")
    if _DROPPED.search(name):
      continue
    m = _KEY.match(name)
    if m is None:
      unknown.append(name)
      continue
    layer = _torch_layer(m["layer"]).replace(".", "/")
    value = np.asarray(value, np.float32)
    if m["leaf"] == "conv.weight":
      if value.ndim != 4:
        raise inception.InceptionWeightsError(
            f"{name}: a conv weight must be [out, in, kh, kw], got shape {value.shape}")
      value = value.transpose(2, 3, 1, 0)
    flat[f"{layer}/{_LEAVES[m['leaf']]}"] = value
  if unknown:
    raise inception.InceptionWeightsError(
        f"not pytorch-fid Inception parameters ({len(unknown)}): {', '.join(sorted(unknown))}")
  inception.check_weights(flat, "converted state dict")
  return flat


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(
      prog="python -m genjax.metrics.convert_inception",
      description="Convert pytorch-fid's pt_inception-2015-12-05 .pth to a genjax .npz.")
  parser.add_argument("pth", help="pytorch-fid weights (pt_inception-2015-12-05-6726825d.pth)")
  parser.add_argument("npz", help="output weights file for genjax.metrics.inception_from_npz")
  args = parser.parse_args(argv)
  import torch  # only here: reading the .pth is the one step that needs PyTorch
  state = torch.load(args.pth, map_location="cpu", weights_only=True)
  state = state.get("state_dict", state)
  arrays = {k: v.detach().cpu().numpy() for k, v in state.items() if hasattr(v, "detach")}
  flat = convert_pytorch_fid_state_dict(arrays)
  with files.atomic_write(args.npz) as f:  # exactly the path given, whole or not at all
    np.savez(f, **flat)
  print(f"wrote {len(flat)} arrays to {args.npz}", file=sys.stderr)


if __name__ == "__main__":
  main()
