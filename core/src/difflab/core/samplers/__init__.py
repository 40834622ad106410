"""Pure-function samplers over a :class:`Denoiser`, a process and a time grid."""

from difflab.core.samplers.base import Denoiser, SampleResult, time_grid

__all__ = ["Denoiser", "SampleResult", "time_grid"]

from difflab.core.samplers.ddim import sample_ddim
from difflab.core.samplers.ddpm import sample_ddpm
from difflab.core.samplers.dpm_solver import sample_dpm_solver
from difflab.core.samplers.karras import sample_euler, sample_heun

__all__ += ["sample_ddpm", "sample_ddim", "sample_dpm_solver", "sample_euler", "sample_heun"]

from difflab.core.samplers.masked import gidd_self_correct, sample_categorical, sample_gidd, sample_masked  # noqa: E402

__all__ += ["sample_masked", "sample_gidd", "gidd_self_correct", "sample_categorical"]

from difflab.core.samplers.adaptive import sample_adaptive  # noqa: E402
from difflab.core.samplers.paradigms import sample_paradigms  # noqa: E402
from difflab.core.samplers.sde import (  # noqa: E402
    sample_euler_maruyama,
    sample_predictor_corrector,
    sample_probability_flow,
)
from difflab.core.samplers.warm_start import truncated_grid, warm_start  # noqa: E402

__all__ += [
    "sample_euler_maruyama",
    "sample_predictor_corrector",
    "sample_probability_flow",
    "sample_adaptive",
    "sample_paradigms",
    "warm_start",
    "truncated_grid",
]
