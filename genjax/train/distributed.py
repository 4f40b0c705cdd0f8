"""Multi-process start-up through jax.distributed (multi-controller JAX).

Every process runs the same `genjax train` command. Settings come from, in order:
flags, GENJAX_* environment variables, and the cluster environments that jax
detects by itself (Cloud TPU pod slices, SLURM, Open MPI) when
`--distributed` is given without values.
"""

import dataclasses
import logging
import os

import jax
import orbax.checkpoint as ocp

from genjax.kernels import host_memory

log = logging.getLogger("genjax.distributed")


@dataclasses.dataclass(frozen=True)
class DistributedSettings:
  enabled: bool = False                 # call jax.distributed.initialize at all
  coordinator_address: str | None = None  # host:port of process 0
  num_processes: int | None = None
  process_id: int | None = None
  heartbeat_timeout_s: int = 100        # a dead peer is detected after this long
  cpu_collectives: str | None = None    # "gloo" for multi-process CPU runs

  @classmethod
  def from_args_and_env(cls, *, enabled=False, coordinator_address=None, num_processes=None,
                        process_id=None, heartbeat_timeout_s=None, env=None):
    env = os.environ if env is None else env

    def pick(value, name, cast=str):
      if value is not None:
        return value
      return cast(env[name]) if env.get(name) else None

    coordinator_address = pick(coordinator_address, "GENJAX_COORDINATOR_ADDRESS")
    num_processes = pick(num_processes, "GENJAX_NUM_PROCESSES", int)
    process_id = pick(process_id, "GENJAX_PROCESS_ID", int)
    heartbeat = pick(heartbeat_timeout_s, "GENJAX_HEARTBEAT_TIMEOUT", int) or 100
    explicit = coordinator_address is not None or num_processes is not None
    return cls(enabled=enabled or explicit, coordinator_address=coordinator_address,
               num_processes=num_processes, process_id=process_id,
               heartbeat_timeout_s=heartbeat,
               cpu_collectives=env.get("GENJAX_CPU_COLLECTIVES", "gloo"))


def initialize(settings: DistributedSettings) -> None:
  """Joins the process group; a no-op when not enabled. Call before any other jax use."""
  if not settings.enabled:
    return
  if settings.cpu_collectives:
    # CPU devices need a collectives implementation to talk across processes.
    jax.config.update("jax_cpu_collectives_implementation", settings.cpu_collectives)
  jax.distributed.initialize(
      coordinator_address=settings.coordinator_address, num_processes=settings.num_processes,
      process_id=settings.process_id, heartbeat_timeout_seconds=settings.heartbeat_timeout_s)
  log.info("process %d of %d; %d local / %d global devices", jax.process_index(),
           jax.process_count(), jax.local_device_count(), jax.device_count())


class CompiledTogether:
  """A jitted function whose first call compiles on every process before any runs it.

  XLA's CPU collectives (gloo) wait only 30 s for their peers when a program first
  runs, and compile times differ between processes (a cold cache on one host, a loaded
  CPU on another): a process that finishes compiling 30 s after the others would fail
  the run. So in multi-process runs the first call compiles ahead of time and waits at a
  coordination-service barrier (no device collective, `timeout_s` long) before running.
  Every run, one process or many, compiles ahead of time this way, so that the memory
  the compiler freed is handed back before the first run (host_memory.release).

  `compiled`: a concurrent.futures.Future of the function already compiled for the first
  call's arguments (genjax.train.runtime.StepAhead); the first call waits for it instead
  of compiling (`jitted` may then be None).
  """

  def __init__(self, jitted, name: str, *, timeout_s: int = 3600, compiled=None):
    self._jitted, self._name, self._timeout_s = jitted, name, timeout_s
    self._ahead = compiled
    self._compiled = None

  def __call__(self, *args):
    if self._compiled is None:
      if self._ahead is not None:
        self._compiled = self._ahead.result()
      else:
        self._compiled = self._jitted.lower(*args).compile()
      # The compiler's freed memory goes back to the system before the first run
      # allocates its temporaries on top of it (see host_memory.release).
      host_memory.release()
      if jax.process_count() > 1:
        ocp.multihost.get_barrier_sync_fn()(key=f"genjax_compiled_{self._name}",
                                            timeout_ms=self._timeout_s * 1000)
    return self._compiled(*args)
