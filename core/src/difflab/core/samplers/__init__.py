"""Pure-function samplers over a :class:`Denoiser`, a process and a time grid.

Every sampler is ``sample_<name>(denoiser, x, grid, *, generator=None, callback=None, **options)``
and returns a :class:`SampleResult` (sample, NFE, info). :func:`run_sampler` selects one by the
name used in every config and command line (``--sampler ddim --steps 10``);
:func:`run_discrete_sampler` does the same for discrete token processes (``masked``, ``gidd``).
"""

from difflab.core.samplers.adaptive import sample_adaptive
from difflab.core.samplers.ancestral import sample_dpmpp_2m_sde, sample_dpmpp_3m_sde, sample_euler_ancestral
from difflab.core.samplers.base import Denoiser, GridSteps, SampleResult, prepare_grid, time_grid
from difflab.core.samplers.brownian import BrownianTree
from difflab.core.samplers.consistency import sample_lcm, sample_tcd
from difflab.core.samplers.ddim import sample_ddim
from difflab.core.samplers.ddpd import sample_ddpd
from difflab.core.samplers.ddpm import sample_ddpm
from difflab.core.samplers.deis import sample_deis
from difflab.core.samplers.dpm_singlestep import sample_dpm_solver_singlestep
from difflab.core.samplers.dpm_solver import sample_dpm_solver
from difflab.core.samplers.dpmpp_sde import sample_dpmpp_2s_ancestral, sample_dpmpp_sde
from difflab.core.samplers.karras import sample_euler, sample_heun
from difflab.core.samplers.lms import sample_lms
from difflab.core.samplers.masked import gidd_self_correct, sample_categorical, sample_gidd, sample_masked
from difflab.core.samplers.paradigms import sample_paradigms
from difflab.core.samplers.pndm import sample_pndm
from difflab.core.samplers.sde import sample_euler_maruyama, sample_predictor_corrector, sample_probability_flow
from difflab.core.samplers.select import (
    DISCRETE_SAMPLER_NAMES,
    SAMPLER_NAMES,
    DiscreteSamplerName,
    SamplerName,
    default_grid,
    discrete_sampler_function,
    run_discrete_sampler,
    run_sampler,
    sampler_function,
)
from difflab.core.samplers.unipc import sample_unipc
from difflab.core.samplers.warm_start import truncated_grid, warm_start

__all__ = [
    "Denoiser",
    "GridSteps",
    "SampleResult",
    "prepare_grid",
    "time_grid",
    "sample_ddpm",
    "sample_ddim",
    "sample_dpm_solver",
    "sample_dpm_solver_singlestep",
    "sample_dpmpp_2s_ancestral",
    "sample_dpmpp_sde",
    "sample_pndm",
    "BrownianTree",
    "sample_euler",
    "sample_euler_ancestral",
    "sample_dpmpp_2m_sde",
    "sample_dpmpp_3m_sde",
    "sample_lcm",
    "sample_deis",
    "sample_lms",
    "sample_unipc",
    "sample_tcd",
    "sample_heun",
    "sample_euler_maruyama",
    "sample_predictor_corrector",
    "sample_probability_flow",
    "sample_adaptive",
    "sample_paradigms",
    "warm_start",
    "truncated_grid",
    "sample_masked",
    "sample_gidd",
    "sample_ddpd",
    "gidd_self_correct",
    "sample_categorical",
    "SAMPLER_NAMES",
    "SamplerName",
    "DISCRETE_SAMPLER_NAMES",
    "DiscreteSamplerName",
    "discrete_sampler_function",
    "run_discrete_sampler",
    "default_grid",
    "run_sampler",
    "sampler_function",
]
