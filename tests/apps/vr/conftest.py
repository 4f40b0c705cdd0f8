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
def pano_run(shared_training):
  """A panorama_tiny run trained for 200 steps (by config file, not by configs.NAMES)."""
  config_file = pathlib.Path(configs.__file__).parent / "panorama_tiny.py"
  return shared_training("panorama_tiny_run", configs.load(str(config_file), list(PANO_TINY)))
