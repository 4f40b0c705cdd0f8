"""torchvision's VGG19 weights -> the genjax .npz weights file (see vgg19.py).

    python -m genjax.models.convert_vgg19 vgg19-dcbb9e9d.pth vgg19.npz

Accepted: a state dict of torchvision.models.vgg19 (the published vgg19-dcbb9e9d.pth, or
`torch.save(model.state_dict(), ...)`; .pth / .pt / .bin, or .safetensors), names
"features.<i>.weight" / "features.<i>.bias", optionally prefixed "module."; or of its
`features` module alone ("<i>.weight"). The classifier (classifier.*) is dropped: the port
keeps the 16 convs. vgg19_bn checkpoints (BatchNorm layers) are refused with their names.
Verified: tests/models/test_vgg19.py saves a randomly initialised torchvision vgg19 and
compares the port's features with torchvision's; the published file cannot be downloaded
here and was not checked itself (its names and shapes are those of the same module).

convert_state_dict itself takes NumPy arrays; torch is imported only to read a .pth file.
"""

import argparse
import re
import sys
from typing import Mapping

import numpy as np

from genjax.models import checkpoint_reader
from genjax.models import vgg19

def _feature_index() -> dict[int, str]:
  """torchvision vgg19().features index of each conv -> its name (cfg "E": a ReLU after each
  conv, a max pool after each block): {0: "conv1_1", 2: "conv1_2", 5: "conv2_1", ...}."""
  index, i = {}, 0
  for b, block in enumerate(vgg19.BLOCKS):
    for j in range(len(block)):
      index[i] = f"conv{b + 1}_{j + 1}"
      i += 2
    i += 1
  return index


FEATURE_INDEX = _feature_index()
_KEY = re.compile(r"^(?:features\.)?(\d+)\.(weight|bias)$")
_DROPPED = re.compile(r"^classifier\.")


def convert_state_dict(state_dict: Mapping[str, np.ndarray],
                       source: str = "state dict") -> dict[str, np.ndarray]:
  """torchvision vgg19 state dict (name -> NumPy array) -> genjax flat weights (key -> float32
  array, kernels HWIO). VGG19WeightsError names `source` and the offending keys."""
  flat, unknown = {}, []
  for name, value in state_dict.items():
    stripped = name.removeprefix("module.")
    if _DROPPED.match(stripped):
      continue
    m = _KEY.match(stripped)
    if m is None or int(m[1]) not in FEATURE_INDEX:
      unknown.append(name)
      continue
    conv = FEATURE_INDEX[int(m[1])]
    value = np.asarray(value, np.float32)
    if m[2] == "weight":
      if value.ndim != 4:
        raise vgg19.VGG19WeightsError(
            f"{source}: {name} must be a conv weight [out, in, 3, 3], got shape {value.shape}")
      flat[f"{conv}/kernel"] = np.ascontiguousarray(value.transpose(2, 3, 1, 0))
    else:
      flat[f"{conv}/bias"] = value
  if unknown:
    hint = (" (a vgg19_bn checkpoint? only torchvision's vgg19 without batch norm is ported)"
            if any(".running_mean" in n for n in unknown) else "")
    raise vgg19.VGG19WeightsError(
        f"{source}: not torchvision vgg19 parameters ({len(unknown)} names){hint}: "
        f"{', '.join(sorted(unknown)[:20])}{' ...' if len(unknown) > 20 else ''}")
  vgg19.check_weights(flat, f"{source} (converted)")
  return flat


def convert_file(src, dst) -> int:
  """Converts checkpoint `src` to the .npz `dst` (written atomically); returns the array count.
  Refuses to write over `src`."""
  src, dst = checkpoint_reader.check_output(src, dst)
  state = checkpoint_reader.read_state_dict(src, error=vgg19.VGG19WeightsError)
  flat = convert_state_dict(state, f"{str(src)!r}")
  vgg19.save_npz(dst, flat)
  return len(flat)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m genjax.models.convert_vgg19",
      description="Convert torchvision's VGG19 weights (vgg19-dcbb9e9d.pth) to a genjax .npz.")
  parser.add_argument("src", help="torchvision vgg19 checkpoint (.pth, .pt, .bin, .safetensors)")
  parser.add_argument("dst", help="output weights file (.npz) for genjax.models.vgg19")
  args = parser.parse_args(argv)
  try:
    n = convert_file(args.src, args.dst)
  except (OSError, ValueError, RuntimeError) as e:   # VGG19WeightsError is a ValueError
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(f"wrote {n} arrays to {args.dst}", file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main())
