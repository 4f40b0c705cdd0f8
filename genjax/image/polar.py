"""The poles of equirectangular images: what a row near a pole can hold in longitude.

Every pixel of an equirectangular row at colatitude theta lies on a circle of radius
sin(theta) (on the unit sphere), so near a pole the grid packs many samples into a tiny
circle, and the row's longitude harmonics must die out there: a smooth function on the
sphere has its harmonic of order m vanish like sin(theta)^m at the pole (the associated
Legendre functions P_l^m carry the factor sin(theta)^m), and its value at the pole itself
is one number. Two consequences, one function each:

- `polar_filter`: the longitude harmonics a row can hold at the grid's resolution. With
  rows pi / H apart, a row at colatitude theta has room for 2 H sin(theta) samples at
  that spacing, so harmonics above m = H sin(theta) are noise the grid cannot place
  (the "polar filter" of finite-difference weather models on latitude-longitude grids,
  e.g. Arakawa and Lamb 1977). A generator left free to put them there paints
  pinwheels around the poles; the panorama sampler projects its estimate with this. The
  pole rows' own harmonics (m = 1 at most on a 2:1 grid) follow the next row's as
  sin(theta)^m, or a generator paints a blob there.
- `pole_cap_factors`: interpolation between a pole and the nearest row centre, harmonic m
  scaled by (sin(theta) / sin(theta_0))^m, so the pole row is one colour
  (genjax.apps.vr.photo_placement.upsample_equirect).

Conventions: genjax.image.sampling (row 0 is the north pole side, width = 2 pi of
longitude).
"""

import math

import jax
import jax.numpy as jnp


def row_colatitudes(height: int) -> jax.Array:
  """Colatitude in radians of each row centre of an equirectangular image: float32 [height]."""
  return (jnp.arange(height, dtype=jnp.float32) + 0.5) * (math.pi / height)


def harmonic_limits(height: int) -> jax.Array:
  """The highest longitude harmonic each row holds at the grid's resolution, H sin(theta):
  float32 [height] (the equator's is H, the Nyquist order of a 2:1 image)."""
  return height * jnp.sin(row_colatitudes(height))


def polar_filter(x: jax.Array) -> jax.Array:
  """Keeps each row's longitude harmonics m <= H sin(theta), drops the rest (a projection:
  filtering twice changes nothing).

  Args:
    x: [..., H, W, C] equirectangular images (W even; any aspect: the limit is per row of
      H, the same for every width at least 2 H).
  Returns:
    [..., H, W, C] float32, equal to x on rows near the equator (where no harmonic below
    W / 2 is cut), each pole-side row reduced to the harmonics it can hold; on the two pole
    rows (H >= 4) those of order m >= 1 are the next row's times
    (sin(theta_0) / sin(theta_1))^m, so a pole row keeps its mean and its gradient through
    the pole is the one its neighbour implies (still a projection: applied twice, the same).
  """
  h, w = x.shape[-3], x.shape[-2]
  m = jnp.arange(w // 2 + 1, dtype=jnp.float32)
  keep = (m[None, :] <= harmonic_limits(h)[:, None]).astype(jnp.float32)  # [H, W/2+1]
  lead = (1,) * (x.ndim - 3)
  spectrum = jnp.fft.rfft(x.astype(jnp.float32), axis=-2) * keep.reshape(lead + keep.shape
                                                                          + (1,))
  if h >= 4:
    # The pole rows' harmonics m >= 1 (m = 1 on a 2:1 grid: its gradient through the pole)
    # follow the next row's as sin(theta)^m does. Left free, the model (whose loss weighs
    # the pole row least) put 4-12 times the m = 1 its neighbour implies there: a colour blob around
    # each pole, peaking one row-centre away from it, as one looks up or down in the viewer.
    theta = row_colatitudes(h)
    f = (jnp.power(jnp.sin(theta[0]) / jnp.sin(theta[1]), m) * keep[0]).reshape(lead + (-1, 1))
    m0 = (m == 0).reshape(lead + (-1, 1))
    top = jnp.where(m0, spectrum[..., 0, :, :], spectrum[..., 1, :, :] * f)
    bottom = jnp.where(m0, spectrum[..., -1, :, :], spectrum[..., -2, :, :] * f)
    spectrum = spectrum.at[..., 0, :, :].set(top).at[..., -1, :, :].set(bottom)
  return jnp.fft.irfft(spectrum, n=w, axis=-2)


def pole_cap_factors(colatitudes: jax.Array, theta0: float, n_harmonics: int) -> jax.Array:
  """(sin(theta) / sin(theta0))^m for rows between a pole and the row centre at theta0:
  float32 [len(colatitudes), n_harmonics] (m = 0 .. n_harmonics - 1; 1 for m = 0, so the
  pole row keeps its mean and loses every other harmonic)."""
  ratio = jnp.clip(jnp.sin(colatitudes) / math.sin(theta0), 0.0, 1.0)
  m = jnp.arange(n_harmonics, dtype=jnp.float32)
  return jnp.power(ratio[:, None], m[None, :])
