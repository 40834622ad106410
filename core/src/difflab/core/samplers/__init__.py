"""Pure-function samplers over a :class:`Denoiser`, a process and a time grid."""

from difflab.core.samplers.base import Denoiser, SampleResult, time_grid

__all__ = ["Denoiser", "SampleResult", "time_grid"]
