"""PSNR and SSIM for paired images (reconstruction, img2img, the comic translator).

Both come from dm-pix (Wang et al. 2004 SSIM with a Gaussian window and 'valid' filtering);
this module adds the per-image batching, the value range and clear shape errors.
"""

import functools
import math

import dm_pix
import jax
import jax.numpy as jnp


def _check_pair(x, y, what):
  x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
  if x.shape != y.shape or x.ndim not in (3, 4):
    raise ValueError(f"{what}: images must have equal shapes [B, H, W, C] or [H, W, C], got "
                     f"{x.shape} and {y.shape}")
  return (x[None], y[None]) if x.ndim == 3 else (x, y)


@jax.jit
def _psnr(x, y, data_range):
  # dm_pix.psnr assumes a value range of 1.
  return dm_pix.psnr(x / data_range, y / data_range)


def psnr(x, y, *, data_range: float) -> jax.Array:
  """Peak signal-to-noise ratio in dB, per image: 10 log10(data_range^2 / MSE).

  x, y: [B, H, W, C] (or [H, W, C]); data_range: max - min of the value range (2.0 for
  [-1, 1], 255.0 for uint8). -> [B] float32 (inf where x == y).
  """
  x, y = _check_pair(x, y, "psnr")
  return _psnr(x, y, jnp.float32(data_range))


@functools.partial(jax.jit, static_argnames=("win_size", "sigma", "k1", "k2"))
def _ssim(x, y, data_range, *, win_size, sigma, k1, k2):
  return dm_pix.ssim(x, y, max_val=data_range, filter_size=win_size, filter_sigma=sigma,
                     k1=k1, k2=k2)


def ssim(x, y, *, data_range: float, win_size: int = 11, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03) -> jax.Array:
  """Structural similarity (Wang et al. 2004), per image: mean of the SSIM map over the
  valid window positions and the channels.

  x, y: [B, H, W, C] (or [H, W, C]), H, W >= win_size; data_range as in psnr.
  -> [B] float32 in [-1, 1]. Gaussian window 11 x 11, sigma 1.5, K1 = 0.01, K2 = 0.03 and
  'valid' filtering as in the paper's reference code (which equals scikit-image with
  gaussian_weights=True, use_sample_covariance=False); channels are treated separately
  and averaged. No automatic downsampling of large images (the MATLAB script's step).
  """
  x, y = _check_pair(x, y, "ssim")
  if min(x.shape[1:3]) < win_size:
    raise ValueError(f"ssim: images {x.shape[1]}x{x.shape[2]} are smaller than the "
                     f"{win_size}x{win_size} window")
  if not (win_size % 2 == 1 and sigma > 0 and math.isfinite(sigma)):
    raise ValueError(f"ssim: need an odd win_size and sigma > 0, got {win_size}, {sigma}")
  return _ssim(x, y, jnp.float32(data_range), win_size=win_size, sigma=float(sigma),
               k1=float(k1), k2=float(k2))
