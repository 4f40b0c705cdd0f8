"""A float64 NumPy reference for fused_conv3x3 and its gradients (tests and benchmarks only).

    y = conv3x3(SiLU(GroupNorm(x))) + bias (+ residual)

The gradients are written out by the chain rule (conv taps, SiLU' and the closed-form
GroupNorm backward), independent of JAX's autodiff.
"""

import numpy as np

from genjax.kernels.conv_reference import conv2d_reference, pad_reference


def _groups(x: np.ndarray, num_groups: int) -> np.ndarray:
  b, h, w, c = x.shape
  return x.reshape(b, h * w, num_groups, c // num_groups)


def group_norm_reference(x, gn_scale, gn_bias, num_groups: int, epsilon: float = 1e-6):
  """x [B, H, W, C] -> (GroupNorm(x) [B, H, W, C], normalized x [B, H, W, C], rstd [B, G])."""
  x = np.asarray(x, np.float64)
  xg = _groups(x, num_groups)
  mean = xg.mean(axis=(1, 3), keepdims=True)
  rstd = 1.0 / np.sqrt(((xg - mean) ** 2).mean(axis=(1, 3), keepdims=True) + epsilon)
  xhat = ((xg - mean) * rstd).reshape(x.shape)
  y = xhat * np.asarray(gn_scale, np.float64) + np.asarray(gn_bias, np.float64)
  return y, xhat, rstd[:, 0, :, 0]


def _sigmoid(z):
  return 1.0 / (1.0 + np.exp(-z))


def fused_conv3x3_reference(x, w, *, gn_scale, gn_bias, num_groups: int, bias,
                            residual=None, padding: str = "SAME",
                            epsilon: float = 1e-6) -> np.ndarray:
  """x [B, H, W, Cin], w [3, 3, Cin, Cout] -> float64 [B, H, W, Cout]."""
  z, _, _ = group_norm_reference(x, gn_scale, gn_bias, num_groups, epsilon)
  y = conv2d_reference(z * _sigmoid(z), w, padding=padding) + np.asarray(bias, np.float64)
  return y if residual is None else y + np.asarray(residual, np.float64)


def conv3x3_vjp_reference(a, w, g, padding: str = "SAME"):
  """Gradients of <conv3x3(a, w), g> with respect to a and w (stride 1), float64."""
  ap = pad_reference(a, 1, 1, padding)
  h, wd = g.shape[1:3]
  dap = np.zeros_like(ap)
  dw = np.zeros_like(w)
  for i in range(3):
    for j in range(3):
      dw[i, j] = np.einsum("bhwc,bhwd->cd", ap[:, i:i + h, j:j + wd], g)
      dap[:, i:i + h, j:j + wd] += g @ w[i, j].T
  # The padding map's transpose: every padded cell that copies a pixel sends its gradient
  # back to that pixel; zero cells send nothing.
  idx = pad_reference(np.arange(a.size, dtype=np.float64).reshape(a.shape), 1, 1, padding)
  real = pad_reference(np.ones_like(a), 1, 1, padding) > 0
  da = np.zeros(a.size)
  np.add.at(da, idx[real].astype(np.int64), dap[real])
  return da.reshape(a.shape), dw


def fused_conv3x3_reference_vjp(x, w, g, *, gn_scale, gn_bias, num_groups: int, bias,
                                residual=None, padding: str = "SAME",
                                epsilon: float = 1e-6) -> dict:
  """Gradients of <fused_conv3x3(...), g>, float64.

  Returns a dict with keys x, w, gn_scale, gn_bias, bias and (unless residual is None)
  residual, each shaped like that operand.
  """
  del bias  # the output is affine in it
  x, w, g = (np.asarray(t, np.float64) for t in (x, w, g))
  gamma = np.asarray(gn_scale, np.float64)
  z, xhat, rstd = group_norm_reference(x, gamma, gn_bias, num_groups, epsilon)
  sig = _sigmoid(z)
  da, dw = conv3x3_vjp_reference(z * sig, w, g, padding)
  dz = da * sig * (1.0 + z * (1.0 - sig))                 # SiLU'(z) = s (1 + z (1 - s))
  dxhat = _groups(dz * gamma, num_groups)
  xh = _groups(xhat, num_groups)
  # GroupNorm backward, per group: rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)).
  dx = rstd[:, None, :, None] * (dxhat - dxhat.mean(axis=(1, 3), keepdims=True)
                                 - xh * (dxhat * xh).mean(axis=(1, 3), keepdims=True))
  grads = {"x": dx.reshape(x.shape), "w": dw, "gn_scale": (dz * xhat).sum(axis=(0, 1, 2)),
           "gn_bias": dz.sum(axis=(0, 1, 2)), "bias": g.sum(axis=(0, 1, 2))}
  if residual is not None:
    grads["residual"] = g
  return grads
