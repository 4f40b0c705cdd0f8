"""vr_files / vr_demo (genjax/apps/vr/run.py): photos on disk -> panorama and stereo files."""

import base64
import io
import math
import pathlib
import re

import jax
import numpy as np
import pytest
from PIL import Image

from genjax import configs
from genjax.apps.vr import outpainting, photo_placement, run, scene, xmp

CONFIG_DIR = pathlib.Path(configs.__file__).parent
def _photo_file(path, hw=(48, 64)):
  Image.fromarray(run.demo_photo(hw=hw)).save(path)
  return path


# ---- argument errors: raised before any work ---------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    (dict(mode="cube"), "unknown mode 'cube'; valid: panorama, stereo, both"),
    (dict(fov=0.0), r"\(0, 180\) degrees"),
    (dict(fov=180.0), r"\(0, 180\) degrees"),
    (dict(fov=-5.0), r"\(0, 180\) degrees"),
    (dict(steps=0), "steps must be a whole number >= 1"),
    (dict(pitch=120.0), r"pitch must be in \[-90, 90\]"),
    (dict(mode="stereo", depth="depth_anything"), "needs its weights file"),
    (dict(mode="panorama"), "needs a panorama run"),
    (dict(mode="stereo", depth="d.npy", holes="model"), "needs a run"),
    (dict(mode="stereo", depth="d.npy", holes="blur"), "unknown hole filling 'blur'"),
])
def test_bad_arguments_raise_before_writing(tmp_path, kwargs, match):
  photo = _photo_file(tmp_path / "p.png")
  with pytest.raises(ValueError, match=match):
    run.vr_files(photo, tmp_path / "out", progress=False, **kwargs)
  assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("height", [100_000, 4098, 1, 0, -2])
def test_panorama_height_is_bounded_before_any_work(tmp_path, capsys, height):
  """Issue 15.5: `genjax vr --height 100000` aborted natively (exit 134) allocating the
  panorama; now it is refused before the run is even loaded."""
  from genjax import cli
  photo = _photo_file(tmp_path / "p.png")
  code = cli.main(["vr", str(photo), "-o", str(tmp_path / "out"), "--workdir",
                   str(tmp_path / "nowhere"), "--height", str(height)])
  err = capsys.readouterr().err
  assert code == cli.USAGE_ERROR
  assert err.strip() == (f"genjax: error: --height must be a whole number of pixels in [2, 4096] "
                         f"(the panorama is twice as wide, and viewers show at most 8192 "
                         f"pixels), got {height}")
  assert not (tmp_path / "out").exists()


def test_huge_height_with_a_real_run_exits_cleanly(tmp_path, pano_run):
  """The issue's command in a subprocess (the old code aborted the whole process)."""
  import subprocess
  import sys
  photo = _photo_file(tmp_path / "p.png")
  proc = subprocess.run([sys.executable, "-m", "genjax.cli", "vr", str(photo), "-o",
                         str(tmp_path / "out"), "--workdir", str(pano_run), "--height", "100000",
                         "--steps", "2"], capture_output=True, text=True, timeout=600)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert "--height must be a whole number of pixels in [2, 4096]" in proc.stderr
  assert not (tmp_path / "out").exists()


def test_panorama_failed_write_is_reported_per_photo(tmp_path, pano_run, monkeypatch):
  """Issue 15.4: a full disk was a traceback; now the photo is reported and the rest go on."""
  import errno
  first, second = _photo_file(tmp_path / "a.png"), _photo_file(tmp_path / "b.png")
  real = run.outputs.write_panorama

  def full(pano, stem, **kw):
    if stem.name == "a":
      raise OSError(errno.ENOSPC, "No space left on device", str(stem) + ".jpg")
    return real(pano, stem, **kw)
  monkeypatch.setattr(run.outputs, "write_panorama", full)
  result = run.vr_files([first, second], tmp_path / "out", fov=60.0, workdir=pano_run, steps=2,
                        out_height=32, html=False, progress=False)
  assert result.failures == [(str(first), f"{first}: cannot write {tmp_path / 'out' / 'a.jpg'}: "
                                          f"No space left on device")]
  assert [p.name for p in result.written] == ["b.jpg"]


def test_missing_run_folder_is_named(tmp_path):
  photo = _photo_file(tmp_path / "p.png")
  with pytest.raises(FileNotFoundError, match="nowhere"):
    run.vr_files(photo, tmp_path / "out", workdir=tmp_path / "nowhere", progress=False)


def test_depth_image_brightness_is_inverse_depth():
  d = run.depth_from_image(np.array([[1.0, 0.0, 0.5]]), near=1.0, far=100.0)
  np.testing.assert_allclose(d, [[1.0, 100.0, 1 / (0.01 + 0.5 * 0.99)]], rtol=1e-6)


# ---- with a trained panorama run ---------------------------------------------------------------

# The seam bounds of one panorama (genjax.metrics.seam; 1.0 = the wrap is like any other
# column). Measured with the 200-step test run, demo photo, 10 steps, seeds 0..11 at 48 rows:
# column_ratio 0.71-1.22, gradient_ratio 0.83-1.24; a generator blind to the wrap (zero
# padding, no rotation) gives column_ratio 1.54-2.21 on the same seeds.
MAX_COLUMN_RATIO, MAX_GRADIENT_RATIO = 1.4, 1.5


# Mean abs difference (8-bit units) of the viewer's embedded panorama and the written file:
# two JPEG encodings of one panorama differ by 2.5-3.7 (seeds 0, 1; 48 and 64 rows); the
# panorama of another seed by 27, the same one shifted by one column by 6.6.
MAX_VIEWER_DIFF = 5.0


def _assert_seamless(seams, what):
  """seams: the reported (column_ratio, gradient_ratio) of a panorama."""
  column, gradient = seams
  print(f"\n{what} seam: column_ratio {column:.3f}, gradient_ratio {gradient:.3f}")
  assert column <= MAX_COLUMN_RATIO and gradient <= MAX_GRADIENT_RATIO, seams


def _viewer_differs(embedded: np.ndarray, jpg) -> float:
  """Mean abs difference of a viewer's embedded panorama (without its two wrap columns) and
  the panorama file, 8-bit units."""
  with Image.open(jpg) as im:
    written = np.asarray(im.convert("RGB"), np.float32)
  return float(np.abs(embedded[:, 1:-1] - written).mean())


def _viewer_image(html: pathlib.Path) -> np.ndarray:
  """The panorama a viewer page embeds (its data URI), float [H, W, 3] in 8-bit units."""
  text = html.read_text()
  assert 'getContext("webgl"' in text and "window.viewerState" in text
  uri, = re.findall(r"data:image/jpeg;base64,([A-Za-z0-9+/=]+)", text)
  with Image.open(io.BytesIO(base64.b64decode(uri))) as im:
    return np.asarray(im.convert("RGB"), np.float32)


@pytest.mark.slow
def test_panorama_mode_writes_photo_sphere_and_viewer(tmp_path, pano_run):
  photo = _photo_file(tmp_path / "beach.png")
  result = run.vr_files(photo, tmp_path / "out", fov=60.0, workdir=pano_run, steps=10,
                        out_height=48, progress=False)
  assert result.ok, result.failures
  jpg, html = tmp_path / "out" / "beach.jpg", tmp_path / "out" / "beach.html"
  assert set(result.written) == {jpg, html}
  with Image.open(jpg) as im:
    assert im.size == (96, 48)
  gpano = xmp.read_gpano(jpg)
  assert gpano["ProjectionType"] == "equirectangular"
  assert (gpano["FullPanoWidthPixels"], gpano["FullPanoHeightPixels"]) == (96, 48)
  # The viewer shows this panorama: its embedded image is the written one, with one column
  # of the other side on each edge (for the texture's wrap).
  embedded = _viewer_image(html)
  assert embedded.shape == (48, 96 + 2, 3)
  assert _viewer_differs(embedded, jpg) < MAX_VIEWER_DIFF
  _assert_seamless(result.seams[str(jpg)], "vr_files panorama")
  # No temporary files are left behind.
  assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_bad_inputs_are_reported_and_the_rest_converted(tmp_path, pano_run):
  inputs = tmp_path / "in"
  inputs.mkdir()
  _photo_file(inputs / "good.png")
  (inputs / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
  Image.new("RGB", (20, 10)).save(inputs / "tiny.png")
  result = run.vr_files(inputs, tmp_path / "out", fov=60.0, workdir=pano_run, steps=5,
                        out_height=32, html=False, progress=False)
  messages = dict(result.failures)
  assert set(messages) == {str(inputs / "broken.jpg"), str(inputs / "tiny.png")}
  assert "broken.jpg" in messages[str(inputs / "broken.jpg")]
  assert "20x10 pixels is too small" in messages[str(inputs / "tiny.png")]
  assert result.written == [tmp_path / "out" / "good.jpg"]


@pytest.mark.slow
def test_output_file_name_for_one_input(tmp_path, pano_run):
  photo = _photo_file(tmp_path / "p.png")
  result = run.vr_files(photo, tmp_path / "sphere.jpg", fov=50.0, workdir=pano_run, steps=5,
                        out_height=32, progress=False)
  assert result.ok and (tmp_path / "sphere.jpg").is_file() and (tmp_path / "sphere.html").is_file()


def test_non_panorama_run_is_refused(tmp_path):
  # Checked on config.json before any weights are read: no checkpoint needed.
  config = configs.load(str(CONFIG_DIR / "panorama_tiny.py"), ["data.image_size=(16, 16)"])
  (tmp_path / "square").mkdir()
  (tmp_path / "square" / "config.json").write_text(config.to_json())
  with pytest.raises(photo_placement.PanoramaError, match="16x16 .* not 2:1"):
    run.vr_files(_photo_file(tmp_path / "p.png"), tmp_path / "out", workdir=tmp_path / "square",
                 progress=False)


# ---- stereo ------------------------------------------------------------------------------------

H, W, FOCAL, BASELINE = 48, 64, 55.0, 0.25


@pytest.fixture(scope="module")
def scene_pair(tmp_path_factory):
  """The ray-cast test scene: left photo file, its depth (.npy), and the rendered right eye."""
  render = jax.jit(scene.render, static_argnames=("height", "width", "supersample"))
  left, depth = render(0.0, height=H, width=W, focal_px=FOCAL)
  right, _ = render(BASELINE, height=H, width=W, focal_px=FOCAL)
  folder = tmp_path_factory.mktemp("scene")
  photo = folder / "room.png"
  Image.fromarray(np.round(np.asarray(left) * 255).astype(np.uint8)).save(photo)
  np.save(folder / "room.npy", np.asarray(depth))
  return photo, folder / "room.npy", np.asarray(right)


HFOV = math.degrees(2 * math.atan(W / 2 / FOCAL))


def test_stereo_mode_writes_every_layout(tmp_path, scene_pair):
  photo, depth, _ = scene_pair
  result = run.vr_files(photo, tmp_path / "out", mode="stereo", fov=HFOV, depth=depth,
                        baseline=BASELINE, progress=False)
  assert result.ok, result.failures
  names = sorted(p.name for p in result.written)
  assert names == ["room.vr.jpg", "room_anaglyph.jpg", "room_holes.png", "room_ou.jpg",
                   "room_sbs.jpg"]
  with Image.open(tmp_path / "out" / "room_sbs.jpg") as im:
    assert im.size == (2 * W, H)


def test_stereo_depth_errors_are_clear(tmp_path, scene_pair):
  photo, _, _ = scene_pair
  bad = tmp_path / "bad.npy"
  np.save(bad, -np.ones((H, W)))
  result = run.vr_files(photo, tmp_path / "out", mode="stereo", fov=HFOV, depth=bad,
                        progress=False)
  (_, message), = result.failures
  assert "bad.npy" in message and "positive" in message
  result = run.vr_files(photo, tmp_path / "out", mode="stereo", fov=HFOV, depth=tmp_path,
                        progress=False)
  (_, message), = result.failures
  assert "no depth map room.npy" in message


# The run's chosen fill may be worse than the stopgap's on the true right eye by at most this
# (mean abs error over the hole pixels, [0, 1] units, of the written 8-bit JPEGs; the encoder
# alone moved it by 0.001 for the stopgap and 0.007 for the model's fill on this scene).
# Measured with the 200-step test run: stopgap 0.038, model 0.086 (0.037 and 0.093 before
# encoding): while the model's fill is the default with a run (issue 17), this fails.
FILL_MARGIN = 0.01


def _right_eye_written(out: pathlib.Path) -> np.ndarray:
  """The right half of the written side-by-side JPEG, float [H, W, 3] in [0, 1]."""
  with Image.open(out / "room_sbs.jpg") as im:
    return np.asarray(im.convert("RGB"), np.float32)[:, W:] / 255.0


@pytest.mark.slow
def test_stereo_holes_are_filled_by_the_run(tmp_path, scene_pair, pano_run):
  photo_path, depth_path, rendered_right = scene_pair
  photo = np.asarray(Image.open(photo_path))
  depth = np.load(depth_path)
  pm = outpainting.load_panorama_model(pano_run)
  _, stopgap, holes = run.stereo_pair(photo, depth, HFOV, baseline=BASELINE)
  _, filled, holes2 = run.stereo_pair(photo, depth, HFOV, baseline=BASELINE, pm=pm,
                                      key=jax.random.key(0), steps=10)
  np.testing.assert_array_equal(holes, holes2)
  assert holes.sum() > 20
  np.testing.assert_array_equal(filled[~holes], stopgap[~holes])   # only holes change
  assert np.all(np.isfinite(filled)) and filled.min() >= 0 and filled.max() <= 1
  err_model = np.abs(filled - rendered_right)[holes].mean()
  err_stopgap = np.abs(stopgap - rendered_right)[holes].mean()

  # What `genjax vr --mode stereo` writes with a run and its default hole filling, against
  # what it writes with the stopgap: the run's choice must not be the worse fill.
  common = dict(mode="stereo", fov=HFOV, depth=depth_path, baseline=BASELINE, steps=10,
                progress=False)
  chosen = run.vr_files(photo_path, tmp_path / "chosen", workdir=pano_run, **common)
  plain = run.vr_files(photo_path, tmp_path / "stopgap", holes="stopgap", **common)
  assert chosen.ok and plain.ok, (chosen.failures, plain.failures)
  err_chosen, err_plain = (np.abs(_right_eye_written(tmp_path / d) - rendered_right)[holes].mean()
                           for d in ("chosen", "stopgap"))
  print(f"\nstereo holes ({holes.sum()} px): mean abs error vs the rendered right eye: "
        f"model {err_model:.3f}, stopgap {err_stopgap:.3f}; written JPEGs: the run's default "
        f"{err_chosen:.3f}, stopgap {err_plain:.3f}")
  assert err_chosen <= err_plain + FILL_MARGIN, (err_chosen, err_plain)


# ---- the demo ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_vr_demo_writes_panorama_and_viewer(tmp_path, pano_run):
  info = run.vr_demo(tmp_path / "vr", pano_run, steps=10, out_height=64)
  for key in ("photo", "panorama", "html"):
    assert pathlib.Path(info[key]).is_file()
  with Image.open(info["panorama"]) as im:
    assert im.size == (128, 64)
  assert xmp.read_gpano(info["panorama"])["UsePanoramaViewer"] is True
  embedded = _viewer_image(pathlib.Path(info["html"]))
  assert embedded.shape == (64, 128 + 2, 3)
  assert _viewer_differs(embedded, info["panorama"]) < MAX_VIEWER_DIFF
  _assert_seamless((info["column_ratio"], info["gradient_ratio"]), "vr_demo")
