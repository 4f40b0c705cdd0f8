"""Colour spaces: sRGB <-> linear sRGB <-> CIE XYZ (D65) <-> CIELAB, OKLab, luminance.

All functions are jitted and act on the last axis ([..., 3], any leading shape) and are pure JAX.
sRGB follows IEC 61966-2-1; CIELAB uses the D65 white of sRGB, L* in [0, 100].
OKLab (Ottosson 2020, https://bottosson.github.io/posts/oklab/) is the space genjax
uses for colour distances (k-means quantization): it is more perceptually uniform in
hue than CIELAB, and L in [0, 1] is on the same scale as a and b (about +-0.4).

Channel mixing is written as einsum at HIGHEST precision so TPUs do not round the
matrices to bfloat16. Non-smooth points (the sRGB and CIELAB linear toes, cube roots
at 0) are guarded so gradients stay finite: these functions are also used in losses.
"""

import jax
import jax.numpy as jnp
import numpy as np

_HIGHEST = jax.lax.Precision.HIGHEST

# Linear sRGB -> XYZ (D65), IEC 61966-2-1.
_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)
_D65_WHITE = np.array([0.95047, 1.0, 1.08883])  # XYZ of the sRGB white, Y = 1
_DELTA = 6.0 / 29.0

# OKLab: linear sRGB -> LMS, cube root, -> Lab (Ottosson's published matrices).
_RGB_TO_LMS = np.array([[0.4122214708, 0.5363325363, 0.0514459929],
                        [0.2119034982, 0.6806995451, 0.1073969566],
                        [0.0883024619, 0.2817188376, 0.6299787005]])
_LMS_TO_OKLAB = np.array([[0.2104542553, 0.7936177850, -0.0040720468],
                          [1.9779984951, -2.4285922050, 0.4505937099],
                          [0.0259040371, 0.7827717662, -0.8086757660]])
_OKLAB_TO_LMS = np.linalg.inv(_LMS_TO_OKLAB)
_LMS_TO_RGB = np.linalg.inv(_RGB_TO_LMS)


def _mix(x: jax.Array, m: np.ndarray) -> jax.Array:
  """[..., 3] @ m.T in float32 at full precision."""
  return jnp.einsum("...j,ij->...i", x, jnp.asarray(m, x.dtype), precision=_HIGHEST)


def _per_channel(v: np.ndarray, x: jax.Array) -> jax.Array:
  """[3] constants shaped [1, ..., 1, 3] to broadcast against x without rank promotion."""
  return jnp.asarray(v, x.dtype).reshape((1,) * (x.ndim - 1) + (-1,))


def _float(x) -> jax.Array:
  x = jnp.asarray(x)
  return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.float32)


@jax.jit
def srgb_to_linear(x: jax.Array) -> jax.Array:
  """sRGB-encoded [..., C] in [0, 1] -> linear light (any channel count)."""
  x = _float(x)
  curve = jnp.power((jnp.maximum(x, 0.04045) + 0.055) / 1.055, 2.4)
  return jnp.where(x <= 0.04045, x / 12.92, curve)


@jax.jit
def linear_to_srgb(x: jax.Array) -> jax.Array:
  """Linear light [..., C] -> sRGB encoding (not clipped; in [0, 1] for inputs in [0, 1])."""
  x = _float(x)
  curve = 1.055 * jnp.power(jnp.maximum(x, 0.0031308), 1.0 / 2.4) - 0.055
  return jnp.where(x <= 0.0031308, x * 12.92, curve)


@jax.jit
def linear_to_xyz(rgb: jax.Array) -> jax.Array:
  """Linear sRGB [..., 3] -> CIE XYZ [..., 3] (D65, Y = 1 for white)."""
  return _mix(_float(rgb), _RGB_TO_XYZ)


@jax.jit
def xyz_to_linear(xyz: jax.Array) -> jax.Array:
  return _mix(_float(xyz), _XYZ_TO_RGB)


def _lab_f(t):
  return jnp.where(t > _DELTA ** 3, jnp.cbrt(jnp.maximum(t, _DELTA ** 3)),
                   t / (3 * _DELTA ** 2) + 4.0 / 29.0)


def _lab_f_inv(t):
  return jnp.where(t > _DELTA, t ** 3, 3 * _DELTA ** 2 * (t - 4.0 / 29.0))


@jax.jit
def xyz_to_lab(xyz: jax.Array) -> jax.Array:
  """CIE XYZ [..., 3] -> CIELAB [..., 3] (L* in [0, 100]) relative to D65."""
  xyz = _float(xyz)
  f = _lab_f(xyz / _per_channel(_D65_WHITE, xyz))
  fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
  return jnp.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


@jax.jit
def lab_to_xyz(lab: jax.Array) -> jax.Array:
  lab = _float(lab)
  fy = (lab[..., 0] + 16.0) / 116.0
  f = jnp.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
  return _lab_f_inv(f) * _per_channel(_D65_WHITE, f)


@jax.jit
def srgb_to_lab(x: jax.Array) -> jax.Array:
  """sRGB [..., 3] in [0, 1] -> CIELAB (D65) [..., 3]."""
  return xyz_to_lab(linear_to_xyz(srgb_to_linear(x)))


@jax.jit
def lab_to_srgb(lab: jax.Array) -> jax.Array:
  """CIELAB (D65) [..., 3] -> sRGB [..., 3] (not clipped to the gamut)."""
  return linear_to_srgb(xyz_to_linear(lab_to_xyz(lab)))


def _cbrt(x):
  """Cube root with a linear toe below 1e-6 (continuous there): finite gradient at 0."""
  toe = 1e-6
  return jnp.where(jnp.abs(x) < toe, x * toe ** (-2.0 / 3.0),
                   jnp.cbrt(jnp.where(jnp.abs(x) < toe, toe, x)))


@jax.jit
def linear_to_oklab(rgb: jax.Array) -> jax.Array:
  """Linear sRGB [..., 3] -> OKLab [..., 3] (L in [0, 1] for in-gamut colours)."""
  return _mix(_cbrt(_mix(_float(rgb), _RGB_TO_LMS)), _LMS_TO_OKLAB)


@jax.jit
def oklab_to_linear(lab: jax.Array) -> jax.Array:
  return _mix(_mix(_float(lab), _OKLAB_TO_LMS) ** 3, _LMS_TO_RGB)


@jax.jit
def srgb_to_oklab(x: jax.Array) -> jax.Array:
  """sRGB [..., 3] in [0, 1] -> OKLab [..., 3]."""
  return linear_to_oklab(srgb_to_linear(x))


@jax.jit
def oklab_to_srgb(lab: jax.Array) -> jax.Array:
  """OKLab [..., 3] -> sRGB [..., 3] (not clipped to the gamut)."""
  return linear_to_srgb(oklab_to_linear(lab))


@jax.jit
def luminance(x: jax.Array) -> jax.Array:
  """sRGB [..., 3] -> relative luminance Y [..., 1] in [0, 1] (linear light)."""
  return linear_to_xyz(srgb_to_linear(x))[..., 1:2]


@jax.jit
def lightness(x: jax.Array) -> jax.Array:
  """sRGB [..., 3] -> CIE lightness L* / 100 [..., 1] in [0, 1] (perceptual grey level).

  The tone scale genjax uses for ink and screentone decisions: equal steps look equal.
  """
  return (116.0 * _lab_f(luminance(x)) - 16.0) / 100.0
