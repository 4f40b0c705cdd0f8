"""The procedural renderer: contract of the layers, determinism, knobs, styles."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.apps.comic import render, styles
from genjax.apps.comic.examples import procedural_photo
from genjax.image import color, quantize

# One image shape for all comic tests (test_run.py too), batches of 1 except where a test
# needs per-image knobs (manga, batch 2): few programs to compile.
H, W = 48, 64


@pytest.fixture(scope="module")
def photos():
  a = procedural_photo(0, height=H, width=W)
  b = procedural_photo(3, height=H, width=W)
  return jnp.asarray(np.stack([a, b]) / 255.0, jnp.float32)


def gradient(levels: int = W) -> jax.Array:
  """Grey ramp from white (left) to black (right), [1, H, W, 3]."""
  ramp = np.linspace(1.0, 0.0, levels, dtype=np.float32)
  return jnp.asarray(np.broadcast_to(ramp[None, None, :, None], (1, H, W, 3)))


@pytest.mark.parametrize("style", ["comic", "manga"])
def test_contract_and_determinism(photos, style):
  photos = photos[:1]
  image, layers = render.render(photos, style)
  assert image.shape == photos.shape and image.dtype == jnp.float32
  assert layers["ink"].shape == layers["tone"].shape == (1, H, W, 1)
  assert layers["flat"].shape == (1, H, W, 3)
  for v in (image, *layers.values()):
    assert float(v.min()) >= 0.0 and float(v.max()) <= 1.0
  np.testing.assert_array_equal(image, render.compose(layers))
  again, _ = render.render(photos, style)
  np.testing.assert_array_equal(image, again)
  assert float(layers["ink"].mean()) > 0.001  # some lines on a real scene
  # RGBA layers stacked with normal blending (tone, then ink, over flat) give the image.
  rgba = render.layers_rgba(layers)
  stacked = rgba["flat"][..., :3]
  for name in ("tone", "ink"):
    a = rgba[name][..., 3:]
    stacked = rgba[name][..., :3] * a + stacked * (1 - a)
  np.testing.assert_allclose(stacked, image, atol=1e-6)


def test_single_image(photos):
  image, layers = render.render(photos[0], "manga")
  assert image.shape == (H, W, 3) and layers["ink"].shape == (H, W, 1)
  np.testing.assert_array_equal(image, render.render(photos[:1], "manga").image[0])


def test_comic_flat_colours(photos):
  for n in range(2):
    _, layers = render.render(photos[n:n + 1], "comic")
    assert len(np.unique(np.asarray(layers["flat"][0]).reshape(-1, 3), axis=0)) <= 8
  # Palettes come from fixed-size thumbnails: one compiled k-means for every image size.
  before = quantize.fit_palette._cache_size()
  render.fit_palette(photos[:1, :40, :50], "comic")
  render.fit_palette(photos[1:, :30], "comic", key=jax.random.key(3))
  assert quantize.fit_palette._cache_size() == before
  assert float(layers["tone"].max()) == 0.0


def test_manga_is_black_and_white(photos):
  image, layers = render.render(photos, "manga")
  img = np.asarray(image)
  np.testing.assert_array_equal(img[..., 0], img[..., 1])
  np.testing.assert_array_equal(img[..., 0], img[..., 2])
  assert set(np.unique(layers["flat"])) <= {0.0, 1.0}


def test_manga_ink_grows_as_luminance_falls():
  knobs = {"line_threshold": 1.0}  # no lines: shading only (hatching: test_screentone.py)
  image, _ = render.render(gradient(), "manga", knobs)
  darkness = 1.0 - np.asarray(image[0, :, :, 0])  # columns go from light to dark
  lightness = np.asarray(color.lightness(gradient()))[0, 0, :, 0]
  # Average over whole tone bands (the screen pattern varies inside a band).
  bands = np.floor(lightness * 4).clip(0, 3)
  per_band = [darkness[:, bands == b].mean() for b in (3, 2, 1, 0)]
  assert per_band[0] == 0.0 and per_band[-1] == 1.0
  assert np.all(np.diff(per_band) > 0.05), per_band


def test_line_weight_thickens_lines():
  # A dark disc on white; each image of the batch has its own line weight.
  yy, xx = np.mgrid[:H, :W]
  disc = np.where((yy - H / 2) ** 2 + (xx - W / 2) ** 2 < 15 ** 2, 0.3, 0.95)
  img = jnp.asarray(np.broadcast_to(disc[None, :, :, None], (2, H, W, 3)), jnp.float32)
  _, layers = render.render(img, "manga", {"line_weight": jnp.array([0.7, 2.8])})
  ink = np.asarray(layers["ink"]).sum(axis=(1, 2, 3))
  assert ink[1] > 1.5 * ink[0] > 0, ink


def test_batch_equals_one_by_one(photos):
  knobs = {"line_weight": jnp.array([0.8, 2.0]), "tone_levels": jnp.array([3, 5]),
           "screen_angle": jnp.array([45.0, 15.0])}
  batch = render.render(photos, "manga", knobs).image
  for n, (weight, levels, angle) in enumerate([(0.8, 3, 45.0), (2.0, 5, 15.0)]):
    one = render.render(photos[n:n + 1], "manga", {"line_weight": weight, "tone_levels": levels,
                                                   "screen_angle": angle}).image
    np.testing.assert_allclose(batch[n:n + 1], one, atol=1e-5)


def test_runtime_knobs_do_not_recompile(photos):
  render.render(photos, "manga", {"line_weight": 1.0, "tone_levels": 3})
  size = render._layers._cache_size()
  render.render(photos, "manga", {"line_weight": 2.5, "tone_levels": 6, "smoothing": 0.2,
                                  "tone_period": 7.0, "exposure": 0.1})
  render.render(photos, "manga", {"tone_density": jnp.array([0.2, 0.6])})
  assert render._layers._cache_size() == size


def test_bad_style_and_knobs(photos):
  with pytest.raises(ValueError, match=r"unknown comic style 'noir'.*\['comic', 'manga'\]"):
    render.render(photos, "noir")
  with pytest.raises(ValueError, match=r"unknown MangaKnobs knob\(s\) \['colours'\].*tone_levels"):
    render.render(photos, "manga", {"colours": 3})
  with pytest.raises(ValueError, match=r"MangaKnobs.smoothing must be in \[0.0, 1.0\]"):
    render.render(photos, "manga", {"smoothing": 2.0})
  with pytest.raises(ValueError, match="line_weight"):
    render.render(photos, "comic", {"line_weight": 9.0})  # above max_line_weight
  with pytest.raises(ValueError, match="tone_pattern 'stripes'"):
    render.render(photos, "manga", {"tone_pattern": "stripes"})
  with pytest.raises(ValueError, match=r"\[B, H, W, 3\]"):
    render.render(photos[..., :1], "manga")


def test_every_style_documents_its_knobs():
  for name, style in styles.STYLES.items():
    doc = style.knobs.__doc__
    for field in style.knobs.__dataclass_fields__:
      assert field in doc, f"{name}: knob {field} is not documented"
