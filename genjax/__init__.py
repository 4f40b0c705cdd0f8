"""genjax: a JAX engine for training and sampling image-generation models.

Not the probabilistic-programming package of the same name on PyPI: this one is
distributed as ``genjax-engine``.

    import genjax
    sample_fn, params = genjax.load_sampler("runs/tiny", sampler="dpm++2m", steps=25)
"""

__version__ = "0.1.0"

# The sampling API, imported on first use so `import genjax` stays cheap.
_LAZY = {"make_sampler": "genjax.sample", "load_sampler": "genjax.sample",
         "make_img2img": "genjax.sample", "make_inpainter": "genjax.sample"}


def __getattr__(name):
  if name in _LAZY:
    import importlib
    return getattr(importlib.import_module(_LAZY[name]), name)
  raise AttributeError(f"module 'genjax' has no attribute {name!r}")
