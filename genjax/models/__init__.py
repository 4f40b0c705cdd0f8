"""Flax Linen models. `build_model(config.model, dtype=...)` picks one by name."""

import jax.numpy as jnp

from genjax.models.unet import UNet, UNetConfig

MODELS = {"unet": (UNet, UNetConfig)}


def build_model(model_cfg, *, dtype=jnp.float32, conv_impl: str | None = None):
  """The Linen module named by model_cfg.name, configured by a frozen dataclass."""
  if model_cfg.name not in MODELS:
    raise ValueError(f"unknown model.name {model_cfg.name!r}; valid: {', '.join(MODELS)}")
  module_cls, config_cls = MODELS[model_cfg.name]
  return module_cls(config_cls.from_config(model_cfg, dtype=dtype, conv_impl=conv_impl))


__all__ = ["UNet", "UNetConfig", "build_model", "MODELS"]
