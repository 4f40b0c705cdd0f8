"""Procedural 360-degree landscapes: seamless equirectangular images from (seed, index).

Every scene is a function of continuous longitude and latitude whose parameters
come from (seed, index), so the same scene renders at any resolution, and all
longitude dependence is through sines of integer frequency, so column W-1
continues into column 0 exactly (no seam).
"""

import numpy as np

_SKIES = (  # (zenith, horizon) colours: day, hazy day, dusk
    ((0.10, 0.30, 0.75), (0.60, 0.80, 0.95)),
    ((0.25, 0.45, 0.80), (0.80, 0.85, 0.90)),
    ((0.20, 0.20, 0.55), (0.95, 0.60, 0.35)),
)


def _periodic(lon: np.ndarray, rng: np.random.Generator, n: int, decay: float) -> np.ndarray:
  """A smooth random function of longitude with period 2 pi, values roughly in [-1, 1]."""
  out = np.zeros_like(lon)
  for f in range(1, n + 1):
    out += rng.normal() * f ** -decay * np.sin(f * lon + rng.uniform(0, 2 * np.pi))
  return out / max(np.abs(out).max(), 1e-6)


def panorama(index: int, *, height: int, width: int, seed: int = 0) -> np.ndarray:
  """uint8 [height, width, 3]: sky (gradient, sun), 2-3 mountain ridges, ground.

  Row 0 is latitude +90 degrees, column 0 longitude -180 degrees (pixel centres at +0.5).
  """
  rng = np.random.default_rng([seed, index])
  lon = (np.arange(width) + 0.5) / width * 2 * np.pi - np.pi          # [W]
  lat = np.pi / 2 - (np.arange(height) + 0.5) / height * np.pi        # [H]
  lat2, lon2 = np.meshgrid(lat, lon, indexing="ij")                   # [H, W]

  zenith, horizon = (np.array(c) for c in _SKIES[rng.integers(len(_SKIES))])
  up = np.clip(lat2 / (np.pi / 2), 0, 1)[..., None] ** 0.6
  img = horizon * (1 - up) + zenith * up

  sun_lon, sun_lat = rng.uniform(-np.pi, np.pi), rng.uniform(0.15, 0.9)
  cos_d = (np.sin(lat2) * np.sin(sun_lat) + np.cos(lat2) * np.cos(sun_lat)
           * np.cos(lon2 - sun_lon))
  angle = np.arccos(np.clip(cos_d, -1, 1))
  img = img + (np.exp(-(angle / 0.25) ** 2) * 0.35)[..., None] * np.array([1.0, 0.9, 0.6])
  img = np.where((angle < 0.09)[..., None], np.array([1.0, 0.97, 0.85]), img)

  ground_level = rng.uniform(-0.25, -0.05)
  hue = rng.uniform(0.0, 1.0)
  layers = int(rng.integers(2, 4))
  for k in range(layers):  # far (high, pale) to near (low, dark)
    ridge = (ground_level + rng.uniform(0.25, 0.65) * (1 - 0.3 * k)
             * (0.5 + 0.5 * _periodic(lon, rng, 6, 1.3)))
    near = (k + 1) / layers
    colour = (np.array([0.35, 0.42, 0.55]) * (1 - near) + near * np.array(
        [0.20 + 0.15 * hue, 0.28 + 0.1 * (1 - hue), 0.22]) * (0.9 - 0.3 * near))
    shade = 1 + 0.15 * np.sin(7 * lon2 + 3 * k) * np.cos(20 * lat2)
    img = np.where((lat2 < ridge[None, :])[..., None], colour * shade[..., None], img)

  grass = np.array([0.25 + 0.2 * hue, 0.45 - 0.1 * hue, 0.15])
  depth = np.clip((ground_level - lat2) / (np.pi / 2 + ground_level), 0, 1)[..., None]
  ground = grass * (1 - 0.6 * depth) + np.array([0.30, 0.22, 0.12]) * 0.6 * depth
  texture = 1 + 0.08 * np.sin(13 * lon2 + 40 * lat2) * np.sin(5 * lon2 - 25 * lat2)
  img = np.where((lat2 < ground_level)[..., None], ground * texture[..., None], img)
  return np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
