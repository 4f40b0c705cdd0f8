"""The optax chain: clipping, AdamW with warm-up + cosine decay, decoupled weight decay."""

import jax
import optax


def learning_rate_schedule(train_cfg) -> optax.Schedule:
  """Linear warm-up to `learning_rate`, then cosine decay to `end_lr_fraction` of it."""
  return optax.warmup_cosine_decay_schedule(
      # Step 0 already learns (a zero first rate would waste a step).
      init_value=train_cfg.learning_rate / max(train_cfg.warmup_steps, 1),
      peak_value=train_cfg.learning_rate,
      warmup_steps=max(train_cfg.warmup_steps, 1),
      decay_steps=max(train_cfg.num_steps, train_cfg.warmup_steps + 1),
      end_value=train_cfg.learning_rate * train_cfg.end_lr_fraction)


def _decay_mask(params):
  # Weight decay on kernels and embeddings only: decaying biases and norm scales
  # pulls them to zero and hurts (the usual practice since BERT).
  return jax.tree.map(lambda p: p.ndim > 1, params)


def make_optimizer(train_cfg) -> optax.GradientTransformation:
  return optax.chain(
      optax.clip_by_global_norm(train_cfg.grad_clip),
      optax.adamw(learning_rate_schedule(train_cfg), b1=train_cfg.b1, b2=train_cfg.b2,
                  eps=train_cfg.adam_eps,
                  weight_decay=train_cfg.weight_decay, mask=_decay_mask),
  )
