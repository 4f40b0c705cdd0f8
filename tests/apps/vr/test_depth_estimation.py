"""genjax/apps/vr/depth_estimation.py: the methods behind one interface, the shipped depth UNet's
accuracy on held-out procedural rooms, and stereo from estimated depth on the ray-cast scene."""

import functools
import math

import jax
import numpy as np
import pytest

from genjax import configs
from genjax.apps.vr import depth_estimation, photo_placement, scene, stereo
from genjax.train import loop, sharding


def test_auto_and_errors(tmp_path):
  assert depth_estimation.resolve("auto") == "unet"
  assert depth_estimation.resolve("auto", "w.safetensors") == "depth_anything"
  with pytest.raises(depth_estimation.DepthModelError, match="valid: auto, unet, depth_anything"):
    depth_estimation.resolve("midas")
  photo = np.zeros((32, 32, 3), np.uint8)
  with pytest.raises(depth_estimation.DepthModelError, match="needs its weights file"):
    depth_estimation.estimate_depth(photo, method="depth_anything")
  with pytest.raises(depth_estimation.DepthModelError, match="nowhere.safetensors: no such"):
    depth_estimation.estimate_depth(photo, method="depth_anything",
                                    weights=tmp_path / "nowhere.safetensors")
  bad = tmp_path / "bad.msgpack"
  bad.write_bytes(b"not msgpack")
  with pytest.raises(depth_estimation.DepthModelError, match="not a genjax depth weights"):
    depth_estimation.estimate_depth(photo, method="unet", weights=bad)


def test_unet_grid():
  assert depth_estimation.unet_grid((480, 640)) == (96, 128)
  assert depth_estimation.unet_grid((96, 96)) == (96, 96)
  assert depth_estimation.unet_grid((50, 70)) == (96, 136)


def test_shipped_unet_gives_depth_of_the_photo_size():
  photo = (np.random.default_rng(0).uniform(size=(50, 70, 3)) * 255).astype(np.uint8)
  d = depth_estimation.estimate_depth(photo)
  assert d.shape == (50, 70) and d.dtype == np.float32 and np.all(d > 0)


@pytest.mark.slow
def test_briefly_trained_unet_beats_a_constant(tmp_path):
  """genjax train --config=depth_tiny, tiny and brief, through the engine's loop: on held-out
  rooms it beats the best constant depth in AbsRel and delta1; a run started from its
  exported weights or its checkpoint folder (train.init_params) starts from exactly them."""
  overrides = ["data.image_size=(32, 32)", "model.channel_mult=(1, 2)",
               "train.sample_every=150", "train.log_every=50", "train.num_sample_images=2",
               "train.ema_decay=0.9", "kernels.conv_impl=xla"]
  config = configs.load("depth_tiny", overrides + ["train.num_steps=150",
                                                   "train.checkpoint_every=150"])
  summary = loop.train(config, tmp_path / "run", progress=False)
  assert summary.final_step == 150 and (tmp_path / "run" / "samples.png").is_file()
  weights = depth_estimation.export_weights(tmp_path / "run", tmp_path / "d.msgpack")
  m = depth_estimation.evaluate_on_rooms(
      functools.partial(depth_estimation.estimate_depth, method="unet", weights=weights),
      n=32, hw=(32, 32))
  print(f"\nheld-out rooms, 150 steps: {m}")
  # Measured: AbsRel 0.488 against the constant's 0.594, delta1 0.318 against 0.281.
  assert m["abs_rel"] < 0.95 * m["constant_abs_rel"]
  assert m["delta1"] > m["constant_delta1"] + 0.01

  # train.init_params: a fresh run's state starts from the exported weights (fine-tuning),
  # params and EMA alike, with a fresh optimizer state; a file of another model is refused.
  from flax import serialization
  _, _, tx, _, create = loop.build(config)
  mesh = sharding.make_mesh(config.mesh)
  key = jax.random.PRNGKey(0)
  shardings = sharding.state_shardings(jax.eval_shape(create, key), mesh)
  state = loop.start_from(jax.jit(create, out_shardings=shardings)(key), weights, tx, shardings)
  saved = serialization.msgpack_restore(weights.read_bytes())["params"]
  jax.tree.map(np.testing.assert_array_equal, dict(state.params), saved)
  jax.tree.map(np.testing.assert_array_equal, dict(state.ema_params), saved)
  assert all(float(np.abs(np.asarray(a)).max()) == 0.0 for a in jax.tree.leaves(state.opt_state)
             if np.issubdtype(np.asarray(a).dtype, np.floating))   # Adam's moments start at 0
  # ... or from a run's checkpoint folder (RUN/checkpoints/STEP, as a distillation student
  # starts from its teacher): its EMA params, the ones the weights file holds.
  from_run = loop.start_from(state, tmp_path / "run" / "checkpoints" / "150", tx, shardings)
  jax.tree.map(np.testing.assert_array_equal, dict(from_run.ema_params), saved)
  saved["conv_in"] = {"bias": np.zeros(3, np.float32)}
  bad = tmp_path / "bad.msgpack"
  bad.write_bytes(serialization.msgpack_serialize({"params": saved}))
  with pytest.raises(ValueError, match="do not match the model"):
    loop.start_from(state, bad, tx, shardings)


def test_shipped_unet_on_held_out_rooms():
  m = depth_estimation.evaluate_on_rooms(depth_estimation.estimate_depth, n=32)
  print(f"\nshipped depth UNet, 32 held-out rooms: {m}")
  # Measured (the shipped weights, 32 rooms): AbsRel 0.374 against 0.595, delta1 0.386 against
  # 0.280 (64 rooms: 0.418 against 0.706, 0.404 against 0.267).
  assert m["abs_rel"] < 0.7 * m["constant_abs_rel"]
  assert m["delta1"] > m["constant_delta1"] + 0.05


def _psnr(a, b, mask):
  mse = float(np.mean((a[mask] - b[mask]) ** 2))
  return 10 * math.log10(1.0 / max(mse, 1e-12))


STEREO_HW, STEREO_BASELINE = (96, 128), 0.1
HELD_OUT_ROOMS = (50_000_000, 50_000_001, 50_000_002)   # never trained on, never selected on


def _raycast_scene():
  """(left, right [H, W, 3] in [0, 1], true z-depth [H, W], focal_px): genjax.apps.vr.scene."""
  (h, w), focal = STEREO_HW, 110.0
  render = jax.jit(scene.render, static_argnames=("height", "width", "supersample"))
  left, depth = (np.asarray(a) for a in render(0.0, height=h, width=w, focal_px=focal))
  right = np.asarray(render(STEREO_BASELINE, height=h, width=w, focal_px=focal)[0])
  hfov = math.degrees(2 * math.atan(w / 2 / focal))
  assert photo_placement.focal_px((h, w), hfov) == pytest.approx(focal)
  return left, right, depth, focal


def _room_pair(index):
  """The same for a held-out procedural room (genjax.data.rooms), its right eye rendered
  STEREO_BASELINE to the right of its camera, 3 x 3 rays a pixel."""
  from genjax.data import rooms
  (h, w) = STEREO_HW
  left, depth, hfov = rooms.room(index, height=h, width=w, supersample=3)
  right, _, _ = rooms.room(index, height=h, width=w, supersample=3, eye_shift=STEREO_BASELINE)
  focal = photo_placement.focal_px((h, w), hfov)
  return left / 255.0, right / 255.0, depth, focal


@pytest.fixture(scope="module")
def warp():
  return jax.jit(stereo.warp_to_right_eye)


def test_room_right_eye_is_the_true_depth_warp_of_its_left_eye(warp):
  """rooms.room(eye_shift=b) is the right eye of a parallel pair: the left eye warped with
  its true depth reproduces it outside the disocclusions (a wrong eye shift, here -b, or a
  wrong focal length would not), so held-out rooms can score stereo like the ray-cast scene."""
  left, right, depth, focal = _room_pair(HELD_OUT_ROOMS[0])
  def score(baseline):
    r, holes = (np.asarray(a) for a in warp(left, depth, baseline=baseline, focal_px=focal))
    return _psnr(r, right, ~holes)
  assert score(STEREO_BASELINE) > 38.0
  assert score(-STEREO_BASELINE) < score(STEREO_BASELINE) - 8.0


@pytest.mark.xfail(strict=True, reason=(
    "the shipped depth UNet is not there yet: stereo PSNR from its depth against from the true "
    "depth, measured: ray-cast scene 32.1 against 43.5 dB (a constant depth: 34.6 dB; it puts "
    "that 2.7-9 m room at 1.6-6.0 m, and rescaled by its median error it scores 32.8 dB: its "
    "shape is wrong, not only its scale), held-out rooms 44.2 / 54.5, 42.7 / 54.2 and 25.8 / "
    "44.5 dB. For scale: the true depth scaled by 0.9 or 1.2 gives 41.2 / 40.4 dB on the scene. "
    "Strict: remove this mark when it passes."))
def test_stereo_from_estimated_depth_is_close_to_true_depth(warp):
  """On ray-cast scenes, the ray-cast test scene (genjax.apps.vr.scene) and three held-out
  procedural rooms: the right eye warped with the shipped UNet's depth against the one warped
  with the true depth, both scored against the rendered right eye outside the disocclusions
  of either; the estimate must be within 2 dB of the truth on every scene."""
  scenes = {"raycast scene": _raycast_scene()}
  scenes.update({f"room {i}": _room_pair(i) for i in HELD_OUT_ROOMS})
  gaps = {}
  for name, (left, right, depth, focal) in scenes.items():
    est = depth_estimation.estimate_depth(np.round(left * 255).astype(np.uint8))
    r_true, holes_true = (np.asarray(a) for a in warp(left, depth, baseline=STEREO_BASELINE,
                                                     focal_px=focal))
    r_est, holes_est = (np.asarray(a) for a in warp(left, est, baseline=STEREO_BASELINE,
                                                   focal_px=focal))
    mask = ~holes_true & ~holes_est
    p_true, p_est = _psnr(r_true, right, mask), _psnr(r_est, right, mask)
    gaps[name] = p_true - p_est
    print(f"\n{name}: stereo PSNR outside disocclusions: true depth {p_true:.2f} dB, estimated "
          f"{p_est:.2f} dB (AbsRel of the estimate {np.mean(np.abs(est - depth) / depth):.3f})")
  assert max(gaps.values()) < 2.0, gaps


def test_depth_anything_method_runs_the_port_from_a_converted_file(tmp_path):
  """--depth depth_anything: the .npz the converter writes -> metres, the nearest where the
  port's inverse depth is largest, the range mapped onto [near, far]."""
  from genjax.models import depth_anything as da
  config = da.DepthAnythingConfig(hidden_size=32, num_layers=2, num_heads=2, out_indices=(1, 2),
                                  image_size=28, features=8, out_channels=(8, 16),
                                  reassemble_factors=(2, 1), head_hidden_size=8)
  x = np.zeros((1, 28, 28, 3), np.float32)
  params = da.DepthAnything(config).init(jax.random.PRNGKey(0), x)["params"]
  weights = tmp_path / "da.npz"
  da.save_npz(weights, params, config)
  photo = (np.random.default_rng(1).uniform(size=(30, 44, 3)) * 255).astype(np.uint8)
  z = depth_estimation.estimate_depth(photo, method="depth_anything", weights=weights,
                                      near=1.0, far=100.0)
  inv = np.asarray(da.predict_depth(params, photo, config=config))
  assert z.shape == (30, 44) and np.isfinite(z).all()
  np.testing.assert_allclose([z.min(), z.max()], [1.0, 100.0], rtol=1e-3)
  assert np.unravel_index(np.argmin(z), z.shape) == np.unravel_index(np.argmax(inv), inv.shape)
  bad = tmp_path / "bad.npz"
  bad.write_bytes(b"no zip")
  with pytest.raises(depth_estimation.DepthModelError, match="bad.npz"):
    depth_estimation.estimate_depth(photo, method="depth_anything", weights=bad)
