"""Photo to comic: a procedural renderer in JAX (colour comic, manga with screentones),
and a neural translator trained through genjax.train.

  styles.py    knobs and layer functions of each style, registered by name
  render.py    render(images, style, knobs) -> (image, layers); palettes; RGBA layers
  tiling.py    images of any size in tiles with overlap and blended seams
  page.py      panels on a page grid with borders, gutters and captions
  run.py       files and folders -> files (the `genjax comic` command)
  examples.py  example photos (scikit-image's when installed, else procedural)

  translator_config.py       TranslatorConfig: the generator's architecture and knobs
  translator_net.py          the generator network (Flax)
  translator.py              translate, knob checks, save / load (the translator's API)
  translator_tiles.py        whole photos in exact tiles
  translator_data.py         photo and comic pools, crops, knobs, held-out photos
  translator_step_config.py  StepConfig: the static part of the train step
  translator_losses.py       renderer targets and loss terms
  perceptual.py              VGG19 content and Gram style terms of unpaired training
  translator_step.py         TranslatorState and the two-player train step
  translator_eval.py         held-out PSNR and sample sheets
  train_translator.py        TranslatorTrainer (genjax.train's trainer) and train_translator
  discriminator.py           PatchGAN discriminators and GAN losses
"""
