"""The loss curve as a PNG."""

import os
import pathlib

import matplotlib

matplotlib.use("Agg")  # no display on training machines
import matplotlib.pyplot as plt  # noqa: E402


def plot_loss_curve(records: list[dict], path: pathlib.Path) -> None:
  """Loss (log scale) against step, from Logbook records; written atomically."""
  steps = [r["step"] for r in records if "loss" in r]
  losses = [r["loss"] for r in records if "loss" in r]
  fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
  ax.plot(steps, losses, lw=1.2)
  ax.set_yscale("log")
  ax.set_xlabel("step")
  ax.set_ylabel("training loss")
  ax.grid(alpha=0.3, which="both")
  fig.tight_layout()
  tmp = path.with_name(path.stem + ".tmp.png")
  fig.savefig(tmp)
  plt.close(fig)
  os.replace(tmp, path)
