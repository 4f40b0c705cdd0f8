"""The "distill" objective: a few-step student of a trained run (`genjax distill`).

Method: progressive distillation (Salimans & Ho 2022, "Progressive Distillation for Fast
Sampling of Diffusion Models", Algorithm 2), one round per command. The student starts as
the teacher and learns, at each time t_i of its own N-step DDIM grid, the x0 prediction
whose single deterministic DDIM step t_i -> t_{i+1} lands where `teacher_substeps` DDIM
steps of the teacher land (the paper's 2, generalised to K; chaining commands, 50 -> 8 -> 4,
is the paper's halving schedule). Why this one and not consistency distillation:

- the target is a deterministic function of (x0, noise, t), so a step is exact and
  bitwise reproducible, and the student is an ordinary denoiser of the same network and
  parameterization, sampled by the engine's own DDIM at N steps: `genjax sample`,
  `load_sampler`, `export` and `vr` need nothing new (no sampler, no boundary-condition
  reparameterization, no target network besides the EMA the loop already keeps);
- it trains only at the N times the sampler visits, so little training goes a long way
  on a CPU. It gives 1-step students too (N = 1), of lower quality than at 4 steps.

Per example (x0 a training image, eps ~ N(0, I), i uniform in 0..N-1, t = grid[i],
s = grid[i + 1]; x_t = alpha_t x0 + sigma_t eps, pure noise sigma_t eps at i = 0 as the
sampler starts):
  x_s'' = K teacher DDIM steps from (x_t, t) to s, at times linear in t, x0 clipped to [-1, 1]
  x0_target = (x_s'' - (sigma_s / sigma_t) x_t) / (alpha_s - (sigma_s / sigma_t) alpha_t)
  loss = max(alpha_t^2 / sigma_t^2, 1) * mean((x0_hat_student(x_t, t) - x0_target)^2)
(the paper's "truncated SNR" weighting). Labels and masks get the same dropout as the
diffusion loss, teacher and student the same ones (guidance 1). The teacher is the
train step's `frozen` argument (genjax.train.frozen); latitude weighting is not applied.
"""

import jax
import jax.numpy as jnp

from genjax import diffusion
from genjax.diffusion import samplers
from genjax.diffusion.objectives import expand
from genjax.train import conditioning

# The sampler the student is trained for: its grid is the one the loss trains on.
SAMPLER = "ddim"


def student_grid(spec, steps: int) -> jax.Array:
  """The [steps + 1] times of the student's sampler (deterministic DDIM, the schedule's grid)."""
  return samplers.sampling_grid(SAMPLER, spec.schedule, steps)


def teacher_ddim(denoise_fn, x_t: jax.Array, t: jax.Array, s: jax.Array, spec,
                 substeps: int) -> jax.Array:
  """`substeps` deterministic DDIM steps of `denoise_fn` from x_t [B, ...] at t [B] to s [B]
  (times linear in t between them): x_s [B, ...] float32. One lax.fori_loop."""
  def body(j, x):
    t_j = t + (s - t) * (j / substeps)
    t_n = t + (s - t) * ((j + 1) / substeps)
    a_j, s_j = spec.schedule.alpha_sigma(t_j)
    a_n, s_n = spec.schedule.alpha_sigma(t_n)
    x0_hat = denoise_fn(x, t_j)
    eps_hat = (x - expand(a_j, x) * x0_hat) / expand(s_j, x)
    return expand(a_n, x) * x0_hat + expand(s_n, x) * eps_hat
  return jax.lax.fori_loop(0, substeps, body, jnp.asarray(x_t, jnp.float32))


def x0_target(x_t, x_s, t, s, spec) -> jax.Array:
  """The x0 whose DDIM step from (x_t, t) reaches x_s at s: [B, ...] float32."""
  a_t, s_t = spec.schedule.alpha_sigma(t)
  a_s, s_s = spec.schedule.alpha_sigma(s)
  ratio = s_s / s_t
  return (x_s - expand(ratio, x_t) * x_t) / expand(a_s - ratio * a_t, x_t)


def loss(params, batch, key, *, model, spec, cfg, frozen):
  """Mean distillation loss of one (micro-)batch (module docstring). batch["image"]:
  [B, H, W, 3] in [-1, 1]; frozen: the teacher's params (same model); cfg: a StepConfig
  with distill_steps (N) and distill_substeps (K)."""
  x0 = batch["image"].astype(jnp.float32)
  b, h, w, _ = x0.shape
  k_drop, k_label, k_i, k_eps, k_mask = jax.random.split(key, 5)
  y = cond = None
  if cfg.num_classes:
    null = jax.random.bernoulli(k_label, cfg.label_dropout, (b,))
    y = jnp.where(null, cfg.num_classes, batch["label"])
  if cfg.cond_channels:
    cond = conditioning.mask_condition(x0, conditioning.random_keep_masks(k_mask, b, h, w))

  grid = student_grid(spec, cfg.distill_steps)
  i = jax.random.randint(k_i, (b,), 0, cfg.distill_steps)
  t, s = grid[i], grid[i + 1]
  eps = jax.random.normal(k_eps, x0.shape, jnp.float32)
  a_t, s_t = spec.schedule.alpha_sigma(t)
  x_t = expand(jnp.where(i == 0, 0.0, a_t), x0) * x0 + expand(s_t, x0) * eps

  def teacher_net(x_in, c_noise):
    return model.apply({"params": frozen}, x_in, c_noise, y=y, cond=cond, train=False)
  teacher = diffusion.make_denoiser(teacher_net, spec, clip_x0=1.0)
  x_s = teacher_ddim(teacher, x_t, t, s, spec, cfg.distill_substeps)
  target = jax.lax.stop_gradient(x0_target(x_t, x_s, t, s, spec))

  def student_net(x_in, c_noise):
    return model.apply({"params": params}, x_in, c_noise, y=y, cond=cond, train=True,
                       rngs={"dropout": k_drop})
  x0_hat, _ = diffusion.denoise(student_net, x_t, t, spec)
  weight = jnp.maximum(jnp.square(a_t / s_t), 1.0)
  return jnp.mean(weight * jnp.mean(jnp.square(x0_hat - target), axis=(1, 2, 3)))
