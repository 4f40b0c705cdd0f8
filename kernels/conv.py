"""`conv2d`: the one entry point for the 2-D convolutions of every genjax model (NHWC, HWIO).

The implementation is chosen per call, at trace time, in this order:
  1. the `impl` argument, unless None or "auto" (models pass config.kernels.conv_impl);
  2. the environment variable GENJAX_CONV_IMPL, unless unset, empty or "auto";
  3. per platform, decided when the program is lowered (`jax.lax.platform_dependent`),
     so a program traced on a CPU host and lowered for a TPU or GPU gets that platform's:
     - on the CPU, the autotune table (genjax.kernels.autotune), read, never measured
       while tracing: the implementation that measured fastest, forward + backward, for
       this shape, dtype, padding and stride, among those available ("onednn" and
       "winograd" need the optional oneDNN glue, built by an explicit step: see
       genjax.kernels.onednn_build; they are left out of multi-device programs, where
       their custom calls would gather sharded operands). Without an entry (not tuned
       yet: `genjax tune`, or `genjax train` before it builds its step) the default:
       "winograd" when available, else "xla";
     - elsewhere (GPU, TPU), "xla": cuDNN / XLA's TPU convolution, not measured.
"""

import functools
import os

import jax

from genjax.kernels import autotune, onednn_build
from genjax.kernels.conv_gemm import conv2d_gemm
from genjax.kernels.conv_onednn import conv2d_onednn
from genjax.kernels.conv_taps import conv2d_taps
from genjax.kernels.conv_winograd import conv2d_winograd
from genjax.kernels.conv_xla import conv2d_xla
from genjax.kernels.padding import MODES

# name -> fn(x, w, *, stride, pad_mode) -> y; every entry meets the contract of conv2d.
IMPLEMENTATIONS = {"xla": conv2d_xla, "taps": conv2d_taps, "gemm": conv2d_gemm,
                   "onednn": conv2d_onednn, "winograd": conv2d_winograd}
# The implementations that need the oneDNN glue (genjax.kernels.onednn_build).
NEEDS_ONEDNN = ("onednn", "winograd")
IMPL_ENV = "GENJAX_CONV_IMPL"
# Per backend: the implementation used without measuring (and for convolutions too
# small to be worth measuring). Only the CPU is autotuned.
DEFAULTS = {"cpu": "xla"}
AUTOTUNED_PLATFORMS = ("cpu",)


def _check_name(name: str, source: str) -> str:
  if name not in IMPLEMENTATIONS:
    raise ValueError(f"conv2d: unknown implementation {name!r} from {source}; valid: "
                     f"{', '.join(['auto', *IMPLEMENTATIONS])}")
  return name


def available_implementations() -> list[str]:
  """The IMPLEMENTATIONS names that can run in this process (NEEDS_ONEDNN need oneDNN)."""
  return [n for n in IMPLEMENTATIONS if n not in NEEDS_ONEDNN or onednn_build.available()]


def autotune_candidates() -> dict:
  """The IMPLEMENTATIONS the autotune may measure in this process."""
  names = available_implementations()
  if jax.device_count() > 1:
    names = [n for n in names if n not in NEEDS_ONEDNN]
  return {n: IMPLEMENTATIONS[n] for n in names}


def forced_impl(impl: str | None = None) -> str | None:
  """The implementation named by the `impl` argument or by $GENJAX_CONV_IMPL (in that
  order), or None when both leave the choice to the dispatcher."""
  if impl not in (None, "auto"):
    return _check_name(impl, "the impl argument")
  env = os.environ.get(IMPL_ENV, "")
  if env not in ("", "auto"):
    return _check_name(env, f"${IMPL_ENV}")
  return None


def conv_key(x_shape, w_shape, dtype, *, stride: int, padding: str,
             device=None) -> autotune.ConvKey | None:
  """The autotune key of a convolution on `device` (default: the first CPU device);
  None for symbolic shapes (jax.export), which have nothing concrete to measure."""
  if not all(isinstance(d, int) for d in (*x_shape, *w_shape)):
    return None
  return autotune.ConvKey.for_call(x_shape, w_shape, dtype, stride=stride, padding=padding,
                                   device=device or jax.devices("cpu")[0])


def tuning_default(candidates) -> str:
  """The implementation kept unless the autotune measures another faster by its margin.

  oneDNN's Winograd, where available, is the one to beat: it ran every CIFAR UNet 3x3
  convolution 1.3-2x faster than "xla" forward + backward, and the whole train step
  faster than "xla" and "onednn" (benchmarks/README.md), while timings of single
  convolutions are noisy."""
  return "winograd" if "winograd" in candidates else DEFAULTS["cpu"]


def select_impl(x_shape, w_shape, dtype, *, stride: int, padding: str,
                impl: str | None = None, device=None, platform: str | None = None) -> str:
  """The IMPLEMENTATIONS name conv2d uses for these operands when the program is lowered
  for `platform` (default: `device`'s, else the default backend's). Never measures."""
  forced = forced_impl(impl)
  if forced is not None:
    return forced
  platform = platform or (device.platform if device is not None else jax.default_backend())
  default = DEFAULTS.get(platform, "xla")
  if platform not in AUTOTUNED_PLATFORMS:
    return default
  key = conv_key(x_shape, w_shape, dtype, stride=stride, padding=padding, device=device)
  if key is None or key.flops < autotune.MIN_MEASURE_FLOPS:
    return default  # before autotune_candidates(), which loads the oneDNN glue
  candidates = autotune_candidates()
  return autotune.lookup(key, candidates, default=tuning_default(candidates))


def tune(keys, *, measure_fn=None) -> dict[str, str]:
  """Measures the autotune table's missing entries for these CPU keys (outside any
  trace) and returns key string -> chosen implementation."""
  candidates = autotune_candidates()
  default = tuning_default(candidates)
  return {str(k): autotune.choose(k, candidates, default=default, measure_fn=measure_fn)
          for k in keys}


def conv2d(x: jax.Array, w: jax.Array, *, stride: int = 1, padding: str = "SAME",
           impl: str | None = None) -> jax.Array:
  """2-D convolution with odd square kernels (1x1, 3x3), stride 1 or 2.

  Args:
    x: [B, H, W, C_in], float32 or bfloat16.
    w: [kh, kw, C_in, C_out]; cast to x's dtype. Accumulation is float32.
    stride: 1 or 2. With stride 2 the padding is (k - 1) / 2 on every side, as
      PyTorch's padding=1 for 3x3: even H, W give H / 2, W / 2.
    padding: "SAME", "CIRCULAR_W" or "SPHERE" (see genjax.kernels.padding).
    impl: an IMPLEMENTATIONS name; None or "auto" lets the dispatcher choose.
  Returns:
    [B, H', W', C_out] in x's dtype, H' = (H - 1) // stride + 1 (and W' alike).
  """
  if x.ndim != 4 or w.ndim != 4 or x.shape[-1] != w.shape[2]:
    raise ValueError(f"conv2d: x {x.shape} and w {w.shape} are not [B,H,W,Cin] and "
                     f"[kh,kw,Cin,Cout] with matching Cin")
  if w.shape[0] % 2 == 0 or w.shape[1] % 2 == 0:
    raise ValueError(f"conv2d: kernel size must be odd, got {w.shape[:2]}")
  if stride not in (1, 2):
    raise ValueError(f"conv2d: stride must be 1 or 2, got {stride}")
  if padding not in MODES:
    raise ValueError(f"conv2d: padding must be one of {MODES}, got {padding!r}")
  args = dict(stride=stride, padding=padding, impl=impl)
  forced = forced_impl(impl)
  if forced is not None:
    return IMPLEMENTATIONS[forced](x, w, stride=stride, pad_mode=padding)
  backend = jax.default_backend()
  here = select_impl(x.shape, w.shape, x.dtype, platform=backend, **args)
  if backend != "cpu" or here == DEFAULTS["cpu"]:
    # One implementation for every platform: nothing to decide at lowering.
    return IMPLEMENTATIONS[here](x, w, stride=stride, pad_mode=padding)
  # A CPU-only choice (a custom call, or a CPU-tuned decomposition): the CPU gets it, any
  # other platform the program is lowered for gets XLA's own convolution.
  fns = {name: functools.partial(IMPLEMENTATIONS[name], stride=stride, pad_mode=padding)
         for name in (here, "xla")}
  return jax.lax.platform_dependent(x, w, cpu=fns[here], default=fns["xla"])
