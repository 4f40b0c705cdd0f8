#!/usr/bin/env bash
# Multi-node GPU training under SLURM: one task per node, all GPUs of the node per task.
#   sbatch examples/launch_slurm.sh
#SBATCH --job-name=genjax
#SBATCH --nodes=4
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --time=24:00:00
set -euo pipefail

# jax.distributed detects SLURM (SLURM_JOB_ID, SLURM_NTASKS, SLURM_PROCID, SLURM_STEP_NODELIST)
# and picks the coordinator (the first node) itself: --distributed is all genjax needs.
# Expected log lines, one per process:
#   INFO genjax.distributed: process 0 of 4; 8 local / 32 global devices
#   INFO genjax.train: model: ...M parameters; mesh {'data': 32, 'fsdp': 1}; global batch 512
srun .venv/bin/genjax train --distributed --config=cifar --workdir=/shared/runs/cifar \
  --config.train.batch_size=512 --config.mesh.fsdp=1
