"""Every field a genjax diffusion run reads, with defaults. Variants import this
and override a few fields; `genjax.configs.load` locks the result so that an
unknown key or a value of the wrong type is an error naming the key."""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0

  c.data = ml_collections.ConfigDict()
  c.data.source = "procedural"    # "procedural" | "folder"
  c.data.path = ""                # folder of images when source == "folder"
  c.data.image_size = (32, 32)    # (height, width) in pixels after resize + crop
  c.data.random_crop = False      # random instead of center crop
  c.data.random_flip = True       # horizontal flip with probability 1/2
  c.data.class_labels = False     # sub-folder names as class labels
  c.data.num_examples = 50_000    # procedural: indices 0..N-1 (images are deterministic in the index)
  c.data.worker_count = 0         # Grain decode processes (0: decode in the main process)
  c.data.max_image_pixels = 100_000_000  # larger files are refused as decompression bombs

  c.model = ml_collections.ConfigDict()
  c.model.name = "unet"
  c.model.base_channels = 64
  c.model.channel_mult = (1, 2, 2)
  c.model.num_res_blocks = 2
  c.model.attn_resolutions = (16,)   # feature-map heights (pixels) that get self-attention
  c.model.num_heads = 4
  c.model.dropout = 0.1
  c.model.num_classes = 0            # > 0: class-conditional, label num_classes is the null class
  c.model.cond_channels = 0          # extra input channels (image conditioning, e.g. 4 = masked RGB + mask)
  c.model.padding = "zeros"          # "zeros" | "circular_w" (wrap longitude) | "sphere" (also across the poles)
  c.model.out_channels = 3
  c.model.remat = False              # recompute each residual block in the backward pass (memory)

  c.diffusion = ml_collections.ConfigDict()
  c.diffusion.schedule = "cosine"    # "linear" | "cosine" | "edm" | "flow" (rectified flow)
  c.diffusion.objective = "v"        # "eps" | "v" | "x0" | "edm" | "flow" (velocity)
  c.diffusion.weighting = "uniform"  # "uniform" | "min_snr" | "snr" | "edm" | "logit_normal"
  c.diffusion.min_snr_gamma = 5.0
  c.diffusion.sigma_data = 0.5       # EDM preconditioning
  c.diffusion.p_mean = -1.2          # EDM log-normal training noise
  c.diffusion.p_std = 1.2
  c.diffusion.logit_mean = 0.0       # "logit_normal" training times (SD3): logit(tau) ~ N(mean, std^2)
  c.diffusion.logit_std = 1.0

  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 128           # global batch (all devices, all processes)
  c.train.grad_accum_steps = 1       # micro-batches per optimizer step (batch_size must divide)
  c.train.num_steps = 100_000
  c.train.learning_rate = 2e-4
  c.train.warmup_steps = 1000
  c.train.end_lr_fraction = 0.1      # cosine decay ends at learning_rate * this
  c.train.weight_decay = 0.0
  c.train.b1 = 0.9
  c.train.b2 = 0.999
  c.train.adam_eps = 1e-8
  c.train.grad_clip = 1.0
  c.train.ema_decay = 0.9999
  c.train.compute_dtype = "float32"  # "float32" | "bfloat16" (master weights stay float32)
  c.train.label_dropout = 0.1        # classifier-free guidance: P(label -> null class)
  c.train.max_nonfinite_in_row = 20  # stop after this many skipped (NaN/Inf) steps in a row
  c.train.time_limit_minutes = 0.0   # > 0: stop (checkpoint) after this wall time
  c.train.stop_check_every = 10      # several processes agree on a stop (signal, time
                                     # limit) every this many steps; 1 process: every step
  c.train.latitude_weighting = False  # weight the loss by cos(latitude) per row (equirect panoramas)
  c.train.objective = "diffusion"    # "diffusion" | "depth" | "distill" (genjax.train.step.LOSSES)
  c.train.init_params = ""           # a fresh run starts from these params: an exported .msgpack
                                     # or a run checkpoint RUN/checkpoints/STEP (its EMA params)
  c.train.log_every = 50
  c.train.sample_every = 5000
  c.train.checkpoint_every = 5000
  c.train.keep_checkpoints = 3
  c.train.num_sample_images = 16
  c.train.sample_steps = 50
  # Sample-quality evaluation on EMA samples (genjax.metrics), logged beside the loss as eval/*.
  c.train.eval_every = 0             # steps between evaluations; 0 = off
  c.train.eval_metrics = "swd"       # comma-separated: swd, kid, fid, pr (kid/fid/pr: random_conv features)
  c.train.eval_num_images = 256      # samples and real images per evaluation
  c.train.eval_batch_size = 64       # samples per compiled sampler call
  c.train.eval_sample_steps = 25     # DDIM steps of the evaluation samples
  c.train.keep_best_by = ""          # a logged eval metric (e.g. "swd"): also keep the best checkpoint in best/

  # A distilled student (`genjax distill`, genjax.train.distill): which teacher, and the sampler
  # and steps the student is trained for (the defaults of `genjax sample` on it). steps = 0:
  # the run is not a student.
  c.distill = ml_collections.ConfigDict()
  c.distill.teacher = ""             # the teacher's run folder (absolute path)
  c.distill.teacher_step = 0         # the teacher checkpoint (step) distilled
  c.distill.steps = 0                # the student's sampler steps (NFE)
  c.distill.sampler = "ddim"         # the student's sampler (its deterministic grid)
  c.distill.teacher_substeps = 8     # teacher DDIM steps per student step (the target)

  c.mesh = ml_collections.ConfigDict()
  c.mesh.data = -1                   # -1: all devices left after the other axes
  c.mesh.fsdp = 1

  c.kernels = ml_collections.ConfigDict()
  c.kernels.conv_impl = "auto"       # conv core implementation; env GENJAX_CONV_IMPL overrides
  return c
