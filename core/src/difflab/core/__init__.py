"""difflab.core: the shared diffusion math of difflab.

Time convention: continuous ``t`` in [0, 1], ``t = 0`` clean data, ``t = 1`` the prior (noise, or
the degraded input for bridge-like processes). Every process accepts per-element ``t``.
"""

__version__ = "0.1.0"
