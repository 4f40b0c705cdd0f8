"""Lookup by name with an error that lists the valid names (samplers, metrics, extractors...)."""

from typing import Mapping, TypeVar

T = TypeVar("T")


class UnknownNameError(ValueError):
  """A name (schedule, sampler, metric, feature extractor...) that is not registered."""


def lookup(registry: Mapping[str, T], name: str, what: str) -> T:
  """registry[name], or UnknownNameError naming `what` ("diffusion.schedule") and the choices."""
  try:
    return registry[name]
  except (KeyError, TypeError):
    raise UnknownNameError(
        f"unknown {what} {name!r}; valid names: {', '.join(sorted(registry))}") from None
