"""The train step: a pure function (state, batch) -> (state, metrics).

Bind the static arguments with functools.partial and jit it once, where it is
called, with shardings and `donate_argnums=0` (see `genjax.train.loop`).
"""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import optax

from genjax import diffusion
from genjax.train import conditioning, depth, distill
from genjax.train.state import TrainState


@dataclasses.dataclass(frozen=True)
class StepConfig:
  """The static, hashable part of the train step."""
  num_classes: int = 0
  cond_channels: int = 0
  label_dropout: float = 0.1
  ema_decay: float = 0.9999
  grad_accum_steps: int = 1
  latitude_weighting: bool = False
  objective: str = "diffusion"       # a key of LOSSES
  distill_steps: int = 0             # objective "distill": the student's steps, teacher substeps
  distill_substeps: int = 0

  @classmethod
  def from_config(cls, config) -> "StepConfig":
    return cls(num_classes=config.model.num_classes, cond_channels=config.model.cond_channels,
               label_dropout=config.train.label_dropout, ema_decay=config.train.ema_decay,
               grad_accum_steps=config.train.grad_accum_steps,
               latitude_weighting=config.train.latitude_weighting,
               objective=config.train.get("objective", "diffusion"),
               distill_steps=int(config.distill.steps) if "distill" in config else 0,
               distill_substeps=(int(config.distill.teacher_substeps) if "distill" in config
                                 else 0))


def latitude_weights(height: int) -> jax.Array:
  """cos(latitude) of each row centre of an equirectangular image: float32 [height].

  Row i spans latitudes 90 - 180 i / H to 90 - 180 (i + 1) / H degrees; its pixels cover a
  solid angle proportional to cos(latitude), so weighting the loss by it makes every
  steradian count the same and the stretched polar rows no longer dominate.
  """
  lat = math.pi / 2 - (jnp.arange(height, dtype=jnp.float32) + 0.5) * (math.pi / height)
  return jnp.cos(lat)


def _loss(params, batch, key, *, model, spec: diffusion.DiffusionSpec, cfg: StepConfig):
  """Mean diffusion loss of one (micro-)batch. batch["image"]: [B, H, W, 3] in [-1, 1]."""
  x0 = batch["image"]
  b, h, w, _ = x0.shape
  k_drop, k_label, k_diff, k_mask = jax.random.split(key, 4)
  y = None
  if cfg.num_classes:
    # Classifier-free guidance: some labels become the null class.
    null = jax.random.bernoulli(k_label, cfg.label_dropout, (b,))
    y = jnp.where(null, cfg.num_classes, batch["label"])
  cond = None
  if cfg.cond_channels:
    cond = conditioning.mask_condition(x0, conditioning.random_keep_masks(k_mask, b, h, w))

  def net(x_in, c_noise):
    return model.apply({"params": params}, x_in, c_noise, y=y, cond=cond, train=True,
                       rngs={"dropout": k_drop})

  pixel_weight = latitude_weights(h) if cfg.latitude_weighting else None
  return jnp.mean(diffusion.training_loss(net, x0, k_diff, spec, pixel_weight=pixel_weight))


# Objectives by name: loss(params, batch, key, *, model, spec, cfg) -> scalar. A new kind of
# model brings its loss here and reuses train_step and the loop. A loss that reads frozen
# parameters (a distillation teacher) takes them as `frozen=`: train_step's `frozen` argument.
LOSSES = {"diffusion": _loss, "depth": depth.loss, "distill": distill.loss}


def get_loss(name: str):
  if name not in LOSSES:
    raise ValueError(f"unknown train.objective {name!r}; valid: {', '.join(LOSSES)}")
  return LOSSES[name]


def _grads(params, batch, key, *, model, spec, cfg: StepConfig, frozen=None):
  """Loss and gradient, accumulated over `grad_accum_steps` micro-batches with lax.scan."""
  loss_fn = get_loss(cfg.objective)
  if frozen is not None:  # an input of the loss, never differentiated
    loss_fn = functools.partial(loss_fn, frozen=frozen)
  loss_and_grad = jax.value_and_grad(loss_fn)
  n = cfg.grad_accum_steps
  if n == 1:
    return loss_and_grad(params, batch, key, model=model, spec=spec, cfg=cfg)

  # [B, ...] -> [n, B / n, ...]: example j of micro-batch i is batch[j * n + i], so each
  # micro-batch keeps examples from every device's slice and needs no resharding.
  micro = jax.tree.map(lambda a: jnp.swapaxes(a.reshape(a.shape[0] // n, n, *a.shape[1:]), 0, 1),
                       batch)

  def body(carry, i_and_mb):
    i, mb = i_and_mb
    loss, grads = loss_and_grad(params, mb, jax.random.fold_in(key, i), model=model, spec=spec,
                                cfg=cfg)
    return jax.tree.map(jnp.add, carry, (loss, grads)), None

  zeros = (jnp.zeros((), jnp.float32), jax.tree.map(jnp.zeros_like, params))
  (loss, grads), _ = jax.lax.scan(body, zeros, (jnp.arange(n), micro))
  return jax.tree.map(lambda a: a / n, (loss, grads))


def keep_if_finite(finite: jax.Array, new, old):
  """`new` where the bool scalar `finite` holds, else `old`, leaf by leaf: the non-finite
  guard of every trainer's step (a NaN or Inf loss or gradient changes nothing)."""
  return jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)


def ema_update(params, ema_params, decay: float):
  """The exponential moving average after one step: decay * ema + (1 - decay) * params."""
  return optax.incremental_update(params, ema_params, 1.0 - decay)


def update_if_finite(finite: jax.Array, grads, params, ema_params, opt_state, *,
                     tx: optax.GradientTransformation, ema_decay: float):
  """One optax step and the EMA after it where the bool scalar `finite` holds, else the
  inputs unchanged: (params, ema_params, opt_state).

  The same values as `keep_if_finite` over the updated trees, computed under one `lax.cond`
  instead. With the select per leaf, XLA:CPU reads the old parameters and Adam moments in
  fusions apart from the ones that overwrite them, cannot prove the reads come first, and
  copies every donated parameter and moment when the step starts (110 MiB for `cifar`,
  live through the forward and backward passes). Inside the branch each leaf's new values
  follow from its old ones, so the donated buffers are updated in place; a skipped step
  also skips the optimizer's work.
  """
  def update(trees):
    params, ema_params, opt_state = trees
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    return params, ema_update(params, ema_params, ema_decay), opt_state

  return jax.lax.cond(finite, update, lambda trees: trees, (params, ema_params, opt_state))


def train_step(state: TrainState, batch, frozen=None, *, model, spec,
               tx: optax.GradientTransformation, cfg: StepConfig):
  """One optimizer step. A non-finite loss or gradient leaves the state as it was.

  Args:
    batch: {"image": float32 [B, H, W, 3] in [-1, 1], "label": int32 [B]}, the global batch.
    frozen: parameters the loss reads but does not train (a distillation teacher), or None.
  Returns:
    (new_state, metrics) with float32 scalars loss, grad_norm and an int32 `finite` flag.
  """
  key = jax.random.fold_in(state.rng, state.step)
  loss, grads = _grads(state.params, batch, key, model=model, spec=spec, cfg=cfg, frozen=frozen)
  grad_norm = optax.tree.norm(grads)
  finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)

  params, ema_params, opt_state = update_if_finite(
      finite, grads, state.params, state.ema_params, state.opt_state, tx=tx,
      ema_decay=cfg.ema_decay)
  new_state = state.replace(step=state.step + 1, params=params, ema_params=ema_params,
                            opt_state=opt_state,
                            skipped=state.skipped + (~finite).astype(jnp.int32))
  metrics = {"loss": loss, "grad_norm": grad_norm, "finite": finite.astype(jnp.int32)}
  return new_state, metrics
