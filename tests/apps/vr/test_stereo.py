"""Depth-image-based rendering against a ray-cast scene with exact depth; stereo layouts."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.apps.vr import scene, stereo

H, W, FOCAL, BASELINE = 96, 128, 110.0, 0.25
# Measured: PSNR 42.9 dB, hole IoU 0.936. A disparity 10 % too large gives 37.0 dB and IoU
# 0.82, one 3 % too large 41.0 dB and 0.92, one rounded to whole pixels 41.1 dB and 0.87.
MIN_PSNR_DB = 40.0     # warped left vs rendered right, outside the holes
MIN_HOLE_IOU = 0.9     # holes vs the exact disocclusions of the scene


@functools.cache
def rendered():
  """(left rgb, left depth, right rgb, right depth) of the test scene, NumPy."""
  render = jax.jit(scene.render, static_argnames=("height", "width", "supersample"))
  left, left_depth = render(0.0, height=H, width=W, focal_px=FOCAL)
  right, right_depth = render(BASELINE, height=H, width=W, focal_px=FOCAL)
  return tuple(np.asarray(a) for a in (left, left_depth, right, right_depth))


warp = jax.jit(stereo.warp_to_right_eye)


def psnr(a, b, keep) -> float:
  mse = ((np.asarray(a, np.float64) - b) ** 2).mean(-1)[keep].mean()
  return float(10 * np.log10(1.0 / mse))


def test_warp_matches_rendered_right_eye(record_property):
  left, left_depth, right, right_depth = rendered()
  synth, holes = warp(jnp.asarray(left), jnp.asarray(left_depth), baseline=BASELINE,
                      focal_px=FOCAL)
  synth, holes = np.asarray(synth), np.asarray(holes)
  quality = psnr(synth, right, ~holes)
  record_property("psnr_db", quality)
  print(f"warped left vs rendered right: PSNR {quality:.1f} dB outside holes, "
        f"holes {holes.mean():.1%}")
  assert quality >= MIN_PSNR_DB
  assert psnr(rendered()[0], right, ~holes) < quality - 10  # the unwarped left is far worse

  # Exact disocclusions: right-eye points whose left-eye projection lands on a nearer surface
  # (or outside the left image).
  x = np.arange(W)[None, :] + 0.5
  x_left = x + FOCAL * BASELINE / right_depth
  col = np.floor(x_left).astype(int)
  seen_depth = np.take_along_axis(left_depth, np.clip(col, 0, W - 1), axis=1)
  visible = (col >= 0) & (col < W) & (np.abs(seen_depth - right_depth) < 0.02 * right_depth)
  true_holes = ~visible
  iou = (true_holes & holes).sum() / (true_holes | holes).sum()
  assert iou >= MIN_HOLE_IOU, iou
  # Disocclusions are right of the foreground: the sphere's right edge in the right view.
  assert holes[:, -3:].all()  # the strip the left eye never saw
  assert 0.01 < holes.mean() < 0.15


def test_constant_depth_is_an_exact_shift():
  rng = np.random.default_rng(0)
  img = jnp.asarray(rng.uniform(size=(6, 20, 3)), jnp.float32)
  depth = jnp.full((6, 20), 5.0)
  right, holes = warp(img, depth, baseline=0.2, focal_px=50.0)   # d = 50 * 0.2 / 5 = 2 px
  np.testing.assert_allclose(right[:, :-2], img[:, 2:], atol=1e-6)
  np.testing.assert_array_equal(holes, np.broadcast_to(np.arange(20) >= 18, (6, 20)))
  # The convergence plane has zero parallax: the right eye equals the left.
  same, none = warp(img, depth, baseline=0.2, focal_px=50.0, convergence=5.0)
  np.testing.assert_allclose(same, img, atol=1e-6)
  assert not np.asarray(none).any()


def test_z_buffer_keeps_the_nearest_surface():
  """A near square (d = 5 px) over a far wall (d = 1 px): the square moves 5 px left over
  the wall, and a 4-px disocclusion opens on its right."""
  img = np.zeros((8, 32, 3), np.float32)
  depth = np.full((8, 32), 10.0, np.float32)                  # 10 * 1 / 10 = 1 px
  img[2:6, 12:18] = 1.0
  depth[2:6, 12:18] = 2.0                                      # 10 / 2 = 5 px
  right, holes = warp(jnp.asarray(img), jnp.asarray(depth), baseline=1.0, focal_px=10.0)
  right, holes = np.asarray(right), np.asarray(holes)
  np.testing.assert_array_equal(right[2:6, 7:13], 1.0)        # the square, shifted 5 px
  np.testing.assert_array_equal(right[2:6, :7], 0.0)
  np.testing.assert_array_equal(holes[2:6, 13:17], True)      # d_near - d_far = 4 columns
  np.testing.assert_array_equal(right[2:6, 13:17], 0.0)       # filled with the far wall
  np.testing.assert_array_equal(holes[2:6, 17:31], False)
  np.testing.assert_array_equal(holes[:, 31], True)           # beyond the left image


def test_warp_is_differentiable():
  left, left_depth, _, _ = rendered()
  g_img, g_depth = jax.jit(jax.grad(
      lambda im, d: stereo.warp_to_right_eye(im, d, baseline=BASELINE, focal_px=FOCAL)[0].sum(),
      argnums=(0, 1)))(jnp.asarray(left[:16, :32]), jnp.asarray(left_depth[:16, :32]))
  assert np.isfinite(g_img).all() and np.isfinite(g_depth).all()
  assert np.abs(g_depth).sum() > 0


def test_layouts():
  l = jnp.asarray(np.random.default_rng(1).uniform(size=(4, 8, 3)), jnp.float32)
  r = l[:, ::-1]
  an = stereo.anaglyph_red_cyan(l, r)
  np.testing.assert_array_equal(an[..., 0], l[..., 0])
  np.testing.assert_array_equal(an[..., 1:], r[..., 1:])
  gray = stereo.anaglyph_red_cyan(l, r, mode="gray")
  np.testing.assert_allclose(gray[..., 0], l @ jnp.asarray([0.299, 0.587, 0.114]), atol=1e-6)
  np.testing.assert_allclose(gray[..., 1], gray[..., 2])
  with pytest.raises(ValueError, match="valid: \\['color', 'gray', 'half_color'\\]"):
    stereo.anaglyph_red_cyan(l, r, mode="dubois")
  sbs = stereo.side_by_side(l, r)
  assert sbs.shape == (4, 16, 3)
  np.testing.assert_array_equal(sbs[:, :8], l)
  ou = stereo.over_under(l, r)
  assert ou.shape == (8, 8, 3)
  np.testing.assert_array_equal(ou[4:], r)
  with pytest.raises(ValueError, match="differ"):
    stereo.side_by_side(l, r[:, :4])


def test_ods_over_under_is_square_left_on_top():
  pl = jnp.zeros((8, 16, 3))
  pr = jnp.ones((8, 16, 3))
  ods = stereo.ods_over_under(pl, pr)
  assert ods.shape == (16, 16, 3)
  np.testing.assert_array_equal(ods[:8], 0)
  np.testing.assert_array_equal(ods[8:], 1)
  with pytest.raises(ValueError, match="2:1"):
    stereo.ods_over_under(jnp.zeros((8, 8, 3)), jnp.zeros((8, 8, 3)))
