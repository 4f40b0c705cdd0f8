"""The neural comic translator (genjax.apps.comic.train_translator) at a useful scale.

  genjax train-comic --config genjax/configs/comic.py --workdir runs/comic  (see the README)

paired: photos and their procedural renderings with random knobs (rendered on the fly);
unpaired: photos (data.source/path) and a folder of real comic or manga images
(data.comics). genjax/configs/comic_tiny.py is the CPU variant of the README's numbers.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0

  c.model = ml_collections.ConfigDict()
  c.model.style = "manga"             # "manga" | "comic": the layers the generator predicts
  c.model.channels = (32, 64)         # features at 1/patch and each further half resolution
  c.model.num_res_blocks = 4          # at the coarsest level
  c.model.patch = 2                   # space-to-depth factor of the input (1, 2, 4)
  # Knobs the generator is conditioned on (FiLM) and their training ranges; the renderer's
  # targets use random values in these ranges, so they can be turned at inference.
  c.model.cond_knobs = ("smoothing", "line_weight", "tone_levels")
  c.model.knob_ranges = ((0.0, 1.0), (0.6, 2.5), (2.0, 6.0))
  c.model.fixed_knobs = ()            # other knobs of the targets, "name=value" strings
  c.model.disc_features = (32, 64, 128)  # PatchGAN stride-2 conv channels

  c.data = ml_collections.ConfigDict()
  c.data.source = "procedural"        # photos, comma-separated: procedural, skimage, folder
  c.data.path = ""                    # folder of photos when source == "folder"
  c.data.comics = ""                  # unpaired: folder of comic / manga images
  c.data.num_photos = 1024            # procedural photos in the pool (indices 0..N-1)
  c.data.max_images = 4096            # folders: at most this many images in the pool
  c.data.photo_size = (192, 256)      # every pool image is resized (cover) + centre-cropped
  c.data.crop_size = 128              # random square training crops from the pool
  c.data.heldout = 16                 # held-out procedural photos for the PSNR evaluation
  c.data.heldout_size = (192, 256)
  # scikit-image's bundled photos (source "skimage"), cut into photo_size tiles; the
  # held-out ones are evaluated whole (when scikit-image is installed) and never trained on.
  c.data.skimage_photos = ("chelsea", "rocket", "immunohistochemistry", "hubble_deep_field",
                           "camera", "coins", "moon", "clock", "brick", "gravel", "text")
  c.data.heldout_skimage = ("astronaut", "coffee")
  c.data.max_image_pixels = 100_000_000

  c.train = ml_collections.ConfigDict()
  c.train.trainer = "comic_translator"  # genjax.train's trainer (genjax.apps.comic.train_translator)
  c.train.mode = "paired"             # "paired" | "unpaired"
  c.train.batch_size = 16
  c.train.num_steps = 50_000
  c.train.time_limit_minutes = 0.0    # > 0: stop (checkpoint, export) after this wall time
  c.train.stop_check_every = 10       # several processes agree on a stop every this many steps
  c.train.learning_rate = 1e-3
  c.train.warmup_steps = 500
  c.train.end_lr_fraction = 0.05
  c.train.weight_decay = 0.0
  c.train.b1 = 0.9
  c.train.b2 = 0.99
  c.train.adam_eps = 1e-8
  c.train.grad_clip = 1.0
  c.train.ema_decay = 0.999
  c.train.disc_learning_rate = 2e-4   # Adam(b1=0.5) of the discriminators
  c.train.log_every = 500
  c.train.checkpoint_every = 5000
  c.train.keep_checkpoints = 2
  c.train.eval_every = 5000           # held-out PSNR (paired targets); 0 = at the end only
  c.train.sample_every = 5000         # samples/step_*.png: photo | translation pairs
  c.train.num_sample_images = 8       # photos in that grid
  c.train.max_nonfinite_in_row = 20   # non-finite steps in a row before the run stops

  c.mesh = ml_collections.ConfigDict()
  c.mesh.data = -1                    # devices on the data axis (-1: all / fsdp)
  c.mesh.fsdp = 1                     # devices parameters are split over

  c.loss = ml_collections.ConfigDict()
  # paired
  c.loss.image_l1 = 1.0               # L1 on the composed image
  c.loss.edge = 1.0                   # L1 on the lightness gradients (edge-aware)
  c.loss.layers = 1.0                 # BCE on each predicted layer (ink, paper, coverage / flat)
  c.loss.adversarial = 0.0            # > 0: PatchGAN on the grayscale image (paired)
  c.loss.gan = "lsgan"                # "lsgan" | "hinge"
  # unpaired (White-box cartoonization representations, genjax.image.cartoon_reps)
  c.loss.surface = 0.1                # adversarial on the guided-filtered surface
  c.loss.texture = 1.0                # adversarial on the random colour-shift grey
  c.loss.structure = 0.5              # L1 to the output's own SLIC superpixel fill
  c.loss.content = 2.0                # content term (see c.unpaired): VGG19 or filtered-image L1
  c.loss.content_radius = 2           # px of that box filter
  c.loss.tv = 0.0                     # total variation of the output
  c.loss.paired_weight = 0.0          # unpaired mode: weight of the paired renderer losses

  # Unpaired content loss on VGG19 features (genjax.apps.comic.perceptual). vgg_weights: a .npz
  # made from torchvision's vgg19-dcbb9e9d.pth by python -m genjax.models.convert_vgg19;
  # "" = none, then loss.content weighs the L1 of box-filtered lightness instead.
  c.unpaired = ml_collections.ConfigDict()
  c.unpaired.vgg_weights = ""
  c.unpaired.content_layer = "relu4_2"  # feature L1 to the photo (relative), weight loss.content
  c.unpaired.style_layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
  c.unpaired.style_weight = 0.0         # > 0: Gram-matrix L1 to the comic batch (needs weights)

  c.kernels = ml_collections.ConfigDict()
  c.kernels.conv_impl = "auto"       # conv core implementation (genjax.kernels.conv2d)
  return c
