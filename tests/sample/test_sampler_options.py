"""Sampler options on the command line (`--sampler-option KEY=VALUE`) reach the sampler."""

import numpy as np
import pytest
from PIL import Image

from genjax import cli
from genjax.sample.sampler import check_sampler_options, parse_sampler_options


def test_parse_and_check():
  opts = parse_sampler_options(["order=3", "variant=bh1", "corrector=False", "eta = 0.5"])
  assert opts == {"order": 3, "variant": "bh1", "corrector": False, "eta": 0.5}
  assert check_sampler_options("unipc", {"order": 3}) == {"order": 3}
  with pytest.raises(ValueError, match="sampler 'ddim' has no option 'order'; its options: eta"):
    check_sampler_options("ddim", {"order": 3})
  with pytest.raises(ValueError, match="KEY=VALUE"):
    parse_sampler_options(["=3"])


def test_unipc_order_1_without_corrector_is_ddim_through_the_cli(trained_run, tmp_path):
  """UniP-1 (no corrector) is the first-order exponential integrator in x0: DDIM. Ignored
  options would give unipc's default (order 2 with the UniC corrector), which differs from
  DDIM at 3 steps (by more than 1 of 255 on average: checked when this test was written)."""
  def images(name, *extra):
    out = tmp_path / name
    assert cli.main(["sample", f"--workdir={trained_run}", "-o", str(out), "--n", "2",
                     "--steps", "3", *extra]) == 0
    return np.stack([np.asarray(Image.open(out / f"sample_{i:05d}.png"), np.float32)
                     for i in range(2)])
  ddim = images("ddim", "--sampler", "ddim")
  unip1 = images("unip1", "--sampler", "unipc", "--sampler-option", "order=1",
                 "--sampler-option", "corrector=False")
  assert np.abs(unip1 - ddim).max() <= 1.0           # 8-bit rounding of equal floats
