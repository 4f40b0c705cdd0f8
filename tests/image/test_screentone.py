"""Screentones: ink coverage follows tone monotonically, screens rotate, tiles stay in phase."""

import jax.numpy as jnp
import numpy as np
import pytest

from genjax.image import screentone

LEVELS = np.linspace(1.0, 0.0, 21)  # white -> black


def flat_sweep(h=40, w=40):
  return jnp.asarray(np.broadcast_to(LEVELS[:, None, None, None], (len(LEVELS), h, w, 1)),
                     jnp.float32)


def test_dot_area_matches_numerical_integration():
  g = (np.arange(2000) + 0.5) / 2000 - 0.5
  r2 = g[:, None] ** 2 + g[None, :] ** 2
  for d in [0.1, 0.3, 0.5, 0.55, 0.62, 0.7]:
    assert abs(float(screentone.dot_area(jnp.float32(d))) - np.mean(r2 < d * d)) < 2e-4


@pytest.mark.parametrize("pattern", ["halftone", "hatching"])
def test_coverage_monotone_in_darkness(pattern):
  fn = getattr(screentone, pattern)
  ink = np.asarray(fn(flat_sweep(), period=5.0, angle=30.0))
  # Per pixel, ink never decreases as the tone darkens; in total it strictly grows.
  assert np.all(np.diff(ink, axis=0) >= -1e-6)
  coverage = ink.mean(axis=(1, 2, 3))
  assert coverage[0] == 0.0
  assert np.all(np.diff(coverage) > 0) if pattern == "halftone" else coverage[-1] > 0.7


def test_halftone_coverage_equals_darkness():
  # Each cell's ink area is 1 - tone; the one-pixel antialiasing ramp biases it by about
  # pi / (12 period^2) (convex dots gain, concave holes lose) plus sampling error.
  coverage = np.asarray(screentone.halftone(flat_sweep(64, 64), period=8.0, angle=15.0)).mean(
      axis=(1, 2, 3))
  np.testing.assert_allclose(coverage, 1.0 - LEVELS, atol=0.02)
  assert coverage[-1] == 1.0


def test_rotated_screen_lattice():
  # At angle atan2(3, 4) with period 5 the screen's lattice vectors are the integer
  # pixel offsets (row 3, col 4) and (4, -3): shifting the origin by them changes nothing,
  # while an axis-aligned shift by one period does change the pattern.
  angle = np.degrees(np.arctan2(3, 4))
  tone = jnp.full((1, 24, 24, 1), 0.6)
  base = np.asarray(screentone.halftone(tone, period=5.0, angle=angle))
  for shift in [(3.0, 4.0), (4.0, -3.0), (7.0, 1.0)]:
    moved = screentone.halftone(tone, period=5.0, angle=angle, origin=shift)
    np.testing.assert_allclose(moved, base, atol=1e-3)
  axis = screentone.halftone(tone, period=5.0, angle=angle, origin=(0.0, 5.0))
  assert np.abs(np.asarray(axis) - base).max() > 0.5


def test_tiles_join_without_seam():
  tone = jnp.asarray(np.random.default_rng(0).uniform(size=(1, 16, 30, 1)), jnp.float32)
  whole = screentone.halftone(tone, period=4.5, angle=15.0)
  left = screentone.halftone(tone[:, :, :13], period=4.5, angle=15.0)
  right = screentone.halftone(tone[:, :, 13:], period=4.5, angle=15.0, origin=(0.0, 13.0))
  np.testing.assert_allclose(jnp.concatenate([left, right], axis=2), whole, atol=1e-5)


def test_deterministic_and_per_image_params():
  tone = flat_sweep(16, 16)[5:7]
  both = screentone.hatching(tone, period=jnp.array([4.0, 6.0]), angle=jnp.array([0.0, 45.0]))
  np.testing.assert_array_equal(both, screentone.hatching(
      tone, period=jnp.array([4.0, 6.0]), angle=jnp.array([0.0, 45.0])))
  np.testing.assert_allclose(both[1:], screentone.hatching(tone[1:], period=6.0, angle=45.0),
                             atol=1e-6)


def test_tone_bands_runtime_levels():
  tone = jnp.asarray(np.linspace(0, 1, 9)[None, None, :, None], jnp.float32)
  index, band = screentone.tone_bands(jnp.concatenate([tone, tone]), jnp.array([2.0, 4.0]))
  np.testing.assert_array_equal(index[0, 0, :, 0], [0, 0, 0, 0, 1, 1, 1, 1, 1])
  np.testing.assert_array_equal(index[1, 0, :, 0], [0, 0, 1, 1, 2, 2, 3, 3, 3])
  np.testing.assert_allclose(band[1, 0, :, 0], np.array([0, 0, 1, 1, 2, 2, 3, 3, 3]) / 3)


def test_hatching_follows_bands():
  # With 4 bands, tones inside one band hatch identically; darker bands hatch more.
  ink = np.asarray(screentone.hatching(flat_sweep(24, 24), levels=4, period=6.0))
  band = np.minimum(np.floor(LEVELS * 4), 3)
  coverage = ink.mean(axis=(1, 2, 3))
  for b in range(4):
    same = ink[band == b]
    np.testing.assert_array_equal(same, np.broadcast_to(same[:1], same.shape))
  per_band = [coverage[band == b][0] for b in (3, 2, 1, 0)]  # light -> dark
  assert per_band[0] == 0.0 and np.all(np.diff(per_band) > 0.05), per_band
