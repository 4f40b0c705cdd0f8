"""phi functions against a float64 reference, across the switch from series to recursion."""

import math

import jax.numpy as jnp
import numpy as np
from scipy import integrate

from genjax.diffusion.phi import phi_functions

Z = np.array([-40.0, -8.0, -2.5, -1.0001, -0.9999, -0.5, -1e-2, -1e-4, -1e-7, 0.0, 0.3])


def phi_reference(z, k):
  """phi_k(z) = int_0^1 e^((1 - u) z) u^(k-1) / (k-1)! du, float64 quadrature."""
  return integrate.quad(lambda u: math.exp((1 - u) * z) * u ** (k - 1) / math.factorial(k - 1),
                        0.0, 1.0, epsabs=0, epsrel=1e-13)[0]


def test_phi_functions_match_float64():
  got = phi_functions(jnp.asarray(Z, jnp.float32), 4)
  for k in range(1, 5):
    ref = np.array([phi_reference(float(np.float32(z)), k) for z in Z])
    np.testing.assert_allclose(np.asarray(got[k - 1], np.float64), ref, rtol=3e-6, err_msg=f"phi_{k}")
  # phi_k(0) = 1 / k!, and the final sampling step's z = -inf gives 0, not NaN.
  np.testing.assert_allclose([float(p[Z == 0.0][0]) for p in got],
                             [1.0, 0.5, 1 / 6, 1 / 24], rtol=1e-7)
  assert [float(p) for p in phi_functions(jnp.float32(-jnp.inf), 3)] == [0.0, 0.0, 0.0]
