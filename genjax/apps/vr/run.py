"""Photos on disk -> VR files on disk: the library functions behind `genjax vr` and the demo.

  result = vr_files("beach.jpg", "out/", mode="both", workdir="runs/pano", depth="beach.npy")
  if result.failures: ...   # [(path, message)]; every other input was still converted

Modes:
  panorama  out/<stem>.jpg, a 360 x 180 photo sphere grown around the photo by the
            panorama run in `workdir` (genjax.apps.vr.outpainting), with out/<stem>.html
            (a standalone viewer) when html; the seam scores are in result.seams. With
            cube, the six cube faces out/<stem>_cube_<face>.jpg and the one-image layouts
            out/<stem>_cube_strip.jpg (6:1) and _cube_cross.jpg (4:3); with ods, the
            omnidirectional stereo panorama out/<stem>_ods_tb.jpg (top-bottom, left eye
            on top) and out/<stem>_ods.vr.jpg (VR photo: GPano + GImage right eye), its
            distances from a flat-ground prior (genjax.apps.vr.ods.ground_plane_distance).
  stereo    out/<stem>_sbs.jpg, _ou.jpg, _anaglyph.jpg, .vr.jpg and _holes.png: the right
            eye rendered from the photo and its depth (genjax.apps.vr.stereo), its
            disocclusions filled by extending the background along each row
            (holes="stopgap", the default) or by the run's inpainting sampler
            (holes="model"). The stopgap is the default because it is the better fill:
            on the ray-cast test scene with the 200-step test model, mean error 0.037
            against the true right eye, the model 0.093 (a disocclusion is background
            that the near object hid, which is what extending the background guesses).
  both      all of the above.

Depth for stereo: `depth` is a method of genjax.apps.vr.depth_estimation ("auto", the
default: genjax's own depth UNet, shipped with the package, or Depth Anything V2 when
`depth_weights` is given; "unet"; "depth_anything"), a .npy file of z-depths in
metres [H, W], an image whose brightness is inverse depth (white = `near` metres, black =
`far` metres, as relative-depth estimators write them), a folder holding <stem>.npy or
<stem>.png per input, or a callable photo -> metres.

Inputs are files or folders (their image files, not recursive), decoded with the EXIF
orientation applied; a file that cannot be used is reported by name and skipped. Bad
arguments (mode, field of view, steps, a missing run) raise before any work. Every file is
written atomically (temporary file renamed over the target).
"""

import dataclasses
import logging
import pathlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
from tqdm import tqdm

from genjax import files as files_lib
from genjax.apps.vr import (depth_estimation, hole_filling, ods, outpainting, outputs,
                            photo_placement, stereo, xmp)
from genjax.data import procedural
from genjax.data.decode import ImageDecodeError
from genjax.image import io as image_io
from genjax.image import projections
from genjax.metrics.seam import seam_scores

log = logging.getLogger("genjax.vr")

MODES = ("panorama", "stereo", "both")
DEFAULT_MAX_IMAGE_PIXELS = 100_000_000
MAX_OUT_HEIGHT = xmp.MAX_VIEWER_WIDTH // 2   # pixels: the panorama is 2:1
DEFAULT_BASELINE = 0.064        # metres: a typical interpupillary distance
_warp = jax.jit(stereo.warp_to_right_eye)
_ods_pair = jax.jit(ods.ods_pair)


@dataclasses.dataclass
class VrResult:
  """written: output files; failures: (input, message) of inputs not converted;
  seams: {panorama path: (column_ratio, gradient_ratio)} (genjax.metrics.seam);
  sampling: (sampler, steps) the run's model was sampled with (None: no run);
  sampling_seconds: {panorama path: wall seconds of its sampler call (outpainting.outpaint:
  tracing and compilation, or a load from the compilation cache, included)}."""
  written: list[pathlib.Path] = dataclasses.field(default_factory=list)
  failures: list[tuple[str, str]] = dataclasses.field(default_factory=list)
  seams: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
  sampling: tuple[str, int] | None = None
  sampling_seconds: dict[str, float] = dataclasses.field(default_factory=dict)

  @property
  def ok(self) -> bool:
    return not self.failures


def collect_inputs(inputs, result: VrResult) -> list[pathlib.Path]:
  """Files as given, folders expanded to their image files (sorted); problems -> result."""
  files, failures = image_io.collect_image_files(inputs)
  result.failures.extend(failures)
  return files


def _stems(files: list[pathlib.Path], out: pathlib.Path) -> list[pathlib.Path]:
  """out/<stem> per input (deduplicated), or out without its suffix for one input and an
  out ending in .jpg."""
  if out.suffix.lower() in (".jpg", ".jpeg"):
    if len(files) != 1:
      raise ValueError(f"-o {out} names a file, but {len(files)} inputs were given; give a "
                       f"folder")
    return [out.with_suffix("")]
  stems, seen = [], {}
  for f in files:
    n = seen[f.stem] = seen.get(f.stem, 0) + 1
    stems.append(out / (f.stem if n == 1 else f"{f.stem}-{n}"))
  return stems


# ---------------------------------------------------------------------------------------------
# Depth.

def depth_from_image(img: np.ndarray, *, near: float, far: float) -> np.ndarray:
  """Brightness in [0, 1] as inverse depth -> z-depth in metres: 1 -> near, 0 -> far."""
  inv = 1.0 / far + np.clip(img, 0.0, 1.0) * (1.0 / near - 1.0 / far)
  return (1.0 / inv).astype(np.float32)


def _read_depth_file(path: pathlib.Path, *, near: float, far: float) -> np.ndarray:
  if path.suffix.lower() == ".npy":
    try:
      d = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
      raise ValueError(f"depth {path}: not a readable .npy array ({e})") from None
    d = np.squeeze(np.asarray(d, np.float32))
    if d.ndim != 2 or not np.all(d > 0):
      raise ValueError(f"depth {path}: expected positive z-depths in metres [H, W], got shape "
                       f"{d.shape}, min {np.min(d) if d.size else 'n/a'}")
    return d
  try:
    with Image.open(path) as im:
      if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):     # 16-bit grayscale
        a = np.asarray(im, np.float32) / 65535.0
      else:
        a = np.asarray(im.convert("L"), np.float32) / 255.0
  except Exception as e:  # noqa: BLE001 - Pillow raises many types
    raise ValueError(f"depth {path}: not a readable image ({type(e).__name__}: {e})") from None
  return depth_from_image(a, near=near, far=far)


def _resize_float(a: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
  if a.shape == tuple(hw):
    return a
  return np.asarray(Image.fromarray(a.astype(np.float32)).resize((hw[1], hw[0]),
                                                                Image.Resampling.BILINEAR))


def _is_method(depth) -> bool:
  return isinstance(depth, str) and (depth == "auto" or depth in depth_estimation.METHODS)


def depth_for(path: pathlib.Path, photo: np.ndarray, depth, *, near: float = 1.0,
              far: float = 100.0, depth_weights=None) -> np.ndarray:
  """z-depth in metres [H, W] of a photo (see the module docstring for `depth`), resized to
  the photo when its size differs."""
  hw = photo.shape[:2]
  if _is_method(depth):           # an estimator's depth is the photo's size already
    return depth_estimation.estimate_depth(photo, method=depth, weights=depth_weights,
                                           near=near, far=far)
  if callable(depth):
    d = np.asarray(depth(photo), np.float32)
  else:
    src = pathlib.Path(depth)
    if src.is_dir():
      found = [src / f"{path.stem}{s}" for s in (".npy", ".png", ".tif", ".tiff")]
      found = [f for f in found if f.is_file()]
      if not found:
        raise ValueError(f"{path}: no depth map {path.stem}.npy or {path.stem}.png in {src}")
      src = found[0]
    elif not src.is_file():
      raise ValueError(f"depth {src}: no such file or folder")
    d = _read_depth_file(src, near=near, far=far)
  _warn_if_stretched(d.shape[:2], hw, depth if callable(depth) else src, path)
  return _resize_float(d, hw)


# A depth map is resized to its photo; past these it no longer describes the photo's geometry.
MAX_DEPTH_ASPECT_DIFFERENCE = 0.01   # relative difference of width / height
MAX_DEPTH_UPSAMPLING = 4.0           # photo pixels per depth pixel, along either axis


def _warn_if_stretched(depth_hw, photo_hw, source, photo_path) -> None:
  """Logs one warning naming both sizes when the depth map is stretched to another aspect
  ratio or blown up more than MAX_DEPTH_UPSAMPLING times: its edges then miss the photo's."""
  (dh, dw), (h, w) = depth_hw, photo_hw
  aspect = abs((w / h) / (dw / dh) - 1.0)
  scale = max(h / dh, w / dw)
  problems = []
  if aspect > MAX_DEPTH_ASPECT_DIFFERENCE:
    problems.append(f"stretched from aspect ratio {dw / dh:.3g} to {w / h:.3g}")
  if scale > MAX_DEPTH_UPSAMPLING:
    problems.append(f"upsampled {scale:.3g}x")
  if problems:
    log.warning("depth %s: a %dx%d depth map for the %dx%d photo %s is %s; its depth edges "
                "will not match the photo's", getattr(source, "__name__", source), dh, dw, h, w,
                photo_path, " and ".join(problems))


# ---------------------------------------------------------------------------------------------
# One photo.

def stereo_pair(photo: np.ndarray, depth_m: np.ndarray, hfov_deg: float, *,
                baseline: float = DEFAULT_BASELINE, convergence: float | None = None,
                pm: outpainting.PanoramaModel | None = None, key: jax.Array | None = None,
                steps: int = outpainting.DEFAULT_STEPS,
                sampler: str = outpainting.DEFAULT_SAMPLER):
  """(left, right, holes): the photo as the left eye, the right eye by depth-image-based
  rendering, float32 [H, W, 3] in [0, 1] and holes [H, W] bool. With a run `pm`, the holes
  are inpainted by its sampler (hole_filling.fill_holes: RePaint with `sampler` at `steps`,
  ddpm for a multistep one); else the stopgap of
  stereo.warp_to_right_eye (each hole copies the farther side of its row) stays."""
  left = photo.astype(np.float32) / 255.0 if photo.dtype == np.uint8 else photo
  f = photo_placement.focal_px(photo.shape[:2], hfov_deg)
  right, holes = _warp(left, depth_m, baseline=baseline, focal_px=f, convergence=convergence)
  right, holes = np.asarray(right), np.asarray(holes)
  if pm is not None and holes.any():
    right = hole_filling.fill_holes(right, holes, pm, key=key if key is not None else
                                jax.random.key(0), steps=steps, sampler=sampler)
  return left, right, holes


# The files _convert writes for a stem, by mode (outputs.write_panorama / write_stereo /
# write_ods): none of them may land on an input.
_PANORAMA_SUFFIXES = (".jpg", ".html")
_STEREO_SUFFIXES = ("_sbs.jpg", "_ou.jpg", "_anaglyph.jpg", ".vr.jpg", "_holes.png")
_CUBE_SUFFIXES = tuple(f"_cube_{name}.jpg" for name in outputs.CUBE_FACE_FILES) + (
    "_cube_strip.jpg", "_cube_cross.jpg")
_ODS_SUFFIXES = ("_ods_tb.jpg", "_ods.vr.jpg", "_ods_holes.png")


def _write_ods(pano: np.ndarray, stem, baseline: float) -> dict:
  """ODS eyes of a uint8 panorama [H, 2H, 3] with the flat-ground distance prior."""
  distance = ods.ground_plane_distance(pano.shape[0])
  eyes, holes = _ods_pair(jnp.asarray(pano, jnp.float32) / 255.0, distance, ipd=baseline)
  return outputs.write_ods(np.asarray(eyes[0]), np.asarray(eyes[1]), stem,
                           holes=np.asarray(holes))


def _convert(path, stem, *, mode, fov, pitch, roll, html, pm, key, steps, sampler, rotate,
             out_height, depth, holes, baseline, convergence, near, far, max_image_pixels,
             result, bar, inputs: files_lib.InputFiles, cube=False, ods_out=False,
             depth_weights=None):
  suffixes = ((_PANORAMA_SUFFIXES if mode != "stereo" else ())
              + (_STEREO_SUFFIXES if mode != "panorama" else ())
              + (_CUBE_SUFFIXES if cube else ()) + (_ODS_SUFFIXES if ods_out else ()))
  for suffix in suffixes:
    hit = inputs.collision(stem.with_name(stem.name + suffix))
    if hit is not None:
      raise ValueError(f"{path}: its output {stem.name + suffix} would overwrite the input "
                       f"{hit}; choose another -o")
  bar.set_postfix_str(f"{path.name}: reading")
  photo = photo_placement.load_photo(path, max_pixels=max_image_pixels)
  hfov, _ = photo_placement.photo_hfov(path, photo.shape[:2], fov)
  depth_m = None
  if mode in ("stereo", "both"):   # read the depth first: a bad one fails before any output
    bar.set_postfix_str(f"{path.name}: depth")
    depth_m = depth_for(path, photo, depth, near=near, far=far, depth_weights=depth_weights)
  if mode in ("panorama", "both"):
    bar.set_postfix_str(f"{path.name}: outpainting")
    placement = photo_placement.Placement(hfov, pitch_deg=pitch, roll_deg=roll)
    res = outpainting.photo_to_panorama(photo, pm, key=key, placement=placement,
                                     out_height=out_height, steps=steps, sampler=sampler,
                                     rotate=rotate)
    bar.set_postfix_str(f"{path.name}: writing")
    written = outputs.write_panorama(res.panorama, stem, html=html,
                                     cube_face_size=res.panorama.shape[0] // 2 if cube else 0)
    result.written.extend(written.values())
    if ods_out:
      bar.set_postfix_str(f"{path.name}: omnidirectional stereo")
      result.written.extend(_write_ods(res.panorama, stem, baseline).values())
    s = seam_scores(res.panorama.astype(np.float32))
    result.seams[str(written["panorama"])] = (float(s.column_ratio[0]),
                                              float(s.gradient_ratio[0]))
    result.sampling_seconds[str(written["panorama"])] = res.sample_seconds
  bar.update()
  if depth_m is not None:
    bar.set_postfix_str(f"{path.name}: stereo")
    left, right, hole_mask = stereo_pair(photo, depth_m, hfov, baseline=baseline,
                                         convergence=convergence,
                                         pm=pm if holes == "model" else None, key=key,
                                         steps=steps, sampler=sampler)
    result.written.extend(outputs.write_stereo(left, right, stem, hfov_deg=hfov,
                                               holes=hole_mask).values())
  bar.update()


def vr_files(inputs, out, mode: str = "panorama", *, fov: float | None = None,
             pitch: float = 0.0, roll: float = 0.0, html: bool = True, workdir=None,
             steps: int | None = None, seed: int = 0, sampler: str | None = None,
             rotate: bool = True,
             out_height: int | None = None,
             depth: str | pathlib.Path | Callable | None = None, holes: str = "auto",
             baseline: float = DEFAULT_BASELINE, convergence: float | None = None,
             near: float = 1.0, far: float = 100.0,
             max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
             progress: bool = True, cube: bool = False, ods_out: bool = False,
             depth_weights=None) -> VrResult:
  """Converts photos to VR files (see the module docstring).

  Args:
    inputs: an image file or folder, or a sequence of them.
    out: output folder (files <stem>.jpg, ...), or a .jpg path for one input (its stem).
    mode: "panorama", "stereo" or "both".
    fov: the photos' horizontal field of view in degrees, in (0, 180); None: from each
      photo's EXIF (35 mm equivalent focal length, or focal length and sensor), else 60.
    pitch, roll: the photos' camera pitch (> 0 looking up) and roll in degrees, for the
      panorama (genjax.image.projections conventions).
    html: write the standalone viewer beside each panorama.
    workdir: a panorama run folder (genjax train --config=panorama_tiny / panorama);
      required for panorama and both; optional for stereo (hole filling).
    steps, sampler, rotate, seed: the outpainting sampler (see outpainting.outpaint); input i
      uses fold_in(key(seed), i). None: the run's own (outpainting.sampling_for: a distilled
      student's sampler and steps, else ddpm at 50 steps).
    out_height: panorama height (None: the photo's resolution, at most 8192 wide).
    depth, near, far, baseline, convergence: stereo (see the module docstring and
      genjax.apps.vr.stereo); baseline and distances in metres. depth None: "auto".
    depth_weights: the depth method's weights file (genjax.apps.vr.depth_estimation).
    holes: how stereo disocclusions are filled: "model" (the run's sampler; needs
      workdir), "stopgap" (background extension), "auto" (the stopgap: see above).
    max_image_pixels: larger inputs are refused (decompression bombs).
    cube, ods_out: also write the cube faces and layouts, and the omnidirectional stereo
      panorama (eye distance `baseline`), of each panorama (panorama and both modes).
  Returns:
    VrResult. Raises ValueError (photo_placement.PanoramaError) or FileNotFoundError before
    writing anything for a bad argument or run folder.
  """
  if mode not in MODES:
    raise ValueError(f"unknown mode {mode!r}; valid: {', '.join(MODES)}")
  photo_placement.Placement(hfov_deg=photo_placement.DEFAULT_HFOV if fov is None else float(fov),
                     pitch_deg=float(pitch), roll_deg=float(roll))   # validates the angles
  if steps is not None and (not isinstance(steps, int) or steps < 1):
    raise ValueError(f"steps must be a whole number >= 1, got {steps!r}")
  if out_height is not None and not (isinstance(out_height, int)
                                     and 2 <= out_height <= MAX_OUT_HEIGHT):
    raise ValueError(f"--height must be a whole number of pixels in [2, {MAX_OUT_HEIGHT}] (the "
                     f"panorama is twice as wide, and viewers show at most "
                     f"{xmp.MAX_VIEWER_WIDTH} pixels), got {out_height!r}")
  if (cube or ods_out) and mode == "stereo":
    raise ValueError("cube faces and ODS are made from the panorama: use mode 'panorama' or "
                     "'both'")
  if holes not in ("auto", "model", "stopgap"):
    raise ValueError(f"unknown hole filling {holes!r}; valid: auto, model, stopgap")
  if holes == "model" and workdir is None:
    raise ValueError("holes='model' needs a run (workdir=) whose sampler fills them")
  holes = holes if holes != "auto" else "stopgap"
  if mode in ("stereo", "both"):
    depth = "auto" if depth is None else depth
    if _is_method(depth):   # a bad method or weights file fails before any work
      if depth_estimation.resolve(depth, depth_weights) == "depth_anything" and not (
          depth_weights is not None and pathlib.Path(depth_weights).is_file()):
        raise depth_estimation.DepthModelError(
            f"depth method 'depth_anything' needs its weights file (--depth-weights), got "
            f"{depth_weights!r}")
    if not (0 < near < far) or baseline <= 0:
      raise ValueError(f"need 0 < near < far and baseline > 0, got near={near}, far={far}, "
                       f"baseline={baseline}")
  pm = None
  if mode in ("panorama", "both"):
    if workdir is None:
      raise ValueError(f"mode {mode!r} needs a panorama run (workdir=, e.g. from "
                       "`genjax train --config=panorama_tiny --workdir RUN`)")
    pm = outpainting.load_panorama_model(workdir)
  elif workdir is not None:
    pm = outpainting.load_panorama_model(workdir, equirect=False)
  sampler, steps = outpainting.sampling_for(pm.config if pm else None, sampler=sampler,
                                            steps=steps)
  out = pathlib.Path(out)
  files_lib.check_can_create(out, "-o", folder=out.suffix.lower() not in (".jpg", ".jpeg"))
  result = VrResult(sampling=(sampler, steps) if pm else None)
  photos = collect_inputs(inputs, result)
  if not photos:
    return result
  stems = _stems(photos, out)
  input_set = files_lib.InputFiles(photos)
  root = jax.random.key(seed)
  with tqdm(total=2 * len(photos), desc=f"vr ({mode})", unit="step",
            disable=not progress) as bar:
    for i, (path, stem) in enumerate(zip(photos, stems)):
      try:
        _convert(path, stem, mode=mode, fov=fov, pitch=pitch, roll=roll, html=html, pm=pm,
                 key=jax.random.fold_in(root, i), steps=steps, sampler=sampler, rotate=rotate,
                 out_height=out_height, depth=depth, holes=holes, baseline=baseline,
                 convergence=convergence, near=near, far=far,
                 max_image_pixels=max_image_pixels, result=result, bar=bar,
                 inputs=input_set, cube=cube, ods_out=ods_out, depth_weights=depth_weights)
      except (ImageDecodeError, ValueError) as e:
        result.failures.append((str(path), str(e)))
        bar.update(2 - (bar.n - 2 * i))
      except OSError as e:  # a failed write (full disk, read-only folder) costs this photo only
        result.failures.append((str(path), f"{path}: cannot write {e.filename or stem}: "
                                           f"{e.strerror or e}"))
        bar.update(2 - (bar.n - 2 * i))
  return result


# ---------------------------------------------------------------------------------------------
# The demo.

DEMO_PHOTO_HW = (192, 256)
DEMO_HFOV = 60.0


def demo_photo(index: int = 1_000_004, *, hw: tuple[int, int] = DEMO_PHOTO_HW,
               hfov_deg: float = DEMO_HFOV) -> np.ndarray:
  """uint8 [H, W, 3]: a pinhole view of a procedural landscape the models never trained on
  (an index past every training set's), looking at the horizon."""
  src = procedural.panorama(index, height=512, width=1024).astype(np.float32) / 255.0
  view = jax.jit(projections.equirect_to_perspective, static_argnames="out_hw")(
      src, yaw=0.0, pitch=0.0, roll=0.0, hfov_deg=hfov_deg, out_hw=hw)
  return np.round(np.clip(np.asarray(view), 0, 1) * 255).astype(np.uint8)


def vr_demo(out_dir, workdir, *, steps: int | None = None, seed: int = 0,
            out_height: int | None = None) -> dict:
  """Photo -> panorama with the demo's tiny panorama run in `workdir` (steps None: the
  run's own, as vr_files).

  Writes out_dir/photo.png (the input), out_dir/panorama.jpg (photo sphere) and
  out_dir/panorama.html (viewer). Returns {"photo", "panorama", "html": paths,
  "column_ratio", "gradient_ratio": the panorama's seam scores}.
  """
  from genjax.image.io import save_image
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  photo_path = save_image(out_dir / "photo.png", demo_photo())
  result = vr_files(photo_path, out_dir / "panorama.jpg", mode="panorama", fov=DEMO_HFOV,
                    workdir=workdir, steps=steps, seed=seed, out_height=out_height,
                    progress=False)
  if result.failures:
    raise RuntimeError("; ".join(message for _, message in result.failures))
  (pano_path, (column, gradient)), = result.seams.items()
  return {"photo": photo_path, "panorama": pathlib.Path(pano_path),
          "html": out_dir / "panorama.html", "column_ratio": column,
          "gradient_ratio": gradient}
