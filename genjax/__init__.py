"""genjax: a JAX engine for training and sampling image-generation models.

Not the probabilistic-programming package of the same name on PyPI: this one is
distributed as ``genjax-engine``.
"""

__version__ = "0.1.0"
