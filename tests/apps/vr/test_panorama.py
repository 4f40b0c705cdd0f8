"""Photo -> 360 panorama (genjax/apps/vr/panorama.py) and the panorama model's training loss.

The latitude-weighted loss (genjax/train/step.py with train.latitude_weighting) is tested
here beside the panorama configs that turn it on.
"""

import math
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import configs, diffusion
from genjax.diffusion import loss as loss_lib
from genjax.train import step as step_lib

CONFIG_DIR = pathlib.Path(configs.__file__).parent


def _load_config(name, overrides=()):
  """A built-in config by file, so the test does not depend on configs.NAMES."""
  return configs.load(str(CONFIG_DIR / f"{name}.py"), list(overrides))


# ---- the panorama model: configs and cos(latitude) loss weighting ----------------------------

@pytest.mark.parametrize("name", ["panorama_tiny", "panorama"])
def test_panorama_configs_are_masked_sphere_models(name):
  c = _load_config(name)
  h, w = c.data.image_size
  assert w == 2 * h
  assert c.model.padding == "sphere"
  assert c.model.cond_channels == 4
  assert c.train.latitude_weighting
  assert step_lib.StepConfig.from_config(c).latitude_weighting
  assert not step_lib.StepConfig.from_config(configs.load("tiny")).latitude_weighting


def test_latitude_weights_are_cos_of_row_centre_latitudes():
  h = 8
  lat = np.pi / 2 - (np.arange(h, dtype=np.float64) + 0.5) * np.pi / h
  w = np.asarray(step_lib.latitude_weights(h))
  assert w.shape == (h,) and w.dtype == np.float32
  np.testing.assert_allclose(w, np.cos(lat), rtol=0, atol=1e-6)
  np.testing.assert_allclose(w, w[::-1], atol=1e-6)        # symmetric about the equator
  assert w.min() > 0


class _RowModel(nn.Module):
  """A parameter-free 'network' whose output depends on the row only: out[b, i, j, c] = v[i]."""
  rows: tuple

  @nn.compact
  def __call__(self, x, c_noise, *, y=None, cond=None, train=False):
    v = jnp.asarray(self.rows, jnp.float32)
    return jnp.broadcast_to(v[None, :, None, None], x.shape)


@pytest.mark.parametrize("weighted", [True, False])
def test_latitude_weighted_loss_matches_float64_reference(weighted):
  b, h, w = 3, 6, 12
  rows = tuple(3.0 * math.sin(0.7 * i) for i in range(h))   # errors differ strongly by row
  model = _RowModel(rows)
  spec = diffusion.DiffusionSpec.from_config(
      {"schedule": "cosine", "objective": "eps", "weighting": "uniform"})
  cfg = step_lib.StepConfig(latitude_weighting=weighted)
  x0 = jax.random.uniform(jax.random.PRNGKey(1), (b, h, w, 3), minval=-1, maxval=1)
  key = jax.random.PRNGKey(7)
  got = float(step_lib._loss({}, {"image": x0}, key, model=model, spec=spec, cfg=cfg))

  # The same draws as the step: key -> (dropout, label, diffusion, mask) -> (t, eps).
  k_diff = jax.random.split(key, 4)[2]
  _, eps = loss_lib.sample_t_and_noise(k_diff, x0.shape, spec.schedule)
  err = np.square(np.asarray(rows, np.float64)[None, :, None, None]
                  - np.asarray(eps, np.float64))            # eps objective: target = eps
  cos_lat = np.cos(np.pi / 2 - (np.arange(h) + 0.5) * np.pi / h)

  def reference(row_weight):  # mean over examples of sum(w e^2) / sum(w)
    return (np.einsum("bhwc,h->b", err, row_weight) / (row_weight.sum() * w * 3)).mean()

  want = reference(cos_lat if weighted else np.ones(h))
  assert abs(got - want) / want < 1e-5
  # The weighting matters on this case, so the test tells the two apart.
  assert abs(reference(cos_lat) - reference(np.ones(h))) > 0.05 * want
