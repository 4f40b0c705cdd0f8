#!/usr/bin/env bash
# Cloud TPU pod slice: every host runs the same command; jax finds the other hosts itself.
#   gcloud compute tpus tpu-vm ssh my-pod --zone=us-central2-b --worker=all \
#     --command="cd genjax && bash examples/launch_tpu_pod.sh"
set -euo pipefail
# The workdir must be shared storage every host can write (NFS / Filestore, or a bucket
# mounted with gcsfuse at the same path on every host),
# because Orbax writes one checkpoint cooperatively from all hosts.
# Expected log lines, one per host:
#   INFO genjax.distributed: process 3 of 8; 4 local / 32 global devices
.venv/bin/genjax train --distributed --config=cifar --workdir=/mnt/shared/runs/cifar \
  --config.train.batch_size=1024 --config.mesh.fsdp=4
