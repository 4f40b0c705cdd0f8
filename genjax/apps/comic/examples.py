"""Example photos for the README and the demo, with no download.

With scikit-image installed (the `examples` extra), its bundled sample photos; without
it, procedural landscapes (genjax.data.procedural), so examples always work offline.
"""

import numpy as np

from genjax.data import procedural

# Colour photos that scikit-image ships inside the package (no pooch download).
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def have_skimage() -> bool:
  import importlib.util
  return importlib.util.find_spec("skimage") is not None


def procedural_photo(index: int, *, height: int = 384, width: int = 512) -> np.ndarray:
  """uint8 [height, width, 3]: the middle of a procedural panorama (sky, ridges, ground)."""
  pano = procedural.panorama(index, height=height, width=2 * width, seed=1)
  return np.ascontiguousarray(pano[:, width // 2:width // 2 + width])


def example_photos(n: int = 4, *, source: str = "auto") -> dict[str, np.ndarray]:
  """Up to n named photos, uint8 [H, W, 3] each.

  Args:
    n: number of photos (at most len(SKIMAGE_PHOTOS) from scikit-image).
    source: "skimage", "procedural", or "auto" (scikit-image if it is installed).
  """
  if source not in ("auto", "skimage", "procedural"):
    raise ValueError(f"example source must be 'auto', 'skimage' or 'procedural', got {source!r}")
  if source == "skimage" or (source == "auto" and have_skimage()):
    import skimage.data  # only when installed: an optional extra
    return {name: np.asarray(getattr(skimage.data, name)(), np.uint8)
            for name in SKIMAGE_PHOTOS[:n]}
  return {f"landscape{i}": procedural_photo(i) for i in range(n)}
