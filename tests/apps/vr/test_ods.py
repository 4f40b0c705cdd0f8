"""Omnidirectional stereo from a mono panorama and its distances, against ray-cast ODS eyes."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.apps.vr import ods, scene

PANO_H = 64
IPD = 0.5              # exaggerated (an adult's is 0.064 m) so the parallax spans pixels
# Synthesized vs ray-cast eye outside the holes. Measured: 45.9 dB (left), 47.3 dB (right);
# an eye offset 15 % too large gives 42.9 and 43.5 dB.
MIN_PSNR_DB = 44.0


@functools.cache
def rendered():
  """(mono, distance, left, right) panoramas of the test scene, NumPy."""
  pano = jax.jit(scene.render_panorama, static_argnames=("height", "supersample"))
  mono, distance = pano(height=PANO_H)
  left, _ = pano(height=PANO_H, eye_offset=-IPD / 2)
  right, _ = pano(height=PANO_H, eye_offset=IPD / 2)
  return tuple(np.asarray(a) for a in (mono, distance, left, right))


eye_fn = jax.jit(ods.ods_eye)     # the offset is traced: one program for every eye and size
OFFSETS = {"left": -IPD / 2, "right": IPD / 2}


def psnr(a, b, keep) -> float:
  mse = ((np.asarray(a, np.float64) - b) ** 2).mean(-1)[keep].mean()
  return float(10 * np.log10(1.0 / mse))


@pytest.mark.parametrize("eye", ["left", "right"])
def test_ods_eye_matches_ray_cast_eye(eye, record_property):
  mono, distance, left, right = rendered()
  truth = left if eye == "left" else right
  synth, holes = eye_fn(jnp.asarray(mono), jnp.asarray(distance), eye_offset=OFFSETS[eye])
  synth, holes = np.asarray(synth), np.asarray(holes)
  quality = psnr(synth, truth, ~holes)
  record_property("psnr_db", quality)
  print(f"ODS {eye} eye vs ray-cast: PSNR {quality:.1f} dB outside holes, "
        f"holes {holes.mean():.1%}")
  assert quality >= MIN_PSNR_DB
  assert psnr(mono, truth, ~holes) < quality - 10     # the centre view is far worse
  assert holes.mean() < 0.08
  # The disocclusion beside the front sphere is on the side the eye looks past it: for the
  # right eye (which sees near things shifted left) to the sphere's right.
  lon = (np.arange(2 * PANO_H) + 0.5) / (2 * PANO_H) * 360 - 180
  centre_row = PANO_H // 2 + 2                       # lat ~ -4: through the sphere (lat -5)
  sphere_lon = np.rad2deg(np.arctan2(scene.SPHERE_CENTRE[0], -scene.SPHERE_CENTRE[2]))
  half = np.rad2deg(np.arcsin(scene.SPHERE_RADIUS / np.linalg.norm(scene.SPHERE_CENTRE)))
  row = holes[centre_row]
  right_side = row[(lon > sphere_lon) & (lon < sphere_lon + half + 8)].any()
  left_side = row[(lon < sphere_lon) & (lon > sphere_lon - half - 8)].any()
  assert (right_side, left_side) == ((True, False) if eye == "right" else (False, True))


def test_constant_distance_is_a_longitude_shift():
  """On a sphere of radius D the eye's pixel (lon', lat') sees the point (lon, lat) with
  sin lat = sin lat' sqrt(1 - r^2 / D^2) and lon = lon' + s asin(r / (D cos lat)) (invert the
  module docstring's map): the pano depends on the longitude only, so the expected eye is
  that function, shifted."""
  h, dist, r = PANO_H, 2.0, 0.3
  lon = (np.arange(2 * h) + 0.5) / (2 * h) * 2 * np.pi - np.pi
  lat = np.pi / 2 - (np.arange(h) + 0.5) / h * np.pi
  f = lambda lo: np.stack([0.5 + 0.4 * np.sin(lo), 0.5 + 0.3 * np.cos(2 * lo),  # noqa: E731
                           0.5 + 0.2 * np.sin(lo + 1)], -1)
  pano = np.broadcast_to(f(lon)[None], (h, 2 * h, 3))
  abs_lat = np.abs(np.rad2deg(lat))
  for s in (-1, 1):
    out, holes = eye_fn(jnp.asarray(pano, jnp.float32), jnp.full((h, 2 * h), dist, jnp.float32),
                        eye_offset=s * r)
    out, holes = np.asarray(out), np.asarray(holes)
    rho = dist * np.cos(np.arcsin(np.sin(lat) * np.sqrt(1 - r ** 2 / dist ** 2)))
    expected = f(lon[None, :] + s * np.arcsin(np.minimum(r / rho, 1))[:, None])
    # Near the poles (rho < r: |lat| > 81 degrees here) nothing is visible to ODS: holes.
    # Towards them the shift changes fast within a pixel (asin(r / rho), rho -> r) and the
    # warp applies one shift per pixel, so the error grows; the band around the horizon
    # must be exact.
    assert holes[[0, -1]].all() and not holes[abs_lat < 75].any()
    np.testing.assert_allclose(out[abs_lat < 68], expected[abs_lat < 68], atol=1.5e-2)
    np.testing.assert_allclose(out[abs_lat < 45], expected[abs_lat < 45], atol=5e-3)


def test_infinite_distance_has_no_parallax():
  mono = rendered()[0]
  out, holes = eye_fn(jnp.asarray(mono), jnp.full(mono.shape[:2], jnp.inf, jnp.float32),
                      eye_offset=IPD / 2)
  np.testing.assert_allclose(out, mono, atol=1e-5)
  assert not np.asarray(holes).any()


def test_pair_and_over_under_frame_and_bad_input():
  mono, distance, _, _ = rendered()
  frame, holes = jax.jit(ods.ods_over_under_from_mono)(jnp.asarray(mono), jnp.asarray(distance),
                                                       ipd=IPD)
  assert frame.shape == (2 * PANO_H, 2 * PANO_H, 3) and holes.shape == (2 * PANO_H, 2 * PANO_H)
  for k, eye in enumerate(ods.EYES):                  # left eye on top
    one, one_holes = eye_fn(jnp.asarray(mono), jnp.asarray(distance), eye_offset=OFFSETS[eye])
    np.testing.assert_allclose(frame[k * PANO_H:(k + 1) * PANO_H], one, atol=1e-6)
    np.testing.assert_array_equal(holes[k * PANO_H:(k + 1) * PANO_H], one_holes)
  with pytest.raises(ValueError, match="must match"):
    ods.ods_eye(jnp.asarray(mono), jnp.asarray(distance[:, :10]), eye_offset=0.1)
  with pytest.raises(ValueError, match=r"\[H, W, C\]"):
    ods.ods_pair(jnp.asarray(mono)[None], jnp.asarray(distance))
