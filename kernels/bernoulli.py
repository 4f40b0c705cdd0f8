"""`bernoulli(key, p, shape)`: jax.random.bernoulli's draw, bit for bit, in one XLA fusion.

jax lowers the Threefry-2x32 hash on the CPU as a 5-iteration while loop (to keep compile
times short), and its counters as materialized uint32 arrays: for a [B, H, W, C] dropout
mask XLA runs the counter fusion, then five loop iterations that each read and write two
uint32 arrays of the mask's size, then the comparison. On the CIFAR train step the
dropout masks' loops and counters were 3% of the step (`python -m benchmarks
step_profile`, benchmarks/README.md). Written out here, unrolled, the hash of each
element's counter is elementwise arithmetic that XLA fuses with the comparison into
the mask's consumers, with no array in between.

The same bits as jax.random.bernoulli(key, p, shape) (mode "low"): the partitionable
Threefry bits (jax_threefry_partitionable, jax's default: element i's counter is i as a
64-bit number, hashed with the key, the two halves xor-ed), the top 23 bits as a float in
[0, 1), compared with p in float32. Any other key implementation or configuration, and
arrays of 2**32 elements or more, go to jax.random.bernoulli itself.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _rotate_left(x, r):
  return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def threefry2x32(k1, k2, x1, x2):
  """The Threefry-2x32 hash (20 rounds), as jax's unrolled lowering: uint32 key words
  k1, k2 (scalars) and counter words x1, x2 (arrays) -> two uint32 arrays."""
  ks = (k1, k2, k1 ^ k2 ^ np.uint32(0x1BD11BDA))
  x = [x1 + ks[0], x2 + ks[1]]
  for i in range(5):
    for r in _ROTATIONS[i % 2]:
      x[0] = x[0] + x[1]
      x[1] = x[0] ^ _rotate_left(x[1], r)
    x = [x[0] + ks[(i + 1) % 3], x[1] + ks[(i + 2) % 3] + np.uint32(i + 1)]
  return x[0], x[1]


def _raw_threefry_key(key):
  """key's two uint32 words if it is a Threefry-2x32 key, else None."""
  if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    if "threefry2x32" not in str(jax.random.key_impl(key)):
      return None
    key = jax.random.key_data(key)
  elif jax.config.jax_default_prng_impl != "threefry2x32":
    return None
  if key.shape != (2,) or key.dtype != jnp.uint32:
    return None
  return key


def bernoulli(key: jax.Array, p: float, shape: tuple[int, ...]) -> jax.Array:
  """jax.random.bernoulli(key, p, shape), the same bits (see the module docstring).

  Args:
    key: a PRNG key (raw uint32 [2] or typed).
    p: the probability of True, a Python float (drawn in float32, as jax does).
    shape: the result's shape.
  Returns:
    bool [shape].
  """
  shape = tuple(int(d) for d in shape)
  words = _raw_threefry_key(key)
  n = math.prod(shape)
  if words is None or not jax.config.jax_threefry_partitionable or n >= 2**32 or n == 0:
    return jax.random.bernoulli(key, p, shape)
  counter = lax.iota(jnp.uint32, n).reshape(shape)  # the 64-bit counter's low word; high: 0
  b1, b2 = threefry2x32(words[0], words[1], jnp.zeros(shape, jnp.uint32), counter)
  float_bits = ((b1 ^ b2) >> np.uint32(9)) | np.uint32(0x3F800000)  # 1.0 + 23 random bits
  u = lax.bitcast_convert_type(float_bits, jnp.float32) - np.float32(1.0)
  return jnp.maximum(np.float32(0.0), u) < np.float32(p)
