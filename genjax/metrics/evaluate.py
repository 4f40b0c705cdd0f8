"""Sample-quality evaluation of two image sets: the library side of `genjax eval` and of the
training hook.

Image sets are float32 arrays [N, H, W, 3] in [-1, 1] (the model range). `image_source`
reads them from a folder of image files, a built-in dataset (a config name: its data
section, e.g. the procedural panoramas of "tiny") or a run folder (the data it trained on).
Sampling a run's model for the fake side lives in genjax.sample.run (a higher layer).
"""

import pathlib
from typing import Sequence

import jax
import numpy as np

from genjax import configs, data
from genjax.metrics import features, frechet
# By name from the modules: the package attributes kid, swd, ... are the functions.
from genjax.metrics.kid import kid
from genjax.metrics.precision_recall import precision_recall
from genjax.metrics.swd import SWDConfig, swd
from genjax.naming import UnknownNameError

METRIC_NAMES = ("swd", "kid", "fid", "pr")
FEATURE_METRICS = ("kid", "fid", "pr")


def parse_metric_names(spec: str | Sequence[str]) -> tuple[str, ...]:
  """"swd,kid" -> ("swd", "kid"); an unknown name is an UnknownNameError listing the valid ones."""
  names = tuple(n.strip() for n in (spec.split(",") if isinstance(spec, str) else spec)
                if n.strip())
  for n in names:
    if n not in METRIC_NAMES:
      raise UnknownNameError(f"unknown metric {n!r}; valid names: {', '.join(METRIC_NAMES)}")
  if not names:
    raise ValueError(f"no metrics given; valid names: {', '.join(METRIC_NAMES)}")
  return names


def swd_config_for(height: int, width: int) -> SWDConfig:
  """The paper's SWD settings, with the coarsest level lowered for images under 32 pixels
  (so a 16x32 panorama still gets two levels: 16x32 and 8x16)."""
  base = SWDConfig()
  return SWDConfig(min_resolution=min(base.min_resolution,
                                              max(base.patch_size, min(height, width) // 2)))


def is_run_folder(path) -> bool:
  path = pathlib.Path(path)
  return (path / "config.json").is_file() and (path / "checkpoints").is_dir()


def _data_config(source: str, image_size: tuple[int, int] | None):
  """The data section that reads `source` (run folder, image folder, or config name)."""
  path = pathlib.Path(source).expanduser()
  if is_run_folder(path):
    cfg = configs.from_json((path / "config.json").read_text(),
                            source=str(path / "config.json")).data
  elif path.is_dir():
    if image_size is None:
      raise ValueError(f"{source}: an image folder needs an image size (--size HxW, or a run "
                       "or dataset on the other side)")
    cfg = configs.load("base").data
    cfg.source, cfg.path = "folder", str(path)
  elif source in configs.NAMES or source.endswith(".py"):
    cfg = configs.load(source).data
  else:
    raise FileNotFoundError(f"{source!r} is neither a folder, a run folder nor a built-in "
                            f"dataset ({', '.join(configs.NAMES)})")
  cfg.unlock()
  if image_size is not None:
    cfg.image_size = tuple(int(s) for s in image_size)
  cfg.random_flip, cfg.random_crop, cfg.class_labels = False, False, False
  return cfg


def image_source(source: str, *, n: int, image_size: tuple[int, int] | None = None,
                 seed: int = 0) -> np.ndarray:
  """Up to n images [n', H, W, 3] float32 in [-1, 1] from a folder, a run's data or a
  built-in dataset; resized to cover and center-cropped to image_size when given.
  A folder with fewer than n images gives all of them (at least 2 are required)."""
  return images_from_data_config(_data_config(source, image_size), n=n, seed=seed,
                                 source=source)


def images_from_data_config(cfg, *, n: int, seed: int = 0, source: str | None = None
                            ) -> np.ndarray:
  """The first n images [n, H, W, 3] float32 in [-1, 1] that a data section reads
  (unflipped, center-cropped); fewer if the dataset is smaller (at least 2)."""
  cfg = cfg.copy_and_resolve_references()
  cfg.unlock()
  cfg.random_flip, cfg.random_crop = False, False
  info = data.dataset_info(cfg)
  n = min(n, info.num_examples)
  if n < 2:
    raise ValueError(f"{source or cfg.get('path') or cfg.source}: need at least 2 images, found "
                     f"{info.num_examples}")
  # Batches of one: any n, no remainder dropped (decoding dominates the cost anyway).
  loader = data.make_loader(cfg, global_batch_size=1, seed=seed, shard_index=0, shard_count=1,
                            info=info)
  out = []
  for batch in loader:
    out.append(batch["image"][0])
    if len(out) == n:
      break
  return np.stack(out)


def evaluate(real: np.ndarray, fake: np.ndarray, names: Sequence[str], *, key: jax.Array,
             extractor: features.Extractor | None = None,
             swd_config: SWDConfig | None = None) -> dict:
  """Metrics of `fake` against `real` (each [N, H, W, 3] in [-1, 1], equal H, W).

  Returns a flat dict: swd (x 1e3, mean over levels) and swd_level_<HxW>; kid, kid_std;
  fid; precision, recall; num_real, num_fake; features (the extractor's name).
  kid / fid / pr need `extractor` (features.get_extractor(...)).
  """
  names = parse_metric_names(names)
  if real.shape[1:] != fake.shape[1:]:
    raise ValueError(f"real images are {real.shape[1:]}, fake images {fake.shape[1:]}: sizes "
                     "must match")
  out = {"num_real": int(real.shape[0]), "num_fake": int(fake.shape[0])}
  if "swd" in names:
    cfg = swd_config or swd_config_for(*real.shape[1:3])
    r = swd(real, fake, jax.random.fold_in(key, 0), cfg)
    out["swd"] = r.average
    out.update({f"swd_level_{h}x{w}": v for (h, w), v in zip(r.resolutions, r.per_level)})
  wanted = [n for n in names if n in FEATURE_METRICS]
  if wanted:
    if extractor is None:
      raise ValueError(f"{', '.join(wanted)} need a feature extractor")
    out["features"] = extractor.name
    rs = features.compute_stats(real, extractor)
    fs = features.compute_stats(fake, extractor)
    if "fid" in names:
      out["fid"] = frechet.frechet_distance(rs.mu, rs.sigma, fs.mu, fs.sigma)
    if "kid" in names:
      # Subsets of at most half of each set, so that they differ and kid_std means something.
      size = max(2, min(1000, rs.features.shape[0] // 2, fs.features.shape[0] // 2))
      out["kid"], out["kid_std"] = kid(rs, fs, jax.random.fold_in(key, 1), subset_size=size)
    if "pr" in names:
      out["precision"], out["recall"] = precision_recall(rs, fs)
  return out


def format_table(results: dict) -> str:
  """Two aligned columns, metric and value."""
  rows = [(k, f"{v:.6g}" if isinstance(v, float) else str(v)) for k, v in results.items()]
  width = max(len(k) for k, _ in rows)
  return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)
