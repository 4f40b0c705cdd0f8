"""Published Depth Anything V2 checkpoints -> the genjax .npz weights file (see depth_anything.py).

    python -m genjax.models.convert_depth_anything model.safetensors depth_small.npz --variant small

Accepted files and key layouts:
- transformers (`depth-anything/Depth-Anything-V2-{Small,Base,Large}-hf`): `model.safetensors`
  (read with the `safetensors` package, NumPy API) or `pytorch_model.bin` (torch), keys such as
  `backbone.encoder.layer.0.attention.attention.query.weight` as published, or
  `backbone.encoder.layer.0.attention.q_proj.weight` as transformers >= 5 saves them. Verified:
  the test saves a randomly initialised transformers model and compares outputs; the published
  names are the test's state dict renamed by transformers' own Dinov2 conversion rules.
- the original repository's `depth_anything_v2_vit{s,b,l}.pth` (torch): `pretrained.blocks.0.
  attn.qkv.weight`, `depth_head.scratch.refinenet1.out_conv.weight`, ... The key layout was
  read from the repository's DepthAnythingV2 / DINOv2 / DPTHead code and the test converts a
  state dict renamed into that layout; it was NOT checked against the released .pth files,
  which cannot be downloaded here. Note the original DINOv2 resizes position embeddings
  slightly differently (see DepthAnythingConfig.pos_interp_offset).

convert_state_dict itself takes NumPy arrays; torch is imported only to read .pth / .bin files.
Unused parameters are dropped: the DINOv2 mask token and the first fusion block's
residual_layer1 (the coarsest map has no skip input; the reference builds but never calls it).
"""

import argparse
import re
import sys
from typing import Callable, Mapping

import numpy as np

from genjax.models import depth_anything as da
from genjax.models import checkpoint_reader

_DROPPED = re.compile(r"(^|\.)mask_token$|\.num_batches_tracked$")

# Published transformers names -> the names transformers >= 5 uses (its Dinov2 renaming rules).
_LEGACY_HF = (("attention.attention.query.", "attention.q_proj."),
              ("attention.attention.key.", "attention.k_proj."),
              ("attention.attention.value.", "attention.v_proj."),
              ("attention.output.dense.", "attention.o_proj."))

_dense = lambda w: w.T                           # torch Linear [out, in] -> [in, out]
_conv = lambda w: w.transpose(2, 3, 1, 0)        # torch Conv2d [out, in, kh, kw] -> HWIO
_conv_t = lambda w: w.transpose(2, 3, 0, 1)      # torch ConvTranspose2d [in, out, kh, kw] -> HWIO
_same = lambda w: w


def _listed(names, limit: int = 30) -> str:
  names = sorted(names)
  return ", ".join(names[:limit]) + (f", ... and {len(names) - limit} more"
                                     if len(names) > limit else "")


def _original_to_hf(name: str, n_fusion: int) -> str | None:
  """An original-repository key -> its transformers >= 5 name (None: not such a key). The qkv
  split is done by the caller."""
  rules = (
      (r"pretrained\.cls_token", "backbone.embeddings.cls_token"),
      (r"pretrained\.pos_embed", "backbone.embeddings.position_embeddings"),
      (r"pretrained\.mask_token", "backbone.embeddings.mask_token"),
      (r"pretrained\.patch_embed\.proj\.(weight|bias)",
       r"backbone.embeddings.patch_embeddings.projection.\1"),
      (r"pretrained\.blocks\.(\d+)\.(norm1|norm2|mlp\.fc1|mlp\.fc2)\.(weight|bias)",
       r"backbone.encoder.layer.\1.\2.\3"),
      (r"pretrained\.blocks\.(\d+)\.attn\.qkv\.(weight|bias)",
       r"backbone.encoder.layer.\1.attention.qkv.\2"),
      (r"pretrained\.blocks\.(\d+)\.attn\.proj\.(weight|bias)",
       r"backbone.encoder.layer.\1.attention.o_proj.\2"),
      (r"pretrained\.blocks\.(\d+)\.ls([12])\.gamma", r"backbone.encoder.layer.\1.layer_scale\2.lambda1"),
      (r"pretrained\.norm\.(weight|bias)", r"backbone.layernorm.\1"),
      (r"depth_head\.projects\.(\d+)\.(weight|bias)", r"neck.reassemble_stage.layers.\1.projection.\2"),
      (r"depth_head\.resize_layers\.(\d+)\.(weight|bias)", r"neck.reassemble_stage.layers.\1.resize.\2"),
      (r"depth_head\.scratch\.output_conv1\.(weight|bias)", r"head.conv1.\1"),
      (r"depth_head\.scratch\.output_conv2\.0\.(weight|bias)", r"head.conv2.\1"),
      (r"depth_head\.scratch\.output_conv2\.2\.(weight|bias)", r"head.conv3.\1"),
  )
  for pattern, repl in rules:
    if re.fullmatch(pattern, name):
      return re.sub(pattern, repl, name)
  m = re.fullmatch(r"depth_head\.scratch\.layer(\d+)_rn\.weight", name)
  if m:
    return f"neck.convs.{int(m[1]) - 1}.weight"
  # refinenet<k> fuses the k-th finest map: refinenet<n> runs first (transformers' layers.0).
  m = re.fullmatch(r"depth_head\.scratch\.refinenet(\d+)\.(.+)", name)
  if m:
    rest = m[2].replace("out_conv.", "projection.").replace("resConfUnit", "residual_layer")
    rest = re.sub(r"conv([12])\.", r"convolution\1.", rest)
    return f"neck.fusion_stage.layers.{n_fusion - int(m[1])}.{rest}"
  return None


def _hf_to_ours(name: str, config: da.DepthAnythingConfig) -> tuple[str, Callable] | None:
  """A transformers >= 5 key -> (our flat key, layout transform); None: not such a key."""
  ln = {"weight": "scale", "bias": "bias"}
  lin = {"weight": ("kernel", _dense), "bias": ("bias", _same)}
  conv = {"weight": ("kernel", _conv), "bias": ("bias", _same)}
  m = re.fullmatch(r"backbone\.embeddings\.(cls_token|position_embeddings)", name)
  if m:
    return f"backbone/embeddings/{m[1]}", _same
  m = re.fullmatch(r"backbone\.embeddings\.patch_embeddings\.projection\.(weight|bias)", name)
  if m:
    return ("backbone/embeddings/patch_kernel", _conv) if m[1] == "weight" else (
        "backbone/embeddings/patch_bias", _same)
  m = re.fullmatch(r"backbone\.encoder\.layer\.(\d+)\.(.+)\.(weight|bias|lambda1)", name)
  if m:
    i, mod, leaf = m.groups()
    pre = f"backbone/layer_{i}"
    if mod in ("norm1", "norm2") and leaf in ln:
      return f"{pre}/{mod}/{ln[leaf]}", _same
    if mod in ("layer_scale1", "layer_scale2") and leaf == "lambda1":
      return f"{pre}/{mod}", _same
    if mod in ("attention.q_proj", "attention.k_proj", "attention.v_proj",
               "attention.o_proj", "mlp.fc1", "mlp.fc2") and leaf in lin:
      mod = mod.replace(".", "/").replace("mlp/", "")
      return f"{pre}/{mod}/{lin[leaf][0]}", lin[leaf][1]
    return None
  m = re.fullmatch(r"backbone\.layernorm\.(weight|bias)", name)
  if m:
    return f"backbone/layernorm/{ln[m[1]]}", _same
  m = re.fullmatch(r"neck\.reassemble_stage\.layers\.(\d+)\.(projection|resize)\.(weight|bias)",
                   name)
  if m:
    i, mod, leaf = int(m[1]), m[2], m[3]
    if i >= len(config.reassemble_factors):
      return None
    factor = config.reassemble_factors[i]
    if mod == "projection" or factor < 1:
      return f"reassemble_{i}/{mod}/{conv[leaf][0]}", conv[leaf][1]
    if factor > 1:   # a transposed conv with kernel = stride
      return (f"reassemble_{i}/resize_kernel", _conv_t) if leaf == "weight" else (
          f"reassemble_{i}/resize_bias", _same)
    return None       # factor 1 has no resize layer
  m = re.fullmatch(r"neck\.convs\.(\d+)\.weight", name)
  if m:
    return f"neck_conv_{m[1]}/kernel", _conv
  m = re.fullmatch(r"neck\.fusion_stage\.layers\.(\d+)\.(projection|residual_layer[12]\."
                   r"convolution[12])\.(weight|bias)", name)
  if m:
    return f"fusion_{m[1]}/{m[2].replace('.', '/')}/{conv[m[3]][0]}", conv[m[3]][1]
  m = re.fullmatch(r"head\.conv([123])\.(weight|bias)", name)
  if m:
    return f"head_conv{m[1]}/{conv[m[2]][0]}", conv[m[2]][1]
  return None


def detect_format(names) -> str:
  """"original" (depth_anything_v2_vit*.pth names) or "transformers"."""
  names = list(names)
  if any(n.startswith(("pretrained.", "depth_head.")) for n in names):
    return "original"
  return "transformers"


def convert_state_dict(state_dict: Mapping[str, np.ndarray], config: da.DepthAnythingConfig,
                       source: str = "state dict") -> dict[str, np.ndarray]:
  """A Depth Anything V2 state dict (name -> NumPy array, either layout) -> genjax flat weights
  (key -> float32 array). DepthAnythingWeightsError lists the names that belong to neither
  layout, and (through check_params) missing keys and wrong shapes."""
  n_fusion = len(config.out_channels)
  fmt = detect_format(state_dict)
  hf, unknown = {}, []
  for name, value in state_dict.items():
    name = name.removeprefix("module.")
    if fmt == "original":
      new = _original_to_hf(name, n_fusion)
      if new is None:
        unknown.append(name)
        continue
      if new.endswith((".attention.qkv.weight", ".attention.qkv.bias")):
        value = np.asarray(value)   # rows: q, then k, then v (timm's qkv layout)
        if value.shape[0] % 3:
          raise da.DepthAnythingWeightsError(
              f"{source}: {name} has shape {value.shape}; its first axis must be 3 x hidden")
        leaf = new.rsplit(".", 1)[1]
        pre = new.rsplit(".", 2)[0]
        for part, v in zip("qkv", np.split(value, 3, axis=0)):
          hf[f"{pre}.{part}_proj.{leaf}"] = (name, v)
        continue
      name_hf = new
    else:
      name_hf = name
      for old, new in _LEGACY_HF:
        name_hf = name_hf.replace(old, new)
    hf[name_hf] = (name, value)
  flat = {}
  for name_hf, (name, value) in hf.items():
    if _DROPPED.search(name_hf) or name_hf.startswith("neck.fusion_stage.layers.0.residual_layer1."):
      continue
    mapped = _hf_to_ours(name_hf, config)
    if mapped is None:
      unknown.append(name)
      continue
    key, transform = mapped
    value = np.asarray(value, np.float32)
    expected_ndim = {_dense: 2, _conv: 4, _conv_t: 4}.get(transform)
    if expected_ndim is not None and value.ndim != expected_ndim:
      raise da.DepthAnythingWeightsError(
          f"{source}: {name} has shape {value.shape}, expected a {expected_ndim}-d array")
    flat[key] = np.ascontiguousarray(transform(value))
  if unknown:
    raise da.DepthAnythingWeightsError(
        f"{source}: not Depth Anything V2 parameters ({fmt} layout, {len(unknown)} names): "
        f"{_listed(unknown)}")
  _check_size(flat, config, source)
  da.check_params(flat, config, f"{source} (converted, {fmt} layout)")
  return flat


def _check_size(flat: Mapping[str, np.ndarray], config: da.DepthAnythingConfig,
                source: str) -> None:
  """A short error, naming the matching variant, for a checkpoint of another model size."""
  cls = flat.get("backbone/embeddings/cls_token")
  if cls is None:
    return   # check_params lists it as missing
  hidden = cls.shape[-1]
  blocks = len({k.split("/")[1] for k in flat if k.startswith("backbone/layer_")})
  if (hidden, blocks) == (config.hidden_size, config.num_layers):
    return
  names = [n for n, v in da.VARIANTS.items() if (v.hidden_size, v.num_layers) == (hidden, blocks)]
  hint = f"; it looks like --variant {names[0]}" if names else ""
  raise da.DepthAnythingWeightsError(
      f"{source}: a ViT with hidden size {hidden} and {blocks} blocks, but the chosen variant "
      f"has hidden size {config.hidden_size} and {config.num_layers} blocks{hint}")


def read_state_dict(path) -> dict[str, np.ndarray]:
  """name -> float32 NumPy array from a .safetensors or .pth / .pt / .bin checkpoint
  (checkpoint_reader.read_state_dict; an unreadable file raises DepthAnythingWeightsError)."""
  return checkpoint_reader.read_state_dict(path, error=da.DepthAnythingWeightsError)


def convert_file(src, dst, *, config: da.DepthAnythingConfig) -> int:
  """Converts checkpoint `src` to the .npz `dst` (written atomically); returns the array count.
  Refuses to write over `src`."""
  src, dst = checkpoint_reader.check_output(src, dst)
  flat = convert_state_dict(read_state_dict(src), config, f"{str(src)!r}")
  da.save_npz(dst, flat, config)
  return len(flat)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m genjax.models.convert_depth_anything",
      description="Convert a Depth Anything V2 checkpoint (transformers model.safetensors / "
                  "pytorch_model.bin, or the original depth_anything_v2_vit*.pth) to a genjax "
                  ".npz.")
  parser.add_argument("src", help="checkpoint (.safetensors, .bin, .pth)")
  parser.add_argument("dst", help="output weights file (.npz) for genjax.models.depth_anything")
  parser.add_argument("--variant", default="small", choices=sorted(da.VARIANTS))
  args = parser.parse_args(argv)
  try:
    n = convert_file(args.src, args.dst, config=da.variant(args.variant))
  except (OSError, ValueError, RuntimeError) as e:   # DepthAnythingWeightsError is a ValueError
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(f"wrote {n} arrays ({args.variant}) to {args.dst}", file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main())
