"""Depth from one photo, behind one interface: `estimate_depth(photo, method=...) -> metres`.

  depth = estimate_depth(photo)                                   # "auto": the shipped UNet
  depth = estimate_depth(photo, method="depth_anything", weights="depth_anything_v2_vits.npz")

Methods, by name (METHODS):
  unet            genjax's own depth UNet (genjax.train.depth), trained by
                  `genjax train --config=depth_tiny` on procedural ray-cast rooms with exact
                  depth (genjax.data.rooms). Its EMA weights ship with the package
                  (depth_tiny.msgpack beside this file, ~1 MB, written by export_weights from
                  that run), so stereo works on a fresh install with nothing downloaded;
                  `weights` may name another run folder or exported file. It predicts
                  metric z-depth for rooms like its training scenes; on real photos it gives
                  a coarse near/far layout (floors, walls, large objects), not the
                  detail or the scale of a model trained on real images.
  depth_anything  Depth Anything V2 (genjax.models.depth_anything, a Flax port) from a
                  weights file the user has (`weights`, `--depth-weights`). It predicts
                  relative inverse depth, mapped to metres between `near` and `far` like a
                  depth image (genjax.apps.vr.run.depth_from_image).
  auto            depth_anything when weights are given, else unet.
"""

import functools
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from genjax import models
from genjax.configs import base as base_config

PACKAGED_UNET = pathlib.Path(__file__).with_name("depth_tiny.msgpack")
# The short side photos are resized to for the UNet. It trained on 64 x 64 rooms, yet (the
# shipped weights) reads depth best a little larger: on 8 held-out rooms (indices 30_000_000
# on) rendered at 96 x 128 (and at 144 x 192), AbsRel 0.339 (0.339) at 64, 0.280 (0.268) at
# 96, 0.318 (0.341) at 128 (144); the stereo PSNR gap to true depth 11.2 (14.1) dB at 64,
# 10.1 (12.5) dB at 96.
UNET_MIN_SIDE = 96


class DepthModelError(ValueError):
  """A depth method that cannot run: unknown name, missing weights file, missing port."""


def _resize(a: np.ndarray, hw: tuple[int, int], resample=Image.Resampling.BILINEAR):
  if a.shape[:2] == tuple(hw):
    return a
  if a.ndim == 2:
    return np.asarray(Image.fromarray(a.astype(np.float32)).resize((hw[1], hw[0]), resample))
  return np.asarray(Image.fromarray(a).resize((hw[1], hw[0]), resample))


# ---------------------------------------------------------------------------------------------
# genjax's depth UNet.

def export_weights(workdir, path=PACKAGED_UNET) -> pathlib.Path:
  """A depth_tiny run's EMA parameters and model config -> one msgpack file (atomic)."""
  from flax import serialization

  from genjax.files import write_bytes
  from genjax.sample.load import load_run
  config, _, _, params = load_run(workdir)
  blob = serialization.msgpack_serialize({
      "config": json.dumps(config.model.to_dict()),
      "params": jax.tree.map(np.asarray, params)})
  write_bytes(pathlib.Path(path), blob)
  return pathlib.Path(path)


@functools.lru_cache(maxsize=4)
def _load_unet(weights: str):
  """(model, params) from an exported .msgpack or a depth_tiny run folder."""
  from flax import serialization
  path = pathlib.Path(weights)
  if path.is_dir():
    from genjax.sample.load import load_run
    config, model, _, params = load_run(path)
    if config.train.get("objective", "diffusion") != "depth":
      raise DepthModelError(f"{path}: not a depth run (train.objective = "
                            f"{config.train.get('objective', 'diffusion')!r}); train one with "
                            f"`genjax train --config=depth_tiny`")
    return model, params
  if not path.is_file():
    raise DepthModelError(f"depth UNet weights {path}: no such file (train a run with `genjax "
                          f"train --config=depth_tiny --workdir RUN` and pass RUN)")
  try:
    blob = serialization.msgpack_restore(path.read_bytes())
    model_cfg = base_config.get_config().model
    model_cfg.update(json.loads(blob["config"]))
  except Exception as e:  # noqa: BLE001 - msgpack and json raise many types
    raise DepthModelError(f"depth UNet weights {path}: not a genjax depth weights file "
                          f"({type(e).__name__}: {e})") from None
  return models.build_model(model_cfg), jax.tree.map(jnp.asarray, blob["params"])


@functools.partial(jax.jit, static_argnames="model")
def _unet_log_depth(params, image, *, model):
  from genjax.train.depth import predict_log_depth
  return predict_log_depth(params, image, model=model)


def unet_grid(photo_hw: tuple[int, int]) -> tuple[int, int]:
  """The UNet's input size for a photo: the short side UNET_MIN_SIDE, the aspect kept,
  sides multiples of 8 (the stride-2 levels)."""
  h, w = photo_hw
  s = UNET_MIN_SIDE / min(h, w)
  return (max(8, 8 * round(h * s / 8)), max(8, 8 * round(w * s / 8)))


def _unet(photo: np.ndarray, *, weights=None, **_) -> np.ndarray:
  model, params = _load_unet(str(weights or PACKAGED_UNET))
  hw = unet_grid(photo.shape[:2])
  x = _resize(photo, hw, Image.Resampling.BOX).astype(np.float32) / 127.5 - 1.0
  log_z = np.asarray(_unet_log_depth(params, jnp.asarray(x)[None], model=model)[0])
  # Upsampled in inverse depth: 1/z of a plane is affine in image coordinates, so bilinear
  # interpolation of 1/z keeps planes planar (of z, it bends them), and disparity, what
  # stereo uses, is proportional to 1/z. On the ray-cast test scene, its true depth taken
  # down to a 64 x 88 grid and back: 40.2 dB stereo PSNR through z, 42.2 dB through 1/z.
  inv = _resize(np.exp(-log_z).astype(np.float32), photo.shape[:2])
  return 1.0 / np.maximum(inv, 1e-6)


# ---------------------------------------------------------------------------------------------
# Depth Anything V2 (the Flax port in genjax.models.depth_anything).

@functools.lru_cache(maxsize=2)
def _depth_anything_weights(path: str):
  """(params, config) of a converted weights file, loaded once per path."""
  from genjax.models import depth_anything
  return depth_anything.load_npz(path)


def _depth_anything(photo: np.ndarray, *, weights=None, near: float = 1.0, far: float = 100.0,
                    **_) -> np.ndarray:
  """Depth Anything V2 on photo uint8 [H, W, 3]: its relative inverse depth (larger = nearer),
  normalised to [0, 1] and mapped linearly in 1/z onto [1/far, 1/near]. weights: the .npz that
  `python -m genjax.models.convert_depth_anything` writes from the published checkpoint."""
  if weights is None:
    raise DepthModelError("depth method 'depth_anything' needs its weights file "
                          "(--depth-weights FILE.npz, converted from depth_anything_v2_vits.pth "
                          "by python -m genjax.models.convert_depth_anything); without one, use "
                          "--depth unet")
  if not pathlib.Path(weights).is_file():
    raise DepthModelError(f"Depth Anything weights {weights}: no such file")
  from genjax.models import depth_anything
  try:
    params, config = _depth_anything_weights(str(weights))
  except depth_anything.DepthAnythingWeightsError as e:
    raise DepthModelError(str(e)) from None
  inv = np.asarray(depth_anything.predict_depth(params, photo, config=config), np.float32)
  inv = (inv - inv.min()) / max(float(inv.max() - inv.min()), 1e-6)      # 1 = nearest
  z = 1.0 / (1.0 / far + inv * (1.0 / near - 1.0 / far))
  return _resize(z.astype(np.float32), photo.shape[:2])


METHODS = {"unet": _unet, "depth_anything": _depth_anything}


def resolve(method: str, weights=None) -> str:
  """"auto" -> depth_anything when weights are given, else unet; unknown names raise."""
  if method == "auto":
    return "depth_anything" if weights is not None else "unet"
  if method not in METHODS:
    raise DepthModelError(f"unknown depth method {method!r}; valid: auto, {', '.join(METHODS)}")
  return method


def estimate_depth(photo: np.ndarray, *, method: str = "auto", weights=None,
                   near: float = 1.0, far: float = 100.0) -> np.ndarray:
  """z-depth in metres, float32 [H, W], of a photo uint8 [H, W, 3] (see the module docstring).

  weights: the method's weights (unet: an exported .msgpack or a depth_tiny run folder,
  default the packaged file; depth_anything: required). near, far: metres, the range a
  relative-depth method is mapped to.
  """
  photo = np.asarray(photo)
  if photo.ndim != 3 or photo.shape[-1] != 3:
    raise ValueError(f"estimate_depth: photo must be [H, W, 3], got shape {photo.shape}")
  if photo.dtype != np.uint8:
    photo = np.round(np.clip(photo, 0, 1) * 255).astype(np.uint8)
  name = resolve(method, weights)
  return METHODS[name](photo, weights=weights, near=near, far=far)


def evaluate_on_rooms(estimate, *, n: int = 64, hw: tuple[int, int] = (64, 64),
                      first_index: int = 20_000_000, seed: int = 0) -> dict[str, float]:
  """AbsRel and delta1 of estimate(photo uint8 [H, W, 3]) -> metres on n held-out procedural
  rooms (indices from first_index: past every training run's), with the constant baseline
  (the geometric mean of all the true depths, the best constant for log error) beside it."""
  from genjax.data import rooms
  from genjax.metrics.depth import depth_metrics
  views = [rooms.room(first_index + i, height=hw[0], width=hw[1], seed=seed) for i in range(n)]
  true = np.stack([v[1] for v in views])
  pred = np.stack([np.asarray(estimate(v[0]), np.float32) for v in views])
  const = np.full_like(true, np.exp(np.mean(np.log(true))))
  m, c = depth_metrics(pred, true), depth_metrics(const, true)
  return {"abs_rel": m["abs_rel"], "delta1": m["delta1"], "constant_abs_rel": c["abs_rel"],
          "constant_delta1": c["delta1"], "n": n}
