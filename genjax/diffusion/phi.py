"""The phi functions of exponential integrators, accurate in float32 for every step size.

  phi_0(z) = e^z,  phi_k(z) = (phi_{k-1}(z) - 1 / (k-1)!) / z = sum_{j>=0} z^j / (j + k)!

The multistep solvers (DPM-Solver++, UniPC) write their coefficients with them at
z = -h, h the step in log-SNR / 2 (Hochbruck & Ostermann 2010, "Exponential
integrators", sec. 2.1; Lu et al. 2022, DPM-Solver++, eq. 9; Zhao et al. 2023, UniPC,
Appendix). The recursion loses about k digits of log10(1 / |z|) near z = 0 (phi_3 at
h = 0.01 would have no correct digit in float32), so |z| < 1 uses the Taylor series.
"""

import math

import jax
import jax.numpy as jnp

# Taylor terms for |z| < 1: the first left out is below 1 / 18! ~ 1.6e-16.
_TERMS = 16


def phi_functions(z: jax.Array, n: int) -> list[jax.Array]:
  """[phi_1(z), ..., phi_n(z)], each shaped like z (float32); z <= 0 finite (z = -inf: 0)."""
  z = jnp.asarray(z, jnp.float32)
  small = jnp.abs(z) < 1.0
  # Recursion where |z| >= 1 (z_r = -1 elsewhere, only to keep the unused branch finite).
  z_r = jnp.where(small, -1.0, z)
  rec, prev = [], jnp.exp(z_r)
  for k in range(1, n + 1):
    prev = (prev - 1.0 / math.factorial(k - 1)) / z_r
    rec.append(prev)
  # Taylor series where |z| < 1, summed from the smallest term (Horner form).
  z_s = jnp.where(small, z, 0.0)
  out = []
  for k in range(1, n + 1):
    acc = jnp.zeros_like(z_s)
    for j in reversed(range(_TERMS)):
      acc = acc * z_s + 1.0 / math.factorial(j + k)
    out.append(jnp.where(small, acc, rec[k - 1]))
  return out
