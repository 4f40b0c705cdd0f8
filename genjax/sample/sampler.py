"""make_sampler: a trained model -> one pure sampling function, the whole loop one XLA program."""

import ast
import dataclasses
import inspect

import jax
import jax.numpy as jnp

from genjax import diffusion

# The CLI spelling of DPM-Solver++(2M) besides the registry's.
_ALIASES = {"dpm++2m": "dpmpp_2m", "dpm++": "dpmpp_2m"}
SAMPLER_NAMES = tuple(diffusion.SAMPLERS) + tuple(_ALIASES)


def _sampler_name(name: str) -> str:
  name = _ALIASES.get(name, name)
  diffusion.get_sampler(name)  # raises, listing the valid names
  return name


def check_sampler_options(sampler: str, options: dict, spec=None) -> dict:
  """`options` if sampler `sampler` takes every one of them by name, else ValueError naming
  the option and the sampler's options. With `spec`, the values too: the sampler is traced
  once, abstractly, on a 1-pixel stand-in denoiser, so a bad value (unipc order=7) is named
  before any model runs."""
  fn = diffusion.get_sampler(_sampler_name(sampler))
  valid = [n for n, p in inspect.signature(fn).parameters.items()
           if p.kind is p.KEYWORD_ONLY and n != "steps"]
  for name in options:
    if name not in valid:
      raise ValueError(f"sampler {sampler!r} has no option {name!r}; its options: "
                       f"{', '.join(valid) or 'none'}")
  if spec is not None and options:
    given = ", ".join(f"{k}={v!r}" for k, v in options.items())
    try:
      jax.eval_shape(lambda key: fn(lambda x, t: jnp.zeros_like(x), key, (1, 1, 1, 1), spec,
                                    steps=2, **options), jax.random.PRNGKey(0))
    except (ValueError, TypeError) as e:
      raise ValueError(f"sampler {sampler!r} option {given}: {e}") from None
  return dict(options)


def parse_sampler_options(items) -> dict:
  """["order=3", "variant=bh1", "corrector=False"] -> {"order": 3, "variant": "bh1", ...}:
  values as Python literals, else strings. A malformed item is a ValueError naming it."""
  out = {}
  for item in items or ():
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
      raise ValueError(f"sampler option {item!r} is not KEY=VALUE (e.g. order=3)")
    try:
      out[key.strip()] = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
      out[key.strip()] = text.strip()
  return out


def _check_steps(steps) -> int:
  if not isinstance(steps, int) or steps < 1:
    raise ValueError(f"steps must be a whole number >= 1, got {steps!r}")
  return steps


def _check_guidance(model, guidance) -> None:
  """Classifier-free guidance needs a class-conditional model: any other scale than 1 on an
  unconditional one would be accepted and change nothing, so it is refused."""
  if guidance != 1.0 and not _Conditioning.of(model).num_classes:
    raise ValueError(f"guidance {guidance:g} has no effect: the model is unconditional "
                     f"(num_classes = 0); classifier-free guidance needs a class-conditional "
                     f"model (leave the guidance scale at 1)")


def _to_data_range(images: jax.Array) -> jax.Array:
  # The last solver step can overshoot the data range even with clip_x0 (the update mixes
  # x_t in); the documented contract is [-1, 1].
  return jnp.clip(images, -1.0, 1.0)


@dataclasses.dataclass(frozen=True)
class _Conditioning:
  num_classes: int
  cond_channels: int

  @classmethod
  def of(cls, model):
    cfg = getattr(model, "config", None)
    return cls(getattr(cfg, "num_classes", 0), getattr(cfg, "cond_channels", 0))


def _denoiser(model, params, spec, *, labels, cond, guidance, guidance_interval, clip_x0,
              batch: int):
  """x0_hat(x_t, t) of `model`, with classifier-free guidance when labels are given."""
  c = _Conditioning.of(model)

  def net_with(y):
    def net(x_in, c_noise):
      # A mask-conditioned model given no cond sees an empty mask: unconditional samples.
      cond_in = cond
      if cond_in is None and c.cond_channels:
        cond_in = jnp.zeros((*x_in.shape[:-1], c.cond_channels), x_in.dtype)
      return model.apply({"params": params}, x_in, c_noise, y=y, cond=cond_in, train=False)
    return diffusion.make_denoiser(net, spec, clip_x0=clip_x0)

  if not c.num_classes:
    if labels is not None:
      raise ValueError("labels given, but the model is not class-conditional (num_classes = 0)")
    return net_with(None)
  null = jnp.full((batch,), c.num_classes, jnp.int32)
  if labels is None:
    if guidance != 1.0:
      raise ValueError(f"guidance {guidance:g} needs class labels (--class): without them the "
                       f"samples are unconditional and guidance changes nothing")
    return net_with(null)
  labels = jnp.broadcast_to(jnp.asarray(labels, jnp.int32), (batch,))
  return diffusion.guided(net_with(labels), net_with(null), guidance, interval=guidance_interval)


def per_sample_keys(key: jax.Array, start: int, num: int) -> jax.Array:
  """Keys of samples start .. start + num - 1: fold_in(key, i), whatever the batching."""
  return jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(start, start + num))


def make_sampler(model, spec: diffusion.DiffusionSpec, *, image_shape: tuple[int, int],
                 sampler: str = "dpm++2m", steps: int = 25, guidance: float = 1.0,
                 guidance_interval=None, clip_x0: float | None = None, channels: int = 3,
                 **sampler_options):
  """Returns `sample_fn(params, key, num, *, labels=None, cond=None) -> [num, H, W, C]`.

  A pure function: jit it (`static_argnums=2` for num), vmap it, call it inside your own
  jitted code, or shard its output over a mesh. Sample i of a call is drawn from
  fold_in(key, i), so it does not depend on num; pass a [num] array of keys instead of
  one key to choose them yourself (see `per_sample_keys`). `num` may also be the start
  noise itself, float32 [num, H, W, C] standard normal (then nothing is static).

  Args:
    model: a Flax module called as model.apply({"params": p}, x, c_noise, y=, cond=, train=False).
    spec: the DiffusionSpec the model was trained with.
    image_shape: (height, width) in pixels.
    sampler: a diffusion.SAMPLERS name (ddpm, ddim, euler, heun, dpmpp_2m (dpm++2m),
      dpmpp_3m, dpmpp_2m_sde, unipc); sampler_options go to it (e.g. order=3 for unipc).
    guidance: classifier-free guidance scale for class-conditional models (1 = none).
    guidance_interval: (t_lo, t_hi) in schedule time where guidance applies.
    clip_x0: clip the denoised estimate to [-clip_x0, clip_x0] at every step.
  The returned images are float32 in the data range [-1, 1] (clipped to it). A guidance
  other than 1 on a model without classes is a ValueError.
  """
  name = _sampler_name(sampler)
  _check_steps(steps)
  _check_guidance(model, guidance)
  check_sampler_options(name, sampler_options, spec)
  h, w = image_shape

  def sample_fn(params, key, num, *, labels=None, cond=None):
    x_T = (num, h, w, channels) if isinstance(num, int) else num
    batch = x_T[0] if isinstance(num, int) else num.shape[0]
    denoise = _denoiser(model, params, spec, labels=labels, cond=cond, guidance=guidance,
                        guidance_interval=guidance_interval, clip_x0=clip_x0, batch=batch)
    return _to_data_range(diffusion.get_sampler(name)(denoise, key, x_T, spec, steps=steps,
                                                      **sampler_options))
  return sample_fn


def make_img2img(model, spec, *, strength: float, sampler: str = "ddim", steps: int = 50,
                 guidance: float = 1.0, clip_x0: float | None = None, **sampler_options):
  """`fn(params, key, init [B, H, W, C] in [-1, 1], *, labels=None) -> [B, H, W, C]` (SDEdit)."""
  name = _sampler_name(sampler)
  _check_steps(steps)
  _check_guidance(model, guidance)
  if not 0.0 <= strength <= 1.0:
    raise ValueError(f"strength must be in [0, 1], got {strength}")

  def fn(params, key, init, *, labels=None):
    denoise = _denoiser(model, params, spec, labels=labels, cond=None, guidance=guidance,
                        guidance_interval=None, clip_x0=clip_x0, batch=init.shape[0])
    return _to_data_range(diffusion.img2img(denoise, key, init, spec, steps=steps,
                                            strength=strength, sampler=name, **sampler_options))
  return fn


def make_inpainter(model, spec, *, steps: int = 50, resample: int = 4, sampler: str = "ddpm",
                   guidance: float = 1.0, clip_x0: float | None = None, **sampler_options):
  """`fn(params, key, known [B, H, W, C], keep [B, H, W, 1], *, labels=None) -> [B, H, W, C]`.

  keep = 1 marks pixels to preserve. A model trained with 4 mask channels
  (model.cond_channels == 4) is given the kept pixels and the mask and sampled
  directly; any other model is inpainted with RePaint resampling.
  """
  name = _sampler_name(sampler)
  _check_steps(steps)
  _check_guidance(model, guidance)
  c = _Conditioning.of(model)

  def fn(params, key, known, keep, *, labels=None):
    if keep.shape[:3] != known.shape[:3]:
      raise ValueError(f"mask shape {keep.shape} does not match the image shape {known.shape}")
    keep = keep.astype(jnp.float32)
    cond = jnp.concatenate([known * keep, keep], axis=-1) if c.cond_channels == 4 else None
    denoise = _denoiser(model, params, spec, labels=labels, cond=cond, guidance=guidance,
                        guidance_interval=None, clip_x0=clip_x0, batch=known.shape[0])
    if cond is not None:
      out = diffusion.get_sampler(name)(denoise, key, known.shape, spec, steps=steps,
                                        **sampler_options)
      return keep * known + (1 - keep) * _to_data_range(out)
    return _to_data_range(diffusion.inpaint(denoise, key, known, keep, spec, steps=steps,
                                            resample=resample, sampler=name, **sampler_options))
  return fn
