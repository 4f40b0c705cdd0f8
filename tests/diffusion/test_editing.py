"""Image-to-image (SDEdit) and RePaint inpainting with exact Gaussian denoisers."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.diffusion import DiffusionSpec, img2img, inpaint, samplers
from genjax.diffusion.registry import UnknownNameError

N = 4096
Z_MAX = 5.0


# ---- image-to-image: independent pixels -------------------------------------------------------

H, W, C = 3, 4, 2
MU = np.linspace(-0.5, 0.5, H * W * C).reshape(1, H, W, C)
STD = np.linspace(0.7, 0.3, H * W * C).reshape(1, H, W, C)


def gaussian_denoiser(schedule):
  mu, std = jnp.asarray(MU, jnp.float32), jnp.asarray(STD, jnp.float32)

  def denoise_fn(x, t):
    a, s = schedule.alpha_sigma(t)
    a, s = a[:, None, None, None], s[:, None, None, None]
    return mu + a * std**2 / (a * a * std**2 + s * s) * (x - a * mu)

  return denoise_fn


@pytest.mark.parametrize("sched,strength,sampler,grid", [
    ("cosine", 0.5, "dpmpp_2m", None), ("edm", 0.7, "dpmpp_2m", None),
    ("cosine", 0.6, "heun", None),           # its default: the karras grid
    ("linear", 0.5, "dpmpp_2m", "karras")])
def test_img2img_moments_match_the_noised_then_flowed_init(sched, strength, sampler, grid):
  """From x_k = alpha init + sigma n at t_k (on the sampler's grid) the exact ODE gives
  N(mu + s alpha (init - mu) / v, s^2 sigma^2 / v^2), v^2 = alpha^2 s^2 + sigma^2."""
  spec = DiffusionSpec.create(sched, "v")
  steps = 40
  init = jnp.full((N, H, W, C), 0.9)
  x = jax.jit(functools.partial(img2img, gaussian_denoiser(spec.schedule), init=init, spec=spec,
                                steps=steps, strength=strength, sampler=sampler, grid=grid))(
                                    jax.random.key(0))
  t_k = samplers.sampling_grid(sampler, spec.schedule, steps, grid)[steps - round(strength * steps)]
  a, s = (float(v) for v in spec.schedule.alpha_sigma(t_k))
  v2 = a * a * STD**2 + s * s
  mean, var = MU + STD * a * (0.9 - MU) / np.sqrt(v2), STD**2 * s * s / v2
  x = np.asarray(x, np.float64)
  assert np.max(np.abs((x.mean(0, keepdims=True) - mean) / np.sqrt(var / N))) < Z_MAX
  assert abs(np.mean(x.var(0, keepdims=True) / var) - 1) < 0.03  # 5 SE = 0.023, + ODE error


def test_img2img_strength_zero_and_errors():
  spec = DiffusionSpec.create()
  den = gaussian_denoiser(spec.schedule)
  init = jnp.ones((2, H, W, C))
  np.testing.assert_array_equal(img2img(den, jax.random.key(0), init, spec, steps=10,
                                        strength=0.0), init)
  with pytest.raises(ValueError, match="strength"):
    img2img(den, jax.random.key(0), init, spec, steps=10, strength=1.5)
  with pytest.raises(UnknownNameError, match="sampler"):
    img2img(den, jax.random.key(0), init, spec, steps=10, strength=0.5, sampler="nope")


# ---- inpainting -------------------------------------------------------------------------------

def test_inpaint_independent_pixels_unknown_region_is_the_unconditional_sample():
  """Pixels are independent, so pasting the known ones cannot change the others:
  DDIM inpainting equals plain DDIM sampling there, and the known pixels are exact."""
  spec = DiffusionSpec.create("cosine", "v")
  den = gaussian_denoiser(spec.schedule)
  mask = np.zeros((H, W), np.float32)
  mask[:, :2] = 1.0
  known = jnp.asarray(np.broadcast_to(MU + 0.3, (8, H, W, C)), jnp.float32)
  key = jax.random.key(1)
  out = np.asarray(inpaint(den, key, known, mask, spec, steps=12, sampler="ddim"))
  free = np.asarray(samplers.ddim(den, key, known.shape, spec, steps=12))
  np.testing.assert_array_equal(out[:, :, :2], np.asarray(known)[:, :, :2])
  np.testing.assert_allclose(out[:, :, 2:], free[:, :, 2:], rtol=1e-6, atol=1e-6)


# Correlated Gaussian data: an exponential kernel over a 3 x 4 grid, one channel.
HC, WC = 3, 4
DC = HC * WC
_P = np.stack(np.meshgrid(np.arange(HC), np.arange(WC), indexing="ij"), -1).reshape(DC, 2)
_SD = np.linspace(0.3, 0.6, DC)
COV = _SD[:, None] * _SD[None] * np.exp(-np.linalg.norm(_P[:, None] - _P[None], axis=-1) / 3)
MU_C = np.linspace(-0.3, 0.3, DC)
MASK = np.zeros((HC, WC), np.float32)
MASK[:, :2] = 1.0                      # keep the left half
KEEP = MASK.reshape(-1) > 0
KNOWN = MU_C.copy()
KNOWN[KEEP] += 0.8 * _SD[KEEP]


def correlated_denoiser(schedule):
  lam, u = (jnp.asarray(v, jnp.float32) for v in np.linalg.eigh(COV))
  mu = jnp.asarray(MU_C, jnp.float32)

  def denoise_fn(x, t):
    a, s = schedule.alpha_sigma(t)
    y = (x.reshape(x.shape[0], DC) - a[:, None] * mu[None]) @ u
    g = a[:, None] * lam[None] / (a[:, None] ** 2 * lam[None] + s[:, None] ** 2)
    return (mu[None] + (g * y) @ u.T).reshape(x.shape)

  return denoise_fn


@functools.cache
def _inpaint_samples(resample):
  spec = DiffusionSpec.create("edm", "edm")
  known = jnp.broadcast_to(jnp.asarray(KNOWN, jnp.float32).reshape(1, HC, WC, 1),
                           (N, HC, WC, 1))
  f = jax.jit(functools.partial(inpaint, correlated_denoiser(spec.schedule), known=known,
                                mask=jnp.asarray(MASK), spec=spec, steps=50, resample=resample,
                                sampler="ddpm"))
  return np.asarray(f(jax.random.key(2)), np.float64).reshape(N, DC)


def test_inpaint_keeps_known_pixels_exactly():
  x = _inpaint_samples(10)
  np.testing.assert_array_equal(x[:, KEEP], np.broadcast_to(KNOWN[KEEP].astype(np.float32),
                                                            (N, KEEP.sum())))


def test_repaint_resampling_approaches_the_gaussian_conditional():
  """RePaint is approximate: with 10 resamplings the conditional mean of the unknown
  pixels is reached within 20% of its shift from the prior mean (measured ~10%; without
  resampling ~60% off) and the variance within 30% (DDPM at 50 steps under-disperses)."""
  s_kk = COV[KEEP][:, KEEP]
  s_uk = COV[~KEEP][:, KEEP]
  cond_mean = MU_C[~KEEP] + s_uk @ np.linalg.solve(s_kk, KNOWN[KEEP] - MU_C[KEEP])
  cond_var = np.diag(COV[~KEEP][:, ~KEEP] - s_uk @ np.linalg.solve(s_kk, s_uk.T))
  shift = np.abs(cond_mean - MU_C[~KEEP])
  err = {r: np.abs(_inpaint_samples(r)[:, ~KEEP].mean(0) - cond_mean) / shift for r in (1, 10)}
  assert err[10].max() < 0.2 and err[1].max() > 2 * err[10].max(), err
  var_ratio = _inpaint_samples(10)[:, ~KEEP].var(0) / cond_var
  assert np.all(np.abs(var_ratio - 1) < 0.3), var_ratio


@pytest.mark.parametrize("mask", [np.ones((HC, WC)), np.ones((1, HC, WC, 1)),
                                  np.ones((2, HC, WC, 1))])
def test_mask_shapes_accepted(mask):
  spec = DiffusionSpec.create("edm", "edm")
  known = jnp.zeros((2, HC, WC, 1))
  out = inpaint(correlated_denoiser(spec.schedule), jax.random.key(0), known, mask, spec,
                steps=3, sampler="ddim")
  np.testing.assert_array_equal(out, known)  # everything known


def test_inpaint_errors():
  spec = DiffusionSpec.create("edm", "edm")
  den = correlated_denoiser(spec.schedule)
  known = jnp.zeros((2, HC, WC, 1))
  for bad in (np.ones((WC, HC)), np.ones((HC, WC, 1)), np.ones((3, HC, WC, 1))):
    with pytest.raises(ValueError, match="mask shape"):
      inpaint(den, jax.random.key(0), known, bad, spec, steps=3)
  with pytest.raises(ValueError, match="resample"):
    inpaint(den, jax.random.key(0), known, MASK, spec, steps=3, resample=0)
  for multistep in ("dpmpp_2m", "dpmpp_3m", "dpmpp_2m_sde", "unipc"):
    with pytest.raises(ValueError, match="multistep"):
      inpaint(den, jax.random.key(0), known, MASK, spec, steps=3, resample=2, sampler=multistep)
  with pytest.raises(ValueError, match="steps"):
    inpaint(den, jax.random.key(0), known, MASK, spec, steps=0)
  with pytest.raises(UnknownNameError, match="sampler"):
    inpaint(den, jax.random.key(0), known, MASK, spec, steps=3, sampler="nope")
