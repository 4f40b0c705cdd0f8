"""vr_files / vr_demo (genjax/apps/vr/run.py): photos on disk -> panorama and stereo files."""

import math
import pathlib

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


def test_missing_run_folder_is_named(tmp_path):
  photo = _photo_file(tmp_path / "p.png")
  with pytest.raises(FileNotFoundError, match="nowhere"):
    run.vr_files(photo, tmp_path / "out", workdir=tmp_path / "nowhere", progress=False)


def test_depth_image_brightness_is_inverse_depth():
  d = run.depth_from_image(np.array([[1.0, 0.0, 0.5]]), near=1.0, far=100.0)
  np.testing.assert_allclose(d, [[1.0, 100.0, 1 / (0.01 + 0.5 * 0.99)]], rtol=1e-6)


# ---- with a trained panorama run ---------------------------------------------------------------

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
  assert "<canvas" in html.read_text() or "webgl" in html.read_text().lower()
  (column, gradient), = result.seams.values()
  print(f"\nvr_files panorama seam: column_ratio {column:.3f}, gradient_ratio {gradient:.3f}")
  assert math.isfinite(column) and math.isfinite(gradient)
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


@pytest.mark.slow
def test_stereo_holes_are_filled_by_the_run(scene_pair, pano_run):
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
  print(f"\nstereo holes ({holes.sum()} px): mean abs error vs the rendered right eye: "
        f"model {err_model:.3f}, stopgap {err_stopgap:.3f}")
  assert err_model < 0.25


# ---- the demo ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_vr_demo_writes_panorama_and_viewer(tmp_path, pano_run):
  info = run.vr_demo(tmp_path / "vr", pano_run, steps=10, out_height=64)
  for key in ("photo", "panorama", "html"):
    assert pathlib.Path(info[key]).is_file()
  with Image.open(info["panorama"]) as im:
    assert im.size == (128, 64)
  assert xmp.read_gpano(info["panorama"])["UsePanoramaViewer"] is True
  print(f"\nvr_demo seam: column_ratio {info['column_ratio']:.3f}, "
        f"gradient_ratio {info['gradient_ratio']:.3f}")
