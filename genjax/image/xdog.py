"""XDoG ink lines (Winnemöller, Kyprianidis & Olsen, "XDoG: An eXtended difference-of-
Gaussians compendium", Computers & Graphics 2012) on a separable Gaussian blur.

  S = (1 + p) G_sigma * I - p G_{k sigma} * I          (sharpened image)
  T = 1 if S >= eps else 1 + tanh(phi (S - eps))        (soft threshold; 1 = paper)

With tone = 1 this is the paper's operator: dark flat areas (I < eps) fill with ink.
With tone = 0 the flat term G_sigma * I is replaced by white paper, S = 1 + p (G_sigma -
G_{k sigma}) * I, so only edges draw (the dark side of each edge), whatever the grey
level: the form genjax's comic renderer uses, since its fills come from elsewhere.

sigma is a runtime value (per image): the kernel has a static support of
ceil(3 k max_sigma) pixels each side and weights computed from the traced sigma, so one
compiled program serves every line weight up to max_sigma.
"""

import functools
import math

import jax
import jax.numpy as jnp

from genjax.image.box_filter import as_bhwc, per_image


def _blur_axis(x: jax.Array, sigma: jax.Array, support: int, axis: int) -> jax.Array:
  """1-D Gaussian along axis with per-image sigma [B], normalized over in-image taps."""
  n = x.shape[axis]
  taps = jnp.arange(-support, support + 1, dtype=jnp.float32)
  w = jnp.exp(-0.5 * jnp.square(taps[None, :] / sigma[:, None]))  # [B, 2 S + 1]
  w = w / jnp.sum(w, axis=1, keepdims=True)
  pad = [(0, 0)] * 4
  pad[axis] = (support, support)
  xp = jnp.pad(x, pad)
  valid = jnp.pad(jnp.ones((n,), x.dtype), (support, support))
  shape = [x.shape[0], 1, 1, 1]
  shape[axis] = n
  out = jnp.zeros_like(x)
  norm = jnp.zeros((x.shape[0], n), x.dtype)
  # A sum of shifted slices: weights differ per image, which a shared conv kernel cannot do;
  # XLA fuses the 2 S + 1 terms into one pass.
  for t in range(2 * support + 1):
    out = out + as_bhwc(w[:, t]) * jax.lax.slice_in_dim(xp, t, t + n, axis=axis)
    norm = norm + w[:, t, None] * valid[None, t:t + n]
  # Dividing by the weight that fell inside the image keeps flat images flat at borders.
  return out / norm.reshape(shape)


def gaussian_support(max_sigma: float) -> int:
  """Taps each side needed for sigma up to max_sigma (3 sigma)."""
  return max(1, math.ceil(3.0 * max_sigma))


@functools.partial(jax.jit, static_argnames=("max_sigma",))
def gaussian_blur(x: jax.Array, sigma, *, max_sigma: float = 8.0) -> jax.Array:
  """Separable Gaussian blur, truncated at 3 max_sigma, renormalized at the borders.

  Args:
    x: [B, H, W, C] float.
    sigma: float scalar or [B], standard deviation in pixels, clipped to (0, max_sigma].
    max_sigma: static bound that fixes the kernel support.
  Returns:
    [B, H, W, C] float32.
  """
  if x.ndim != 4:
    raise ValueError(f"gaussian_blur expects [B, H, W, C], got shape {x.shape}")
  sigma = jnp.clip(per_image(sigma, x.shape[0]), 1e-3, max_sigma)
  support = gaussian_support(max_sigma)
  return _blur_axis(_blur_axis(x, sigma, support, 1), sigma, support, 2)


@functools.partial(jax.jit, static_argnames=("k", "max_sigma"))
def xdog(image: jax.Array, sigma, *, k: float = 1.6, p=20.0, epsilon=0.5, phi=10.0, tone=1.0,
         max_sigma: float = 4.0) -> jax.Array:
  """XDoG of a grey image: 1 = white paper, 0 = full ink.

  Args:
    image: [B, H, W, 1] float grey level in [0, 1] (e.g. color.lightness).
    sigma: scalar or [B], the inner Gaussian in pixels; line width grows with it.
    k: ratio of the outer Gaussian to sigma (1.6 in the paper), static.
    p: sharpening strength (the paper's p; tau = p / (1 + p)).
    epsilon: threshold level on S.
    phi: sharpness of the tanh ramp below epsilon (large -> hard lines).
    tone: 1 = the paper's S (dark areas fill), 0 = edges only (see module docstring).
    max_sigma: static bound on sigma (clipped to it); the outer support is 3 k max_sigma.
  sigma, p, epsilon, phi and tone are runtime values (scalars or [B]).
  Returns:
    [B, H, W, 1] float32 in [0, 1].
  """
  if image.ndim != 4 or image.shape[-1] != 1:
    raise ValueError(f"xdog expects a grey image [B, H, W, 1], got shape {image.shape}")
  b = image.shape[0]
  sigma = jnp.clip(per_image(sigma, b), 1e-3, max_sigma)
  p, eps, phi, tone = (as_bhwc(per_image(v, b)) for v in (p, epsilon, phi, tone))
  g1 = gaussian_blur(image, sigma, max_sigma=max_sigma)
  g2 = gaussian_blur(image, k * sigma, max_sigma=k * max_sigma)
  s = tone * g1 + (1.0 - tone) + p * (g1 - g2)
  return jnp.where(s >= eps, 1.0, 1.0 + jnp.tanh(phi * (s - eps)))
