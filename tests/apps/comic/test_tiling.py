"""Tiled rendering: tiles cover the image, seams blend to one, tiled == untiled."""

import jax.numpy as jnp
import numpy as np
import pytest

from genjax.apps.comic import render, tiling
from genjax.apps.comic.examples import procedural_photo

# Smaller context than the defaults (halo 18 px) so a medium image splits into many tiles.
KNOBS = {"max_line_weight": 2.0, "smoothing": 0.5, "cleanup_radius": 2.0}


@pytest.mark.parametrize("n,core,halo", [(100, 30, 7), (64, 64, 10), (50, 16, 40), (7, 3, 1)])
def test_spans_cover_with_context(n, core, halo):
  spans = tiling.spans(n, core, halo)
  covered = np.concatenate([np.arange(s.core_lo, s.core_hi) for s in spans])
  np.testing.assert_array_equal(covered, np.arange(n))  # each pixel in exactly one core
  assert len({s.win_hi - s.win_lo for s in spans}) == 1  # one window shape: one compile
  for s in spans:
    assert s.win_lo <= max(s.core_lo - halo, 0) and s.win_hi >= min(s.core_hi + halo, n)
    assert 0 <= s.win_lo and s.win_hi <= n


@pytest.mark.parametrize("blend", [0, 3, 8])
def test_blend_weights_partition_unity(blend):
  n = 90
  total = np.zeros(n)
  for s in tiling.spans(n, 25, 12):
    lo, hi, w = tiling._weights(s, n, blend)
    assert s.win_lo <= lo and hi <= s.win_hi
    total[lo:hi] += w
  np.testing.assert_allclose(total, 1.0, atol=1e-6)


@pytest.mark.parametrize("style", ["comic", "manga"])
def test_tiled_equals_untiled(style):
  photo = procedural_photo(2, height=96, width=128).astype(np.float32) / 255.0
  knobs = render.make_knobs(style, KNOBS)
  assert knobs.halo() == 18
  full = render.render(jnp.asarray(photo), style, knobs)
  tiles = []
  tiled = tiling.render_tiled(photo, style, knobs, tile=24, blend=4, progress=tiles.append)
  assert len(tiles) == 4 * 6
  assert np.abs(tiled.image - np.asarray(full.image)).max() < 1e-3
  for name in render.LAYER_NAMES:
    assert np.abs(tiled.layers[name] - np.asarray(full.layers[name])).max() < 1e-3, name


def test_bytes_per_pixel_bound():
  # The shapes and knobs of test_tiled_equals_untiled, so the compiles are cached.
  for style in ("comic", "manga"):
    knobs = render.make_knobs(style, KNOBS)
    images = jnp.zeros((1, 96, 128, 3))
    palette = render.fit_palette(images, style, knobs)
    compiled = render._layers.lower(images, render._runtime_knobs(knobs, 1), jnp.zeros((1, 2)),
                                    palette, style=style).compile()
    mem = compiled.memory_analysis()
    used = mem.temp_size_in_bytes + mem.argument_size_in_bytes + mem.output_size_in_bytes
    assert used <= tiling.BYTES_PER_PIXEL * 128 * 96, (style, used / (128 * 96))


def test_tile_core_from_budget():
  core = tiling.tile_core(40, memory_mb=16)
  assert (core + 80) ** 2 * tiling.BYTES_PER_PIXEL <= 16 * 2**20
  assert (core + 81) ** 2 * tiling.BYTES_PER_PIXEL > 16 * 2**20
  with pytest.raises(ValueError, match="memory budget"):
    tiling.tile_core(200, memory_mb=1)
  with pytest.raises(ValueError, match="core must be >= 1"):
    tiling.spans(10, 0, 2)


def test_render_tiled_bad_shape():
  with pytest.raises(ValueError, match=r"one image \[H, W, 3\]"):
    tiling.render_tiled(np.zeros((1, 8, 8, 3)), "manga", tile=4)
