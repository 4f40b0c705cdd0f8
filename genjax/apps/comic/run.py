"""Photos on disk -> comic images on disk: the library function behind `genjax comic`.

  result = comic_files(["photos/", "cat.jpg"], "out/", style="manga", layers=True)
  if result.failures: ...   # [(path, message)]; every other file was still written

Inputs are files or folders (their image files, not recursive). Each photo is decoded
with the EXIF orientation applied and any mode (grayscale, RGBA over white, 16-bit, CMYK)
converted to RGB; a file that cannot be decoded is reported by name and skipped. Outputs
are written atomically (a crash leaves no half-written file). Images that would not fit
the memory budget are rendered in tiles (tiling.py) with the same result.
"""

import dataclasses
import itertools
import math
import pathlib
from collections.abc import Mapping, Sequence

import jax
import numpy as np
from PIL import Image
from tqdm import tqdm

from genjax import files as files_lib
from genjax.apps.comic import examples as examples_lib
from genjax.apps.comic import page as page_lib
from genjax.apps.comic import render as render_lib
from genjax.apps.comic import tiling
from genjax.apps.comic import translator as translator_lib
from genjax.apps.comic import translator_tiles
from genjax.data.decode import ImageDecodeError, load_rgb
from genjax.image import io as image_io
from genjax.image.io import save_image

DEFAULT_MAX_IMAGE_PIXELS = 100_000_000  # larger files are refused as decompression bombs
MAX_TILE = 16384  # pixels; a tile that large is never needed to stay in a memory budget


@dataclasses.dataclass
class ComicResult:
  """written: output files; failures: (input path, message) of every input not converted;
  renamed: (input path, message) where an output took another name than <stem>.png because
  that name is one of the inputs (never overwritten) or another output."""
  written: list[pathlib.Path] = dataclasses.field(default_factory=list)
  failures: list[tuple[str, str]] = dataclasses.field(default_factory=list)
  renamed: list[tuple[str, str]] = dataclasses.field(default_factory=list)

  @property
  def ok(self) -> bool:
    return not self.failures


def parse_knobs(items: Sequence[str]) -> dict[str, float | int | str]:
  """["line_weight=2", "tone_pattern=hatch"] -> {"line_weight": 2.0, "tone_pattern": "hatch"}."""
  out = {}
  for item in items:
    name, sep, value = item.partition("=")
    if not sep or not name.strip():
      raise ValueError(f"knob {item!r} must look like name=value")
    value = value.strip()
    try:
      out[name.strip()] = int(value)
    except ValueError:
      try:
        out[name.strip()] = float(value)
      except ValueError:
        out[name.strip()] = value
  return out


def _is_file_target(out: pathlib.Path) -> bool:
  return out.suffix.lower() in Image.registered_extensions()


def collect_inputs(inputs, result: ComicResult) -> list[pathlib.Path]:
  """Files as given, folders expanded to their image files (sorted); problems -> result."""
  files, failures = image_io.collect_image_files(inputs)
  result.failures.extend(failures)
  return files


def _output_names(files: list[pathlib.Path], out: pathlib.Path, style: str, layers: bool,
                  inputs: files_lib.InputFiles, result: ComicResult) -> list[pathlib.Path]:
  """out itself for one file and a file-like out; else out/<stem>.png per input.

  No output (nor its layer files) may land on any input, compared resolved and
  case-insensitively (see files.InputFiles): a file-like out that would is refused
  (ValueError), and in a folder the name falls back to <stem>.<style>.png, then
  <stem>.<style>-2.png, ... (recorded in result.renamed). Names are also unique among
  the outputs, case-insensitively.
  """
  if _is_file_target(out):
    if len(files) != 1:
      raise ValueError(f"-o {out} names a file, but {len(files)} input images were given; "
                       f"give a folder (or use --page)")
    _refuse_input_targets([out], layers, inputs)
    return [out]
  names, taken = [], set()
  for f in files:
    candidates = itertools.chain(
        [out / f"{f.stem}.png", out / f"{f.stem}.{style}.png"],
        (out / f"{f.stem}.{style}-{n}.png" for n in itertools.count(2)))
    for i, target in enumerate(candidates):
      group = [target, *(_layer_paths(target, render_lib.LAYER_NAMES).values() if layers else [])]
      hits = [inputs.collision(t) for t in group]
      if not any(hits) and not any(files_lib.path_key(t) in taken for t in group):
        break
      why = next((f"{h} is an input" for h in hits if h), "the name is taken by another output")
    if i:
      result.renamed.append((str(f), f"{f} -> {target} ({why})"))
    taken.update(files_lib.path_key(t) for t in group)
    names.append(target)
  return names


def _refuse_input_targets(targets, layers: bool, inputs: files_lib.InputFiles,
                          extra_layers=()) -> None:
  """ValueError when an output file the user named (or one of its layer files) is an input."""
  for target in targets:
    names = list(render_lib.LAYER_NAMES) + list(extra_layers) if layers else []
    for t in [target, *_layer_paths(target, names).values()]:
      hit = inputs.collision(t)
      if hit is not None:
        raise ValueError(f"-o {target}: writing {t} would overwrite the input {hit}; "
                         f"choose another -o")


def _layer_paths(target: pathlib.Path, names) -> dict[str, pathlib.Path]:
  """Layer files beside target: photo.ink.png, photo.tone.png, ... (PNG keeps the alpha)."""
  return {name: target.with_name(f"{target.stem}.{name}.png") for name in names}


def _save_layers(target: pathlib.Path, layers: Mapping[str, np.ndarray],
                 result: ComicResult) -> None:
  rgba = render_lib.layers_rgba(layers)
  for name, path in _layer_paths(target, rgba).items():
    result.written.append(save_image(path, rgba[name]))


def render_photo(photo: np.ndarray, style: str, knobs, *, tile: int | None, memory_mb: float,
                 blend: int, key: jax.Array, progress: bool = False,
                 translator: translator_lib.Translator | None = None) -> render_lib.Rendering:
  """uint8 or float [H, W, 3] -> Rendering of NumPy arrays (image [H, W, 3], layers).

  Renders whole when the image fits memory_mb (tiling.BYTES_PER_PIXEL per pixel) and
  tile is None; otherwise in tiles of `tile` (or the largest that fits) core pixels.
  Either way the comic palette is fitted on a thumbnail of the whole photo, so the
  result does not depend on the tiling. With a translator (the neural model), it draws
  the layers instead (translator_tiles.translate_photo: aligned tiles, exact crops).
  """
  photo = np.asarray(photo)
  if translator is not None:
    with tqdm(desc="tiles", unit="tile", leave=False, disable=not progress) as bar:
      return translator_tiles.translate_photo(translator, photo, knobs, tile=tile,
                                              memory_mb=memory_mb, progress=bar.update)
  knobs = render_lib.make_knobs(style, knobs)
  h, w, _ = photo.shape
  palette = photo_palette(photo, style, knobs, key=key)
  if tile is None and h * w * tiling.BYTES_PER_PIXEL <= memory_mb * 2**20:
    image = photo.astype(np.float32) / 255.0 if photo.dtype == np.uint8 else photo
    layers = render_lib.render_layers(image[None], style, knobs, palette=palette)
    layers = {name: np.asarray(v[0]) for name, v in layers.items()}
    return render_lib.Rendering(render_lib.compose(layers), layers)
  halo = knobs.halo() + blend
  core = tile if tile is not None else tiling.tile_core(halo, memory_mb=memory_mb)
  n = tiling.num_tiles((h, w), core, halo)
  with tqdm(total=n, desc="tiles", unit="tile", leave=False, disable=not progress) as bar:
    return tiling.render_tiled(photo, style, knobs, tile=core, blend=blend, palette=palette,
                               progress=bar.update)


def photo_palette(photo: np.ndarray, style: str, knobs, *, key: jax.Array,
                  max_side: int = 4 * render_lib.THUMBNAIL):
  """render.fit_palette of a photo first shrunk on the host (Pillow) to at most max_side.

  Keeps a 12-megapixel photo off the device; the palette comes from a 64 x 64 thumbnail
  either way. None for a style without colour.
  """
  if not render_lib.get_style(style).uses_palette:
    return None
  h, w = photo.shape[:2]
  if max(h, w) > max_side:
    u8 = photo if photo.dtype == np.uint8 else np.round(np.clip(photo, 0, 1) * 255).astype(
        np.uint8)
    s = max_side / max(h, w)
    photo = np.asarray(Image.fromarray(u8).resize(
        (max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.BOX))
  image = photo.astype(np.float32) / 255.0 if photo.dtype == np.uint8 else photo
  return render_lib.fit_palette(image[None], style, knobs, key=key)


def _to_uint8(image: np.ndarray) -> np.ndarray:
  """float [0, 1] -> uint8, reusing the float buffer (a canvas-sized copy less at the end)."""
  image = np.clip(image, 0.0, 1.0, out=image)
  image *= 255.0
  return np.rint(image, out=image).astype(np.uint8)


def _load_model(model, style: str) -> translator_lib.Translator | None:
  """None, a Translator, or a train_translator workdir -> Translator drawing `style`."""
  if model is None or isinstance(model, translator_lib.Translator):
    translator = model
  else:
    translator = translator_lib.load_translator(model)
  if translator is not None and translator.config.style != style:
    raise ValueError(f"--model {model}: this translator draws style "
                     f"{translator.config.style!r}, not --style {style!r}")
  return translator


def comic_files(inputs: Sequence, out, style: str = "comic", *, knobs=None,
                layers: bool = False, page: bool = False, tile: int | None = None,
                memory_mb: float = 1024.0, blend: int = 8, layout: page_lib.PageLayout | None
                = None, captions: Sequence[str | None] | None = None, seed: int = 0,
                max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS, progress: bool = True,
                model=None) -> ComicResult:
  """Converts photos to comics and writes them.

  Args:
    inputs: image files and/or folders.
    out: output file (when its extension is an image format: one input, or the page)
      or folder (written as <stem>.png per input, or page.png). The output format follows
      the extension.
    style: "comic" or "manga" (see genjax.apps.comic.styles).
    knobs: mapping of knob overrides, e.g. {"line_weight": 2.0}.
    layers: also write <name>.ink.png, <name>.tone.png, <name>.flat.png (RGBA) beside
      each output (and <name>.lettering.png for a page).
    page: lay all inputs out as panels of one page (layout, captions).
    tile: tile core size in pixels (None: tile only if memory_mb would be exceeded).
    memory_mb: device memory budget of one render call, MiB.
    blend: tile cross-fade width in pixels.
    layout: page geometry (PageLayout defaults when None).
    captions: one caption per panel (None or "" for none), in input order.
    seed: seed of the palette fit (same seed, same output).
    max_image_pixels: larger images are refused (decompression bombs).
    progress: show a progress bar.
    model: a neural translator (a train_translator workdir, or a loaded Translator) of
      this style, used instead of the procedural renderer; knobs are then checked
      against it (translator.check_knobs).
  Returns:
    ComicResult. Raises ValueError (before writing anything) for an unknown style or knob,
    or a file-like `out` with several inputs.
  """
  render_lib.get_style(style)  # unknown style: error before any work
  if tile is not None and not (isinstance(tile, int) and 1 <= tile <= MAX_TILE):
    raise ValueError(f"--tile must be a whole number of pixels in [1, {MAX_TILE}], got {tile!r}")
  if not 0 < memory_mb:  # also refuses NaN
    raise ValueError(f"--memory must be > 0 MiB, got {memory_mb}")
  translator = _load_model(model, style)
  knobs = (translator_lib.check_knobs(translator.config, knobs) if translator is not None
           else render_lib.make_knobs(style, knobs))  # unknown knob: error before any work
  out = pathlib.Path(out)
  files_lib.check_can_create(out, "-o", folder=not _is_file_target(out))
  result = ComicResult()
  files = collect_inputs(inputs, result)
  input_set = files_lib.InputFiles(files)
  key = jax.random.key(seed)
  if page:
    target = out if _is_file_target(out) else out / "page.png"
    _refuse_input_targets([target], layers, input_set, extra_layers=["lettering"])
    _comic_page(files, target, style, knobs, layers=layers,
                layout=layout or page_lib.PageLayout(), captions=captions, key=key,
                max_image_pixels=max_image_pixels, progress=progress, result=result,
                translator=translator)
    return result
  if captions:
    raise ValueError("captions are drawn on pages only: add --page")
  if not files:
    return result
  targets = _output_names(files, out, style, layers, input_set, result)
  for path, target in tqdm(list(zip(files, targets)), desc=f"comic ({style})", unit="image",
                           disable=not progress):
    try:
      photo = load_rgb(path, max_pixels=max_image_pixels)
    except ImageDecodeError as e:
      result.failures.append((str(path), str(e)))
      continue
    rendering = render_photo(photo, style, knobs, tile=tile, memory_mb=memory_mb, blend=blend,
                             key=key, progress=progress, translator=translator)
    try:  # a failed write (full disk, read-only folder) costs this file only
      if layers:
        _save_layers(target, rendering.layers, result)
      result.written.append(save_image(target, _to_uint8(rendering.image)))
    except OSError as e:
      result.failures.append((str(path), f"{path}: cannot write {_os_error(e, target)}"))
    del rendering
  return result


def _os_error(e: OSError, target) -> str:
  return f"{e.filename or target}: {e.strerror or e}"


def _comic_page(files, target, style, knobs, *, layers, layout, captions, key,
                max_image_pixels, progress, result, translator=None) -> None:
  captions = list(captions or [])
  if len(captions) > len(files):
    raise ValueError(f"{len(captions)} captions for {len(files)} panels")
  captions += [None] * (len(files) - len(captions))
  photos, texts = [], []
  for path, text in zip(files, captions):
    try:
      photos.append(load_rgb(path, max_pixels=max_image_pixels))
      texts.append(text)
    except ImageDecodeError as e:
      result.failures.append((str(path), str(e)))
  if not photos:
    result.failures.append((str(target), "no readable input images for the page"))
    return
  page_layers, lettering = make_page(photos, style, knobs, layout=layout, captions=texts,
                                     key=key, progress=progress, translator=translator)
  image = page_lib.over(lettering, render_lib.compose(page_layers))
  try:
    result.written.append(save_image(target, image))
    if layers:
      _save_layers(target, page_layers, result)
      result.written.append(save_image(_layer_paths(target, ["lettering"])["lettering"],
                                       lettering))
  except OSError as e:
    result.failures.append((str(target), f"page: cannot write {_os_error(e, target)}"))


def make_page(photos: Sequence[np.ndarray], style: str = "manga", knobs=None, *,
              layout: page_lib.PageLayout | None = None, captions=None,
              key: jax.Array | None = None, progress: bool = False,
              translator: translator_lib.Translator | None = None
              ) -> tuple[dict[str, np.ndarray], np.ndarray]:
  """Photos (uint8 [H, W, 3]) -> (page layers {"ink", "flat", "tone"}, lettering RGBA).

  The final page is page.over(lettering, render.compose(layers)).
  """
  layout = layout or page_lib.PageLayout()
  key = jax.random.key(0) if key is None else key
  knobs = (translator_lib.check_knobs(translator.config, knobs) if translator is not None
           else render_lib.make_knobs(style, knobs))
  aspect = layout.panel_aspect or float(np.median([p.shape[0] / p.shape[1] for p in photos]))
  page_hw, boxes = page_lib.panel_boxes(len(photos), layout, aspect)
  panels = []
  for photo, box in tqdm(list(zip(photos, boxes)), desc=f"page ({style})", unit="panel",
                         disable=not progress):
    fitted = page_lib.fit_photo(photo, box.height, box.width)
    # Panels share one shape, so they share one compiled renderer.
    rendering = render_photo(fitted, style, knobs, tile=None, memory_mb=math.inf, blend=0,
                             key=key, translator=translator)
    panels.append(rendering.layers)
  page_layers = page_lib.assemble(panels, boxes, page_hw, layout.border)
  letters = page_lib.lettering(captions or [None] * len(photos), boxes, page_hw,
                               border=layout.border,
                               size=layout.caption_size or max(10, layout.width // 40))
  return page_layers, letters


def comic_examples(out, *, styles: Sequence[str] = ("comic", "manga"), n: int = 3,
                   source: str = "auto", page_style: str = "manga", page_width: int = 1000,
                   captions: Sequence[str] | None = None, seed: int = 0) -> list[pathlib.Path]:
  """Writes example photos and their renderings for the README and the demo.

  out/<name>.png (the photo), out/<name>.<style>.png per style, and out/page.png (a
  page of all of them in page_style). Returns the written paths.
  """
  out = files_lib.check_can_create(out, "-o", folder=True)
  photos = examples_lib.example_photos(n, source=source)
  key = jax.random.key(seed)
  written = []
  for name, photo in photos.items():
    written.append(save_image(out / f"{name}.png", photo))
    for style in styles:
      rendering = render_photo(photo, style, None, tile=None, memory_mb=1024.0, blend=8, key=key)
      written.append(save_image(out / f"{name}.{style}.png", rendering.image))
  captions = list(captions) if captions is not None else [
      "Meanwhile...", None, "Later that day, far from home.", None][:len(photos)]
  captions += [None] * (len(photos) - len(captions))
  layers, letters = make_page(list(photos.values()), page_style,
                              layout=page_lib.PageLayout(width=page_width), captions=captions,
                              key=key)
  page_image = page_lib.over(letters, render_lib.compose(layers))
  written.append(save_image(out / "page.png", page_image))
  return written
