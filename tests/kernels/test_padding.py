"""Padding modes against the independent index-map reference, and the split into
explicit padding plus the convolution's own zero padding."""

import jax.numpy as jnp
import numpy as np
import pytest

from genjax.kernels import padding
from genjax.kernels.conv_reference import pad_reference


@pytest.mark.parametrize("mode", padding.MODES)
@pytest.mark.parametrize("ph, pw", [(1, 1), (0, 1), (1, 0), (2, 2)])
def test_pad_matches_reference(mode, ph, pw):
  x = np.random.default_rng(0).standard_normal((2, 5, 6, 3)).astype(np.float32)
  np.testing.assert_array_equal(padding.pad(jnp.asarray(x), ph, pw, mode),
                                pad_reference(x, ph, pw, mode))


def test_sphere_padding_is_the_pole_neighbour():
  x = np.arange(2 * 4 * 6 * 1, dtype=np.float32).reshape(2, 4, 6, 1)
  p = np.asarray(padding.pad(jnp.asarray(x), 1, 1, "SPHERE"))
  # Above row 0 at longitude column c sits row 0 at column c + W/2 (across the pole).
  np.testing.assert_array_equal(p[:, 0, 1:-1], np.roll(x[:, 0], 3, axis=1))
  np.testing.assert_array_equal(p[:, -1, 1:-1], np.roll(x[:, -1], 3, axis=1))
  # And the corners wrap in longitude too.
  np.testing.assert_array_equal(p[:, 0, 0], p[:, 0, -2])


@pytest.mark.parametrize("mode", padding.MODES)
@pytest.mark.parametrize("ph, pw", [(1, 1), (0, 0)])
def test_conv_operand_plus_zero_padding_is_pad(mode, ph, pw):
  """Explicit part, then the conv's zero padding, equals the full padding (plus zero
  rows at the bottom that the callers crop)."""
  x = np.random.default_rng(0).standard_normal((1, 4, 6, 2)).astype(np.float32)
  xe, pads = padding.conv_operand(jnp.asarray(x), ph, pw, mode)
  # The slow all-VALID case only where there is no padding at all (1x1 kernels).
  assert (pads == ((0, 0), (0, 0))) == (ph == pw == 0)
  full = np.pad(np.asarray(xe), ((0, 0), *pads, (0, 0)))
  ref = pad_reference(x, ph, pw, mode)
  np.testing.assert_array_equal(full[:, :ref.shape[1], :ref.shape[2]], ref)
  assert not full[:, ref.shape[1]:].any() and not full[:, :, ref.shape[2]:].any()


@pytest.mark.parametrize("shape, mode, message", [
    ((1, 4, 5, 1), "SPHERE", "even width"),
    ((1, 4, 1, 1), "CIRCULAR_W", "width >= 2"),
    ((1, 4, 4, 1), "REFLECT", "padding must be one of"),
])
def test_bad_padding(shape, mode, message):
  with pytest.raises(ValueError, match=message):
    padding.pad(jnp.zeros(shape), 2, 2, mode)
