import pytest

# The tiny config made smaller still (8x16 images, width 16): every train test uses it.
TINY = (
    "data.image_size=(8, 16)",
    "data.num_examples=512",
    "model.base_channels=16",
    "model.channel_mult=(1, 2)",
    "model.attn_resolutions=(4,)",
    "model.num_heads=1",
    "train.batch_size=8",
    "train.warmup_steps=2",
    "train.log_every=1",
    "train.sample_every=1000",
    "train.num_sample_images=4",
    "train.sample_steps=4",
)


@pytest.fixture(scope="session")
def tiny_overrides():
  return list(TINY)
