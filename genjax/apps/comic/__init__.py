"""Photo to comic: a procedural renderer in JAX (colour comic, manga with screentones).

  styles.py    knobs and layer functions of each style, registered by name
  render.py    render(images, style, knobs) -> (image, layers); palettes; RGBA layers
  tiling.py    images of any size in tiles with overlap and blended seams
  page.py      panels on a page grid with borders, gutters and captions
  run.py       files and folders -> files (the `genjax comic` command)
  examples.py  example photos (scikit-image's when installed, else procedural)
"""
