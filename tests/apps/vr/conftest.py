"""A small trained panorama_tiny run, shared by the VR tests of one session (worker)."""

import pathlib

import pytest

from genjax import configs

# panorama_tiny made small (as tests/conftest.py's TINY, but 16x32 so a photo covers pixels).
PANO_TINY = (
    "data.image_size=(16, 32)", "data.num_examples=512", "model.base_channels=16",
    "model.channel_mult=(1, 2)", "model.attn_resolutions=(8,)", "model.num_heads=1",
    "train.batch_size=8", "train.warmup_steps=2", "train.num_steps=200",
    "train.checkpoint_every=200", "train.log_every=50", "train.sample_every=1000",
    "train.num_sample_images=4", "train.sample_steps=4",
)


@pytest.fixture(scope="session")
def pano_run(tmp_path_factory):
  """A panorama_tiny run trained for 200 steps (by config file, not by configs.NAMES)."""
  from genjax.train import loop
  workdir = tmp_path_factory.getbasetemp() / "panorama_tiny_run"
  if not (workdir / "summary.json").is_file():
    config_file = pathlib.Path(configs.__file__).parent / "panorama_tiny.py"
    loop.train(configs.load(str(config_file), list(PANO_TINY)), workdir, progress=False)
  return workdir
