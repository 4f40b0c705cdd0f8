"""comic_files: files and folders, every image mode, bad input, atomic outputs, pages."""

import os
import pathlib

import numpy as np
import pytest
from PIL import Image

from genjax.apps.comic import examples, page, run
from genjax.apps.comic.examples import procedural_photo

H, W = 48, 64  # every decoded input has this size, so the renderer compiles once per style


def rgb() -> np.ndarray:
  return procedural_photo(1, height=H, width=W)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> pathlib.Path:
  """A folder with one image of each kind, a corrupt file and a text file."""
  d = tmp_path_factory.mktemp("photos")
  photo = rgb()
  Image.fromarray(photo).save(d / "colour.png")
  Image.fromarray(photo).convert("L").save(d / "grey.png")
  rgba = np.concatenate([photo, np.full((H, W, 1), 128, np.uint8)], -1)
  Image.fromarray(rgba, "RGBA").save(d / "rgba.png")
  deep = (photo[..., 1].astype(np.uint16) * 257)
  Image.fromarray(deep).save(d / "deep.png")  # 16-bit grayscale (mode I;16)
  assert Image.open(d / "deep.png").mode.startswith("I")
  # Stored 64 tall x 48 wide, EXIF orientation 6 (rotate 90 degrees clockwise to view):
  # it must come out 48 x 64.
  exif = Image.Exif()
  exif[0x0112] = 6
  Image.fromarray(np.ascontiguousarray(np.rot90(photo, 1))).save(d / "rotated.jpg", exif=exif)
  (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10)
  (d / "notes.txt").write_text("not an image")
  return d


def no_temporaries(folder: pathlib.Path) -> bool:
  return not [p for p in folder.rglob("*") if ".tmp" in p.name]


def test_folder_batch_with_layers(inputs, tmp_path):
  out = tmp_path / "out"
  result = run.comic_files([inputs], out, style="manga", layers=True, progress=False)
  assert [pathlib.Path(p).name for p, _ in result.failures] == ["corrupt.png"]
  assert "corrupt.png" in result.failures[0][1] and not result.ok
  names = {p.name for p in out.iterdir()}
  stems = ["colour", "deep", "grey", "rgba", "rotated"]
  assert names == {f"{s}{suffix}" for s in stems
                   for suffix in (".png", ".ink.png", ".tone.png", ".flat.png")}
  assert len(result.written) == len(names) and no_temporaries(out)
  for s in stems:
    with Image.open(out / f"{s}.png") as im:
      assert im.size == (W, H) and im.mode == "RGB"  # rotated.jpg upright: EXIF applied
    with Image.open(out / f"{s}.ink.png") as im:
      assert im.mode == "RGBA" and im.size == (W, H)
  # The editable layers stack back into the image (8-bit rounding aside).
  final = np.asarray(Image.open(out / "colour.png"), np.float32) / 255
  stack = np.asarray(Image.open(out / "colour.flat.png"), np.float32)[..., :3] / 255
  for name in ("tone", "ink"):
    layer = np.asarray(Image.open(out / f"colour.{name}.png"), np.float32) / 255
    stack = layer[..., :3] * layer[..., 3:] + stack * (1 - layer[..., 3:])
  assert np.abs(stack - final).max() <= 2 / 255


def test_grey_and_16_bit_inputs_match_their_8_bit_rgb(inputs, tmp_path):
  # deep.png is the green channel at 16 bits: it renders like grey-of-green at 8 bits.
  green = rgb()[..., 1]
  Image.fromarray(np.repeat(green[..., None], 3, -1)).save(tmp_path / "green.png")
  result = run.comic_files([inputs / "deep.png", tmp_path / "green.png"], tmp_path / "o",
                           style="manga", progress=False)
  assert result.ok
  a = np.asarray(Image.open(tmp_path / "o" / "deep.png"))
  b = np.asarray(Image.open(tmp_path / "o" / "green.png"))
  np.testing.assert_array_equal(a, b)


def test_single_file_output_format_from_extension(inputs, tmp_path):
  target = tmp_path / "art" / "cover.jpg"
  result = run.comic_files([inputs / "colour.png"], target, style="comic", layers=True,
                           progress=False)
  assert result.ok
  with Image.open(target) as im:
    assert im.format == "JPEG" and im.size == (W, H)
  for name in ("ink", "tone", "flat"):
    with Image.open(tmp_path / "art" / f"cover.{name}.png") as im:
      assert im.format == "PNG" and im.mode == "RGBA"


def test_tiled_file_equals_untiled(inputs, tmp_path):
  whole = run.comic_files([inputs / "colour.png"], tmp_path / "a.png", style="manga",
                          progress=False)
  tiled = run.comic_files([inputs / "colour.png"], tmp_path / "b.png", style="manga", tile=16,
                          progress=False)
  assert whole.ok and tiled.ok
  a = np.asarray(Image.open(tmp_path / "a.png"), np.int16)
  b = np.asarray(Image.open(tmp_path / "b.png"), np.int16)
  assert np.abs(a - b).max() <= 1


def test_errors_before_any_output(inputs, tmp_path):
  out = tmp_path / "never"
  with pytest.raises(ValueError, match=r"unknown comic style 'noir'; valid styles: \['comic'"):
    run.comic_files([inputs], out, style="noir", progress=False)
  with pytest.raises(ValueError, match="no translator found"):
    run.comic_files([inputs], out, style="manga", model="ckpt/", progress=False)
  with pytest.raises(ValueError, match="names a file, but 2 input images"):
    run.comic_files([inputs / "colour.png", inputs / "grey.png"], out / "x.png", style="manga",
                    progress=False)
  with pytest.raises(ValueError, match=r"unknown ComicKnobs knob\(s\) \['tone_levels'\]"):
    run.comic_files([inputs], out, style="comic", knobs={"tone_levels": 3}, progress=False)
  assert not out.exists()


def test_missing_input_and_self_overwrite_reported(inputs, tmp_path):
  own = tmp_path / "own.png"
  Image.fromarray(rgb()).save(own)
  before = own.read_bytes()
  result = run.comic_files([tmp_path / "missing.jpg", own, inputs / "colour.png"], tmp_path,
                           style="manga", progress=False)
  messages = dict(result.failures)
  assert "no such file" in messages[str(tmp_path / "missing.jpg")]
  assert str(own) not in messages
  assert dict(result.renamed)[str(own)] == (
      f"{own} -> {tmp_path / 'own.manga.png'} ({own} is an input)")
  assert own.read_bytes() == before
  assert (tmp_path / "colour.png").exists() and (tmp_path / "own.manga.png").exists()


def _snapshot(folder: pathlib.Path) -> dict[str, bytes]:
  return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_folder_into_itself_never_replaces_any_input(tmp_path):
  """Issue 15.1: `comic DIR -o DIR` with a.jpg and a.png: a.jpg's comic once replaced a.png."""
  d = tmp_path / "photos"
  d.mkdir()
  Image.fromarray(rgb()).save(d / "a.jpg")
  Image.fromarray(procedural_photo(4, height=H, width=W)).save(d / "a.png")
  Image.fromarray(rgb()).save(d / "a.manga.png")  # the fallback name is an input too
  before = _snapshot(d)
  result = run.comic_files([d], d, style="manga", layers=True, progress=False)
  assert result.ok, result.failures
  after = _snapshot(d)
  assert {k: after[k] for k in before} == before
  layers = (".ink.png", ".flat.png", ".tone.png")
  assert {p.name for p in result.written if not p.name.endswith(layers)} == {
      "a.manga-2.png", "a.manga.manga.png", "a.manga-3.png"}
  assert len(result.written) == 3 * 4
  assert [m for _, m in result.renamed] == [
      f"{d / 'a.jpg'} -> {d / 'a.manga-2.png'} ({d / 'a.manga.png'} is an input)",
      f"{d / 'a.manga.png'} -> {d / 'a.manga.manga.png'} ({d / 'a.manga.png'} is an input)",
      f"{d / 'a.png'} -> {d / 'a.manga-3.png'} (the name is taken by another output)"]


@pytest.mark.parametrize("target, page", [("a.png", True), ("A.PNG", False), ("a.PNG", True),
                                          ("link.png", False)])
def test_a_named_output_that_is_any_input_is_refused(tmp_path, target, page):
  """Issue 15.1: `comic a.png b.jpg -o a.png --page` overwrote an input; so did -o A.PNG
  (another case) and a hard link to an input."""
  Image.fromarray(rgb()).save(tmp_path / "a.png")
  Image.fromarray(rgb()).save(tmp_path / "b.jpg", quality=90)
  os.link(tmp_path / "a.png", tmp_path / "link.png")
  before = _snapshot(tmp_path)
  inputs = [tmp_path / "a.png", tmp_path / "b.jpg"] if page else [tmp_path / "a.png"]
  with pytest.raises(ValueError, match=r"would overwrite the input .*a\.png; choose another -o"):
    run.comic_files(inputs, tmp_path / target, style="manga", page=page, progress=False)
  if target == "A.PNG":
    with pytest.raises(ValueError, match=r"would overwrite the input .*b\.jpg"):
      run.comic_files([tmp_path / "b.jpg"], tmp_path / "B.JPG", style="manga", progress=False)
  assert _snapshot(tmp_path) == before


def test_a_failed_write_costs_only_that_file(inputs, tmp_path, monkeypatch):
  """Issue 15.4: a full disk on one output aborted the whole batch with a traceback."""
  import errno
  real = run.save_image

  def flaky(path, img, **kw):
    if pathlib.Path(path).name == "colour.png":
      raise OSError(errno.ENOSPC, "No space left on device", str(path))
    return real(path, img, **kw)
  monkeypatch.setattr(run, "save_image", flaky)
  result = run.comic_files([inputs / "colour.png", inputs / "grey.png"], tmp_path / "out",
                           style="manga", progress=False)
  assert [p.name for p in result.written] == ["grey.png"]
  (path, message), = result.failures
  assert path == str(inputs / "colour.png")
  assert message.endswith(
      f"cannot write {tmp_path / 'out' / 'colour.png'}: No space left on device")
  assert no_temporaries(tmp_path)


def test_page_with_captions_and_layers(inputs, tmp_path):
  layout = page.PageLayout(columns=2, width=152, margin=8, gutter=8, border=2,
                           panel_aspect=0.75, caption_size=10)
  files = [inputs / "colour.png", inputs / "corrupt.png", inputs / "grey.png",
           inputs / "rgba.png"]
  result = run.comic_files(files, tmp_path / "page.png", style="manga", page=True, layers=True,
                           layout=layout, captions=["Meanwhile", None, "Later"],
                           progress=False)
  assert [pathlib.Path(p).name for p, _ in result.failures] == ["corrupt.png"]
  # 3 readable panels of 64 x 48 on a 2-column grid: 2 rows.
  with Image.open(tmp_path / "page.png") as im:
    assert im.size == (152, 8 + 48 + 8 + 48 + 8)
    pg = np.asarray(im)
  assert pg[:8].min() == 255 and pg[:, :8].min() == 255  # white margins
  assert pg[8:10, 8:72].max() == 0  # the black frame of panel 1 (border 2)
  assert pg[64:66, 80:144].min() == 255  # the gutter where panel 4 would be is paper
  letters = np.asarray(Image.open(tmp_path / "page.lettering.png"))
  # Captions stay with their input (the corrupt file's None goes with it):
  # colour.png "Meanwhile", grey.png "Later", rgba.png none.
  assert letters[..., 3][8:56, 8:72].max() == 255
  assert letters[..., 3][8:56, 80:144].max() == 255
  assert letters[..., 3][64:112, 8:72].max() == 0
  assert {p.name for p in tmp_path.iterdir()} >= {"page.ink.png", "page.tone.png",
                                                  "page.flat.png", "page.lettering.png"}


def test_page_captions_need_page(inputs, tmp_path):
  with pytest.raises(ValueError, match="--page"):
    run.comic_files([inputs / "colour.png"], tmp_path, style="manga", captions=["hi"],
                    progress=False)


def test_parse_knobs():
  assert run.parse_knobs(["line_weight=2", "tone_pattern=hatch", "smoothing=0.5"]) == {
      "line_weight": 2, "tone_pattern": "hatch", "smoothing": 0.5}
  with pytest.raises(ValueError, match="name=value"):
    run.parse_knobs(["line_weight"])


def test_examples(tmp_path, monkeypatch):
  photos = examples.example_photos(2, source="procedural")
  assert list(photos) == ["landscape0", "landscape1"]
  assert all(p.dtype == np.uint8 and p.shape == (384, 512, 3) for p in photos.values())
  assert np.abs(photos["landscape0"].astype(int) - photos["landscape1"]).mean() > 10
  small = {"a": rgb(), "b": procedural_photo(4, height=H, width=W)}
  monkeypatch.setattr(examples, "example_photos", lambda n, source: small)
  written = run.comic_examples(tmp_path, page_width=212)  # 48 x 64 panels, as the inputs
  assert {p.name for p in written} == {"a.png", "a.comic.png", "a.manga.png", "b.png",
                                       "b.comic.png", "b.manga.png", "page.png"}


def test_model_translator(inputs, tmp_path):
  """--model: the neural translator draws the layers; its style and knobs are checked."""
  from genjax.apps.comic import translator as tr
  from genjax.apps.comic.translator_data import make_key
  cfg = tr.TranslatorConfig(style="manga", channels=(8, 16), num_res_blocks=1)
  tr.save_translator(tmp_path / "model", tr.Translator(cfg, tr.init_params(cfg, make_key(0))))
  out = tmp_path / "out"
  result = run.comic_files([inputs / "colour.png", inputs / "rotated.jpg"], out, style="manga",
                           layers=True, tile=16, model=tmp_path / "model", progress=False)
  assert result.ok and len(result.written) == 8
  with Image.open(out / "rotated.png") as im:
    assert im.size == (W, H)
  # The written picture is the translator's drawing of the photo (8-bit rounding aside).
  from genjax.apps.comic.translator_tiles import translate_photo
  drawn = translate_photo(tr.load_translator(tmp_path / "model"), rgb(), tile=16).image
  expected = np.rint(np.clip(drawn, 0, 1) * 255)
  written = np.asarray(Image.open(out / "colour.png"), np.float32)
  assert np.abs(written - expected).max() <= 1, np.abs(written - expected).max()
  assert written.std() > 1, "a blank drawing would not tell translators apart"
  with pytest.raises(ValueError, match="draws style 'manga', not --style 'comic'"):
    run.comic_files([inputs], tmp_path / "x", style="comic", model=tmp_path / "model",
                    progress=False)
  with pytest.raises(ValueError, match="knob 'exposure' is fixed"):
    run.comic_files([inputs], tmp_path / "x", knobs={"exposure": 0.2}, style="manga",
                    model=tmp_path / "model", progress=False)
  assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("installed", [False, True])
def test_cli_examples_say_when_they_are_procedural(tmp_path, monkeypatch, capsys, installed):
  """Issue 15.11: without scikit-image the examples were procedural landscapes, silently."""
  from genjax import cli
  monkeypatch.setattr(examples, "have_skimage", lambda: installed)
  monkeypatch.setattr(run, "comic_examples", lambda out, seed: [tmp_path / "a.png"])
  assert cli.main(["comic", "--examples", "-o", str(tmp_path)]) == 0
  err = capsys.readouterr().err
  note = ("genjax: scikit-image is not installed: the examples are procedural landscapes, not "
          "its sample photos (pip install 'genjax-engine[examples]')")
  assert (note in err) != installed, err
