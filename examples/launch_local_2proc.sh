#!/usr/bin/env bash
# Two processes on this machine, two CPU devices each (what tests/train/test_multiprocess.py does).
set -euo pipefail
export XLA_FLAGS=--xla_force_host_platform_device_count=2 GENJAX_CPU_COLLECTIVES=gloo
for i in 0 1; do
  genjax train --config=tiny --workdir=runs/two_procs --coordinator=localhost:12355 \
    --num-processes=2 --process-id=$i &
done
wait
