"""The loss curve and the evaluation curves as PNGs."""

import pathlib

from genjax import files


def _pyplot():
  """matplotlib.pyplot on the Agg backend (no display on training machines), imported when
  a curve is drawn: a run starts ~0.5 s sooner without it."""
  import matplotlib  # noqa: PLC0415
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # noqa: PLC0415
  return plt


def plot_loss_curve(records: list[dict], path: pathlib.Path) -> None:
  """Loss (log scale) against step, from Logbook records; written atomically."""
  steps = [r["step"] for r in records if "loss" in r]
  losses = [r["loss"] for r in records if "loss" in r]
  fig, ax = _pyplot().subplots(figsize=(6, 3.5), dpi=120)
  ax.plot(steps, losses, lw=1.2)
  ax.set_yscale("log")
  ax.set_xlabel("step")
  ax.set_ylabel("training loss")
  ax.grid(alpha=0.3, which="both")
  _save(fig, path)


def plot_eval_curves(records: list[dict], path: pathlib.Path) -> bool:
  """One panel per logged eval/* metric against step; False (nothing written) if none."""
  names = sorted({k for r in records for k in r if k.startswith("eval/")
                  and not k.startswith("eval/swd_level")})
  if not names:
    return False
  fig, axes = _pyplot().subplots(1, len(names), figsize=(3.2 * len(names), 3.0), dpi=120,
                           squeeze=False)
  for ax, name in zip(axes[0], names):
    points = [(r["step"], r[name]) for r in records if name in r]
    ax.plot(*zip(*points), marker="o", lw=1.2)
    ax.set_xlabel("step")
    ax.set_title(name.removeprefix("eval/"))
    ax.grid(alpha=0.3)
  _save(fig, path)
  return True


def _save(fig, path: pathlib.Path) -> None:
  """Written under a temporary name, then renamed: never a half-written PNG."""
  fig.tight_layout()
  try:
    with files.atomic_write(path) as f:
      fig.savefig(f, format="png")
  finally:
    _pyplot().close(fig)
