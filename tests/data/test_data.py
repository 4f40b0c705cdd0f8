"""Decoding of every image mode, procedural panoramas, and the Grain pipeline's order."""

import numpy as np
import pytest
from PIL import Image

from genjax import configs, data
from genjax.data.decode import ImageDecodeError, load_rgb

BIG = 10 ** 8


def test_modes_convert_to_correct_rgb(tmp_path):
  rgb = np.zeros((4, 6, 3), np.uint8)
  rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 30
  Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.tif")
  np.testing.assert_allclose(load_rgb(tmp_path / "cmyk.tif", max_pixels=BIG), rgb, atol=2)

  g16 = np.full((3, 5), 65535 // 2, np.uint16)
  Image.fromarray(g16).save(tmp_path / "g16.png")
  out = load_rgb(tmp_path / "g16.png", max_pixels=BIG)
  assert out.shape == (3, 5, 3) and abs(int(out[0, 0, 0]) - 127) <= 1  # scaled, not clipped

  rgba = np.zeros((2, 2, 4), np.uint8)
  rgba[0, 0] = (255, 0, 0, 255)  # opaque red; the rest fully transparent -> white
  Image.fromarray(rgba).save(tmp_path / "rgba.png")
  out = load_rgb(tmp_path / "rgba.png", max_pixels=BIG)
  np.testing.assert_array_equal(out[0, 0], [255, 0, 0])
  np.testing.assert_array_equal(out[1, 1], [255, 255, 255])

  pal = Image.fromarray(rgba[..., :3]).convert("P")
  pal.save(tmp_path / "pal.png", transparency=int(np.asarray(pal)[1, 1]))
  assert load_rgb(tmp_path / "pal.png", max_pixels=BIG)[1, 1].tolist() == [255, 255, 255]


def test_exif_orientation_is_applied(tmp_path):
  img = np.zeros((4, 8, 3), np.uint8)
  img[0, 0] = 255
  exif = Image.Exif()
  exif[0x0112] = 6  # rotate 90 degrees clockwise for display
  Image.fromarray(img).save(tmp_path / "rot.jpg", exif=exif, quality=100)
  assert load_rgb(tmp_path / "rot.jpg", max_pixels=BIG).shape == (8, 4, 3)


def test_decompression_bomb_is_refused(tmp_path):
  Image.new("1", (3000, 3000)).save(tmp_path / "bomb.png")
  with pytest.raises(ImageDecodeError, match="decompression bomb"):
    load_rgb(tmp_path / "bomb.png", max_pixels=1_000_000)


def test_panorama_is_deterministic_seamless_and_sky_over_ground():
  a = data.panorama(3, height=32, width=64).astype(np.float64)
  np.testing.assert_array_equal(a, data.panorama(3, height=32, width=64))
  assert not np.array_equal(a, data.panorama(4, height=32, width=64))
  seam = np.abs(a[:, -1] - a[:, 0]).mean()
  interior = np.abs(np.diff(a, axis=1)).mean()
  assert seam <= 1.5 * interior + 1.0
  top, bottom = a[:8].mean(axis=(0, 1)), a[-8:].mean(axis=(0, 1))
  assert top[2] > bottom[2] and top.sum() > bottom.sum()


def test_pipeline_order_is_independent_of_process_count_and_resumes():
  cfg = configs.load("tiny", ["data.image_size=(8, 16)"]).data
  one = iter(data.make_loader(cfg, global_batch_size=8, seed=5, shard_index=0, shard_count=1))
  batches = [next(one)["image"] for _ in range(3)]
  state = one.get_state()
  nxt = next(one)["image"]
  halves = [iter(data.make_loader(cfg, global_batch_size=8, seed=5, shard_index=p,
                                  shard_count=2)) for p in range(2)]
  for k in range(3):
    np.testing.assert_array_equal(np.concatenate([next(h)["image"] for h in halves]), batches[k])
  resumed = iter(data.make_loader(cfg, global_batch_size=8, seed=5, shard_index=0, shard_count=1))
  resumed.set_state(state)
  np.testing.assert_array_equal(next(resumed)["image"], nxt)
  skipped = iter(data.make_loader(cfg, global_batch_size=8, seed=5, shard_index=0,
                                  shard_count=1, start_batch=3))
  np.testing.assert_array_equal(next(skipped)["image"], nxt)


def test_worker_processes_give_the_same_batches_and_resume():
  """data.worker_count > 0 (Grain's worker processes, started in a program that is not an
  absl app): the batches of the in-process pipeline, in order, and an iterator restored from
  a saved state continues with the batch that came next."""
  cfg = configs.load("tiny", ["data.image_size=(8, 16)"]).data
  plain = iter(data.make_loader(cfg, global_batch_size=8, seed=5, shard_index=0, shard_count=1))
  want = [next(plain) for _ in range(4)]
  cfg.worker_count = 1
  workers = iter(data.make_loader(cfg, global_batch_size=8, seed=5, shard_index=0,
                                  shard_count=1))
  got = [next(workers) for _ in range(3)]
  state = workers.get_state()
  resumed = iter(data.make_loader(cfg, global_batch_size=8, seed=5, shard_index=0,
                                  shard_count=1))
  resumed.set_state(state)
  got.append(next(resumed))
  for w, g in zip(want, got, strict=True):
    np.testing.assert_array_equal(g["image"], w["image"])
    np.testing.assert_array_equal(g["label"], w["label"])
