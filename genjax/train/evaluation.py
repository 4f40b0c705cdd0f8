"""Evaluation during training: sample-quality metrics of EMA samples against the training data,
and the best checkpoint by one of them.

Every process computes the same numbers (the samples are replicated and the real images
are read by every process from the same stream), so all of them agree on whether to save
the best checkpoint, as Orbax's collective save requires.
"""

import json
import math
import pathlib

import jax
import numpy as np

from genjax import files
from genjax.metrics import evaluate as ev
from genjax.metrics import features
from genjax.train import checkpoint, distributed, preview

# Metrics where larger is better; every other logged metric is lower-is-better.
_HIGHER_IS_BETTER = ("precision", "recall")
# What each train.eval_metrics name logs that keep_best_by can choose.
_CHOOSABLE = {"swd": ("swd",), "kid": ("kid",), "fid": ("fid",), "pr": ("precision", "recall")}


class Evaluator:
  """`evaluator(params, key) -> {"eval/swd": ..., ...}` for the run's config and mesh."""

  def __init__(self, config, model, spec, mesh):
    t = config.train
    self.names = ev.parse_metric_names(t.eval_metrics)
    self.num_images = int(t.eval_num_images)
    if self.num_images < 2:
      raise ValueError(f"train.eval_num_images must be >= 2, got {self.num_images}")
    batch = min(int(t.eval_batch_size), self.num_images)
    self.sample_batch = distributed.CompiledTogether(preview.make_preview_fn(
        model, spec, mesh, num_images=batch, steps=int(t.eval_sample_steps),
        image_shape=tuple(config.data.image_size), num_classes=config.model.num_classes,
        cond_channels=config.model.cond_channels), "eval_samples")
    self.batch = batch
    # Fixed real images (a seed of their own, unflipped), read once.
    self.real = ev.images_from_data_config(config.data, n=self.num_images, seed=config.seed + 1)
    needs_features = any(n in ev.FEATURE_METRICS for n in self.names)
    self.extractor = features.get_extractor("random_conv") if needs_features else None

  def __call__(self, params, key) -> dict[str, float]:
    chunks = [np.asarray(self.sample_batch(params, jax.random.fold_in(key, i)))
              for i in range(math.ceil(self.num_images / self.batch))]
    fake = np.concatenate(chunks)[:self.num_images]
    # fold_in(key, 2**31 - 1): a stream that the sample batches (0, 1, ...) never use.
    results = ev.evaluate(self.real, fake, self.names, key=jax.random.fold_in(key, 2**31 - 1),
                          extractor=self.extractor)
    return {f"eval/{k}": float(v) for k, v in results.items()
            if isinstance(v, (int, float)) and not k.startswith("num_")}


class BestCheckpoint:
  """Keeps the state of the best evaluation so far in `<workdir>/best/` (one Orbax step
  directory) and its metric in `best/best.json`; survives resume."""

  def __init__(self, workdir: pathlib.Path, metric: str, eval_metrics=None):
    self.metric = metric if metric.startswith("eval/") else f"eval/{metric}"
    if eval_metrics is not None:   # checked at the start, not at the first evaluation
      choosable = [m for n in ev.parse_metric_names(eval_metrics) for m in _CHOOSABLE[n]]
      if self.metric.removeprefix("eval/") not in choosable:
        raise ValueError(f"train.keep_best_by={metric!r} is not logged by "
                         f"train.eval_metrics={eval_metrics!r}; choose one of {choosable}")
    self.higher_is_better = self.metric.removeprefix("eval/") in _HIGHER_IS_BETTER
    self.directory = pathlib.Path(workdir).absolute() / "best"
    self.record_path = self.directory / "best.json"
    self.checkpointer = checkpoint.Checkpointer(self.directory / "checkpoints", every=1, keep=1,
                                                with_data=False)
    self.best = None
    if self.record_path.is_file():
      self.best = json.loads(self.record_path.read_text())

  def is_better(self, value: float) -> bool:
    if not math.isfinite(value):
      return False   # a NaN or Inf never replaces a good checkpoint
    if self.best is None:
      return True
    old = self.best["value"]
    return value > old if self.higher_is_better else value < old

  def update(self, step: int, results: dict[str, float], state) -> bool:
    """Saves `state` if results[metric] beats the best so far; returns whether it did."""
    if self.metric not in results:
      raise ValueError(f"train.keep_best_by={self.metric.removeprefix('eval/')!r} is not one "
                       f"of the logged metrics: {', '.join(sorted(results))}")
    value = results[self.metric]
    if not self.is_better(value):
      return False
    self.checkpointer.save(step, state, force=True)
    self.checkpointer.wait()
    self.best = {"metric": self.metric, "value": value, "step": step}
    if jax.process_index() == 0:
      config = self.directory.parent / "config.json"
      if config.is_file():   # so that `genjax sample --workdir RUN/best` works
        files.write_text(self.directory / "config.json", config.read_text())
      files.write_json(self.record_path, self.best)
    return True

  def close(self) -> None:
    self.checkpointer.close()
