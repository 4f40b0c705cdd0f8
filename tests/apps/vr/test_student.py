"""`genjax vr` on a distilled student's run folder: its own sampler and steps by default
(genjax.apps.vr.outpainting.sampling_for), an explicit --sampler / --steps still wins."""

import json
import shutil

import pytest

from genjax import cli, configs
from genjax.apps.vr import outpainting, run
from genjax.image import io


@pytest.fixture(scope="module")
def student(pano_run, tmp_path_factory):
  """The session's panorama run as a 4-step DDIM student of itself: its config.json says so
  as `genjax distill` writes it (distill.steps, distill.sampler, distill.teacher), the
  weights are the teacher's, so its outpainting must equal the teacher's at DDIM 4 steps."""
  folder = tmp_path_factory.mktemp("vr_student") / "student"
  shutil.copytree(pano_run, folder)
  config = json.loads((folder / "config.json").read_text())
  config["distill"].update(teacher=str(pano_run), steps=4, sampler="ddim")
  (folder / "config.json").write_text(json.dumps(config))
  return folder


def _config(folder):
  return configs.from_json((folder / "config.json").read_text())


def test_sampling_for_a_run_and_a_student(pano_run, student):
  assert outpainting.sampling_for(_config(pano_run)) == ("ddpm", 50)          # unchanged
  assert outpainting.sampling_for(None) == ("ddpm", 50)
  assert outpainting.sampling_for(_config(student)) == ("ddim", 4)
  assert outpainting.sampling_for(_config(student), steps=8) == ("ddim", 8)
  assert outpainting.sampling_for(_config(student), sampler="ddpm") == ("ddpm", 4)
  assert outpainting.sampling_for(_config(pano_run), sampler="unipc", steps=10) == ("unipc", 10)
  # RePaint (stereo holes) keeps a one-step sampler, a student's DDIM too.
  assert [outpainting.repaint_sampler(s) for s in ("ddim", "ddpm", "dpm++2m", "unipc")] == [
      "ddim", "ddpm", "ddpm", "ddpm"]


def _vr(tmp_path, photo, name, workdir, *extra, capsys):
  out = tmp_path / f"{name}.jpg"
  rc = cli.main(["vr", str(photo), "-o", str(out), "--workdir", str(workdir), "--fov", "60",
                 "--height", "32", *extra])
  assert rc == 0
  return out.read_bytes(), capsys.readouterr().out


@pytest.mark.slow
def test_vr_samples_a_student_with_its_own_sampler_and_steps(tmp_path, pano_run, student,
                                                             capsys):
  photo = io.save_image(tmp_path / "photo.png", run.demo_photo(hw=(48, 64)))
  own, printed = _vr(tmp_path, photo, "student", student, capsys=capsys)
  assert "sampler ddim, 4 steps" in printed
  # The same weights sampled as a normal run with --sampler ddim --steps 4: the same file.
  as_teacher, printed = _vr(tmp_path, photo, "teacher", pano_run, "--sampler", "ddim",
                            "--steps", "4", capsys=capsys)
  assert "sampler ddim, 4 steps" in printed and as_teacher == own
  # Explicit arguments override the student's own.
  other, printed = _vr(tmp_path, photo, "student_ddpm", student, "--sampler", "ddpm",
                       "--steps", "3", capsys=capsys)
  assert "sampler ddpm, 3 steps" in printed and other != own
  result = run.vr_files(photo, tmp_path / "lib.jpg", workdir=pano_run, fov=60.0,
                        out_height=32, sampler="ddpm", steps=3, progress=False)
  assert result.sampling == ("ddpm", 3)
  assert (tmp_path / "lib.jpg").read_bytes() == other
