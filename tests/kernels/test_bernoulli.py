"""genjax.kernels.bernoulli draws jax.random.bernoulli's bits exactly, without its loop."""

import jax
import numpy as np
import pytest

from genjax.kernels.bernoulli import bernoulli, threefry2x32


@pytest.mark.parametrize("shape,p", [((7,), 0.5), ((2, 3, 5, 4), 0.9), ((4, 8, 8, 16), 0.1)])
@pytest.mark.parametrize("make_key", [jax.random.PRNGKey, jax.random.key])
def test_same_bits_as_jax(shape, p, make_key):
  key = jax.random.fold_in(make_key(3), 11)
  want = np.asarray(jax.random.bernoulli(key, p, shape))
  got = np.asarray(jax.jit(lambda k: bernoulli(k, p, shape))(key))
  assert got.dtype == np.bool_ and got.shape == shape
  np.testing.assert_array_equal(got, want)


def test_threefry_known_answer():
  # The Threefry-2x32 (20 rounds) test vector of Salmon et al. (Random123), also jax's.
  k = np.uint32([0x13198A2E, 0x03707344])
  x = np.uint32([0x243F6A88, 0x85A308D3])
  y1, y2 = threefry2x32(k[0], k[1], x[:1], x[1:])
  assert (int(y1[0]), int(y2[0])) == (0xC4923A9C, 0x483DF7A0)


def test_other_key_implementations_go_to_jax():
  key = jax.random.key(5, impl="rbg")
  np.testing.assert_array_equal(np.asarray(bernoulli(key, 0.7, (3, 4))),
                                np.asarray(jax.random.bernoulli(key, 0.7, (3, 4))))
