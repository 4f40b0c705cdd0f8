"""Grain input pipelines whose data order does not depend on the process count.

The examples form one global stream: a seeded shuffle of the dataset, epoch after
epoch. Global batch k is positions [k B, (k + 1) B) of that stream, and process p
of P reads only its slice [k B + p b, k B + (p + 1) b) with b = B / P. The random
crop and flip of an example are seeded by its global position. So a run gives the
same global batches on 1 process or 64, and a resumed run continues exactly.
"""

import dataclasses
import logging

import grain
import jax
import numpy as np

from genjax.data import folder, procedural, rooms, transforms
from genjax.data.decode import ImageDecodeError, load_rgb

log = logging.getLogger("genjax.data")


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  num_examples: int
  class_names: tuple[str, ...] = ()
  skipped: tuple[tuple[str, str], ...] = ()   # (path, reason) for folders
  files: tuple[str, ...] = ()
  labels: tuple[int, ...] = ()


def _procedural_info(cfg) -> DatasetInfo:
  return DatasetInfo(num_examples=cfg.num_examples)


def _folder_info(cfg) -> DatasetInfo:
  if not cfg.path:
    raise folder.DataError("data.source is 'folder' but data.path is empty")
  index = folder.scan_folder(cfg.path, class_labels=cfg.class_labels,
                             max_pixels=cfg.max_image_pixels, validate=cfg.get("validate", "full"))
  return DatasetInfo(len(index.files), index.class_names, index.skipped, index.files,
                     index.labels)


# "rooms": ray-cast rooms with exact depth (genjax.data.rooms); batches also carry "depth".
SOURCES = {"procedural": _procedural_info, "folder": _folder_info, "rooms": _procedural_info}


def dataset_info(cfg) -> DatasetInfo:
  """Scans the source once (a folder: every file checked, skips logged)."""
  if cfg.source not in SOURCES:
    raise folder.DataError(f"unknown data.source {cfg.source!r}; valid: {', '.join(SOURCES)}")
  return SOURCES[cfg.source](cfg)


class _Examples:
  """Random access to process-local examples j -> (image, label), Grain's source protocol."""

  def __init__(self, cfg, info: DatasetInfo, *, seed: int, global_batch: int, shard_index: int,
               local_batch: int):
    self.cfg, self.info, self.seed = cfg, info, seed
    self.global_batch, self.shard_index, self.local_batch = global_batch, shard_index, local_batch
    # One shuffled order per epoch, from the seed (cheap to recompute: n integers).
    self._order_cache = {}

  def __len__(self) -> int:
    return 2 ** 62  # the stream repeats epochs without end; the trainer counts steps

  def _record(self, position: int) -> int:
    n = self.info.num_examples
    epoch, offset = divmod(position, n)
    if epoch not in self._order_cache:
      self._order_cache = {epoch: np.random.default_rng([self.seed, epoch]).permutation(n)}
    return int(self._order_cache[epoch][offset])

  def _load(self, record: int) -> tuple[np.ndarray, int]:
    cfg, info = self.cfg, self.info
    if cfg.source == "procedural":
      h, w = cfg.image_size
      return procedural.panorama(record, height=h, width=w, seed=self.seed), 0
    # A file that passed the scan can still fail (validate="header", or changed on disk):
    # use the next file, deterministically, so batches keep their size and order.
    for k in range(len(info.files)):
      r = (record + k) % len(info.files)
      try:
        return load_rgb(info.files[r], max_pixels=cfg.max_image_pixels), info.labels[r]
      except ImageDecodeError as e:
        log.warning("skipping %s at read time: %s", e.path, e.reason)
    raise folder.DataError(f"no file of {cfg.path} can be decoded any more")

  def __getitem__(self, j: int) -> dict:
    b, p = self.local_batch, self.shard_index
    position = (j // b) * self.global_batch + p * b + j % b
    if self.cfg.source == "rooms":
      # Rendered at the training size: no crop or flip (a flip would need the depth too).
      h, w = self.cfg.image_size
      img, depth, _ = rooms.room(self._record(position), height=h, width=w, seed=self.seed)
      return {"image": img.astype(np.float32) / 127.5 - 1.0, "label": np.int32(0),
              "depth": depth}
    img, label = self._load(self._record(position))
    rng = np.random.default_rng([self.seed, 1, position])
    image = transforms.prepare(img, size=tuple(self.cfg.image_size),
                               random_crop=self.cfg.random_crop,
                               random_flip=self.cfg.random_flip, rng=rng)
    return {"image": image, "label": np.int32(label)}


def make_loader(cfg, *, global_batch_size: int, seed: int, shard_index: int | None = None,
                shard_count: int | None = None, info: DatasetInfo | None = None,
                start_batch: int = 0):
  """A Grain dataset of this process's batches: iter() gives a checkpointable iterator.

  Batches are {"image": float32 [b, H, W, 3] in [-1, 1], "label": int32 [b]} (and for
  data.source "rooms", "depth": float32 [b, H, W] z-depth in metres) with
  b = global_batch_size / shard_count. start_batch skips whole global batches
  (resuming at another process count, where the saved iterator states do not apply).
  """
  shard_index = jax.process_index() if shard_index is None else shard_index
  shard_count = jax.process_count() if shard_count is None else shard_count
  if global_batch_size % shard_count:
    raise ValueError(f"train.batch_size={global_batch_size} is not divisible by the "
                     f"{shard_count} processes")
  info = dataset_info(cfg) if info is None else info
  b = global_batch_size // shard_count
  examples = _Examples(cfg, info, seed=seed, global_batch=global_batch_size,
                       shard_index=shard_index, local_batch=b)
  ds = grain.MapDataset.source(examples)
  if start_batch:
    ds = ds[start_batch * b:]
  ds = ds.batch(b, drop_remainder=True).to_iter_dataset(
      grain.ReadOptions(num_threads=cfg.get("read_threads", 4), prefetch_buffer_size=4))
  if cfg.worker_count > 0:
    _absl_flags_parsed()
    ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=cfg.worker_count))
  return ds


def _absl_flags_parsed() -> None:
  """Grain (0.2.x) reads an absl flag when it starts its worker processes
  (grain_enable_multiprocess_worker_profiling), which raises UnparsedFlagAccessError in a
  program that never parsed absl's flags (anything but an absl app, `genjax` included).
  Marking them parsed leaves every flag at its default; an absl app has parsed them."""
  from absl import flags  # noqa: PLC0415  (absl comes with grain)
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()
