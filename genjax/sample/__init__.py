"""The sampling API that users embed in their own JAX code, and its export.

    sample_fn = genjax.make_sampler(model, spec, image_shape=(32, 32), sampler="dpm++2m",
                                    steps=25, guidance=3.0)
    images = jax.jit(sample_fn, static_argnums=2)(params, key, 16)   # [16, 32, 32, 3] in [-1, 1]
"""

from genjax.sample.sampler import (SAMPLER_NAMES, make_img2img, make_inpainter, make_sampler,
                                   per_sample_keys)
from genjax.sample.load import load_sampler

__all__ = ["make_sampler", "make_img2img", "make_inpainter", "load_sampler", "per_sample_keys",
           "SAMPLER_NAMES"]
