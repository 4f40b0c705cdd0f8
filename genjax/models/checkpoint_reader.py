"""Reading published PyTorch / safetensors checkpoints for the converters of ported networks.

Shared by genjax.models.convert_depth_anything and genjax.models.convert_vgg19: a checkpoint
file -> {name: float32 NumPy array}, and the converters' refusal to write over their input.
torch and safetensors are imported only when a file of their kind is read.
"""

import os
import pathlib

import numpy as np


def read_state_dict(path, *, error: type[Exception] = ValueError) -> dict[str, np.ndarray]:
  """name -> float32 NumPy array from a .safetensors (safetensors package) or a .pth / .bin /
  .pt (torch.load with weights_only=True) checkpoint; a "state_dict" or "model" wrapper is
  unwrapped. A file that is not readable as its kind raises `error` naming the file."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"checkpoint {str(path)!r} not found")
  suffix = path.suffix.lower()
  if suffix == ".safetensors":
    try:
      from safetensors.numpy import load_file
    except ImportError:
      raise RuntimeError(f"reading {str(path)!r} needs the safetensors package "
                         "(pip install safetensors)") from None
    try:
      return {k: np.asarray(v, np.float32) for k, v in load_file(str(path)).items()}
    except Exception as e:  # noqa: BLE001  (safetensors raises its own error types)
      raise error(f"cannot read {str(path)!r} as safetensors: {e}") from None
  if suffix in (".pth", ".pt", ".bin"):
    try:
      import torch  # only here: reading a pickled checkpoint is the one step that needs PyTorch
    except ImportError:
      raise RuntimeError(f"reading {str(path)!r} needs PyTorch (pip install torch); a "
                         ".safetensors file needs only the safetensors package") from None
    try:
      state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  (torch raises pickle and runtime errors)
      raise error(f"cannot read {str(path)!r} with torch.load (weights_only=True): {e}") from None
    for wrapper in ("state_dict", "model"):
      if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
        state = state[wrapper]
    if not isinstance(state, dict):
      raise error(f"{str(path)!r} holds a {type(state).__name__}, not a state dict")
    return {k: v.detach().to(torch.float32).cpu().numpy() for k, v in state.items()
            if hasattr(v, "detach")}
  raise ValueError(f"{str(path)!r}: unknown checkpoint type {suffix!r}; valid: .safetensors, "
                   ".pth, .pt, .bin")


def check_output(src, dst, suffix: str = ".npz") -> tuple[pathlib.Path, pathlib.Path]:
  """(src, dst) as paths; ValueError when dst does not end in `suffix` or is the input file
  itself (a converter never writes over the user's checkpoint)."""
  src, dst = pathlib.Path(src), pathlib.Path(dst)
  if dst.suffix != suffix:
    raise ValueError(f"output {str(dst)!r} must end in {suffix}")
  if src.resolve() == dst.resolve() or (dst.exists() and src.exists() and
                                        os.path.samefile(src, dst)):
    raise ValueError(f"refusing to overwrite the input checkpoint {str(src)!r}")
  return src, dst
