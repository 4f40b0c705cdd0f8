"""Mesh and shardings: the same code on 1 CPU and on a pod.

The mesh has a `data` axis (batch split, parameters replicated) and an `fsdp`
axis (batch split and parameters split, ZeRO-3 style). The batch is split over
both axes, so every device sees a distinct slice of it.
"""

import jax
import numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

BATCH_AXES = ("data", "fsdp")


def make_mesh(mesh_cfg, devices=None) -> jax.sharding.Mesh:
  """A (data, fsdp) mesh over `devices` (default: every device of every process)."""
  devices = jax.devices() if devices is None else list(devices)
  n = len(devices)
  fsdp = mesh_cfg.fsdp
  data = mesh_cfg.data if mesh_cfg.data > 0 else n // fsdp
  if data * fsdp != n:
    raise ValueError(f"mesh.data={mesh_cfg.data} x mesh.fsdp={fsdp} does not use the "
                     f"{n} devices available (the product must equal {n})")
  return jax.make_mesh((data, fsdp), BATCH_AXES, axis_types=(AxisType.Auto,) * 2,
                       devices=devices)


def batch_sharding(mesh) -> NamedSharding:
  """Leading (batch) axis split over every device."""
  return NamedSharding(mesh, P(BATCH_AXES))


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def _leaf_spec(shape, fsdp: int) -> P:
  """Splits the largest dimension divisible by the fsdp size; small leaves stay whole."""
  if fsdp == 1 or not shape or int(np.prod(shape)) < 2 ** 12:
    return P()
  dims = sorted(range(len(shape)), key=lambda d: -shape[d])
  for d in dims:
    if shape[d] % fsdp == 0:
      spec = [None] * len(shape)
      spec[d] = "fsdp"
      return P(*spec)
  return P()


def state_shardings(abstract_state, mesh):
  """NamedSharding for every leaf of an abstract (eval_shape) tree."""
  fsdp = mesh.shape["fsdp"]
  return jax.tree.map(lambda a: NamedSharding(mesh, _leaf_spec(a.shape, fsdp)), abstract_state)
