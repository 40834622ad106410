"""Pick a sampler by name: the one switch every config and command line shares (``--sampler ddim``).

:func:`run_sampler` maps a :data:`SamplerName` to its function, imported lazily from the module
that defines it, builds the sampler's default time grid and runs it:

===========================  ============================================================  =========  =======
name                         function (in ``difflab.core.samplers``)                       grid       ends at
===========================  ============================================================  =========  =======
``ddpm``                     ``ddpm.sample_ddpm``                                          uniform    0
``ddim``                     ``ddim.sample_ddim``                                          log_snr    0
``dpm_solver``               ``dpm_solver.sample_dpm_solver``                              log_snr    0
``dpm_solver_singlestep``    ``dpm_singlestep.sample_dpm_solver_singlestep``               log_snr    0
``pndm``                     ``pndm.sample_pndm``                                          uniform    0
``euler``                    ``karras.sample_euler``                                       karras     0
``heun``                     ``karras.sample_heun``                                        karras     0
``euler_ancestral``          ``ancestral.sample_euler_ancestral``                          karras     0
``dpmpp_2s_ancestral``       ``dpmpp_sde.sample_dpmpp_2s_ancestral``                       karras     0
``dpmpp_sde``                ``dpmpp_sde.sample_dpmpp_sde``                                karras     0
``dpmpp_2m_sde``             ``ancestral.sample_dpmpp_2m_sde``                             log_snr    0
``dpmpp_3m_sde``             ``ancestral.sample_dpmpp_3m_sde``                             log_snr    0
``unipc``                    ``unipc.sample_unipc``                                        log_snr    0
``lms``                      ``lms.sample_lms``                                            karras     0
``deis``                     ``deis.sample_deis``                                          log_snr    0
``lcm``                      ``consistency.sample_lcm``                                    uniform    0
``tcd``                      ``consistency.sample_tcd``                                    uniform    0
``probability_flow``         ``sde.sample_probability_flow``                               log_snr    t_min
``euler_maruyama``           ``sde.sample_euler_maruyama``                                 uniform    t_min
``pc``                       ``sde.sample_predictor_corrector``                            uniform    t_min
``adaptive``                 ``adaptive.sample_adaptive``                                  endpoints  t_min
``paradigms``                ``paradigms.sample_paradigms``                                log_snr    0
===========================  ============================================================  =========  =======

The deterministic solvers (DDIM, DPM-Solver++, the probability-flow ODE, ParaDiGMS over DDIM)
default to a grid uniform in log-SNR, as DPM-Solver recommends for continuous-time models: a grid
uniform in ``t`` spends almost no steps where a VP process's noise level falls from about 0.2 to 0,
which draws the samples of a narrow-mode distribution into lines between the modes. Where the
log-SNR is infinite at the start (flow matching at ``t = 1``) they fall back to a uniform grid.

Grids run from ``process.t_max`` down to the end time. Samplers built on the DDIM-family posterior
or on the ODE in noise level step onto ``t = 0`` exactly; SDE and time-derivative integrators stop
at the process's ``t_min`` (``t_eps``), where drift and score are still finite. A Karras grid that
ends at 0 follows k-diffusion: ``steps`` noise levels from ``sigma(t_max)`` down to
``sigma(t_min)`` (rho = 7), then 0 (for a process with ``t_min = 0`` the smallest level is
``sigma(1e-6)``, see :func:`~difflab.core.samplers.base.time_grid`). ``adaptive`` chooses its own
steps: it receives the two end points only and ``steps`` is ignored. ``paradigms`` runs the DDIM /
DDPM chain of ``steps`` steps by parallel Picard iteration (its network is called on ``window * B``
samples at once).

Every default can be overridden (``grid_kind``, ``t_start``, ``t_end``, or a ready ``grid``); the
remaining keyword options go to the sampler function unchanged, so a misspelt option fails with the
function's own ``TypeError``.

Discrete token processes have their own registry, :func:`run_discrete_sampler` over a token model
``model(x_t, t) -> logits``, with the process's own default grid (``process.default_grid``):

==========  ===============================  ==========================================
name        function                         for
==========  ===============================  ==========================================
``masked``  ``masked.sample_masked``         absorbing processes (MDLM, with caching)
``gidd``    ``masked.sample_gidd``           GIDD / uniform / masked (self-correction)
``ddpd``    ``ddpd.sample_ddpd``             planned denoising (DDPD: a planner picks positions)
==========  ===============================  ==========================================

:data:`SamplerName` and :data:`DiscreteSamplerName` are the ``Literal`` types of the registries'
keys (what the command line offers); static type checkers see ``str``.

This module imports only the sampler modules it dispatches to (pure torch).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor

from difflab.core.samplers.base import Callback, Denoiser, SampleResult
from difflab.core.samplers.registry import DISCRETE_SAMPLERS as _DISCRETE_SAMPLERS
from difflab.core.samplers.registry import SAMPLERS as _SAMPLERS
from difflab.core.samplers.registry import GridKind

SAMPLER_NAMES: tuple[str, ...] = tuple(_SAMPLERS)
DISCRETE_SAMPLER_NAMES: tuple[str, ...] = tuple(_DISCRETE_SAMPLERS)
if TYPE_CHECKING:
    SamplerName = str
    DiscreteSamplerName = str
else:
    SamplerName = Literal[SAMPLER_NAMES]
    DiscreteSamplerName = Literal[DISCRETE_SAMPLER_NAMES]


def _import(registry: dict[str, tuple], kind: str, name: str) -> Callable[..., SampleResult]:
    if name not in registry:
        raise ValueError(f"unknown {kind}sampler {name!r}; expected one of {tuple(registry)}")
    module_name, fn_name = registry[name][:2]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise
        raise ImportError(f"sampler {name!r} needs {module_name}.{fn_name}, which is not available") from err
    return getattr(module, fn_name)


def _check_name(name: str) -> None:
    if name not in _SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; expected one of {SAMPLER_NAMES}")


def sampler_function(name: SamplerName) -> Callable[..., SampleResult]:
    """The sampler function registered under ``name`` (imported on first use)."""
    return _import(_SAMPLERS, "", name)


def discrete_sampler_function(name: DiscreteSamplerName) -> Callable[..., SampleResult]:
    """The discrete-process sampler registered under ``name`` (imported on first use)."""
    return _import(_DISCRETE_SAMPLERS, "discrete ", name)


def default_grid(
    name: SamplerName,
    process,
    steps: int,
    *,
    grid_kind: GridKind | None = None,
    t_start: float | None = None,
    t_end: float | None = None,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """The time grid :func:`run_sampler` uses for ``name``: ``process.default_grid(name, steps, ...)``,
    ``(steps + 1,)``, descending.

    Args:
        name: sampler name.
        process: the forward process: its ``default_grid`` is the sampler's standard grid
            (:func:`~difflab.core.samplers.registry.standard_grid`), except where the process knows
            better (a :class:`~difflab.core.processes.DiscreteVP` chain samples its whole steps).
        steps: number of steps (ignored by ``adaptive``, which gets ``[t_start, t_end]``).
        grid_kind: ``uniform``, ``quadratic``, ``karras`` or ``log_snr`` (on a ``DiscreteVP`` chain also
            diffusers' spacings ``leading``, ``trailing``, ``linspace``); the sampler's default if None.
        t_start: first time, ``process.t_max`` if None.
        t_end: last time; 0 or ``process.t_min`` (see the module table) if None.
    """
    _check_name(name)
    return process.default_grid(name, steps, grid_kind=grid_kind, t_start=t_start, t_end=t_end, dtype=dtype)


def run_sampler(
    name: SamplerName,
    denoiser: Denoiser,
    x: Tensor,
    *,
    steps: int,
    generator: torch.Generator | None = None,
    grid_kind: GridKind | None = None,
    t_start: float | None = None,
    t_end: float | None = None,
    grid: Tensor | None = None,
    callback: Callback | None = None,
    **options: Any,
) -> SampleResult:
    """Run the sampler ``name`` from ``x`` (a sample of the prior at ``t_start``) to the end time.

    Args:
        name: one of :data:`SAMPLER_NAMES`.
        denoiser: the :class:`Denoiser` wrapping the network and the process.
        x: start state, shape ``(B, ...)`` (e.g. ``process.prior_sample``).
        steps: number of sampler steps (NFE is ``steps`` for one-evaluation samplers).
        generator: the only source of randomness of stochastic samplers.
        grid_kind, t_start, t_end: override the default grid (:func:`default_grid`).
        grid: a ready grid ``(N + 1,)`` or ``(N + 1, *t_shape)``; then ``steps`` and the grid
            overrides are ignored.
        callback: receives ``{"step", "t", "x", "x0"}`` after every step.
        **options: sampler-specific options (``eta`` for DDIM, ``order`` for DPM-Solver, ``s_churn``
            for Euler / Heun, ``snr`` / ``n_corrector`` for PC, ...).

    Returns:
        the sampler's :class:`SampleResult` with ``info["sampler"] = name`` and ``info["grid"]``.
    """
    fn = sampler_function(name)
    if grid is None:
        grid = default_grid(name, denoiser.process, steps, grid_kind=grid_kind, t_start=t_start, t_end=t_end)
    result = fn(denoiser, x, grid.to(x.device), generator=generator, callback=callback, **options)
    result.info.setdefault("sampler", name)
    result.info.setdefault("grid", grid)
    return result


def run_discrete_sampler(
    name: DiscreteSamplerName,
    model: Callable[[Tensor, Tensor], Tensor],
    process,
    x: Tensor,
    *,
    steps: int,
    grid: Tensor | None = None,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    **options: Any,
) -> SampleResult:
    """Run the discrete sampler ``name`` from tokens ``x`` (B, L) with ``model(x_t, t) -> logits`` (B, L, V).

    Args:
        name: one of :data:`DISCRETE_SAMPLER_NAMES`.
        process: the discrete process (:mod:`difflab.core.processes.discrete`).
        steps: number of steps of ``process.default_grid(name, steps)`` (ignored with ``grid``).
        grid: a ready descending grid ``(N + 1,)`` or ``(N + 1, *t_shape)``.
        **options: sampler options (``keep_mask``, ``cache`` for ``masked``; ``min_p``,
            ``self_correction_steps`` for ``gidd``, ...).

    Returns:
        the sampler's :class:`SampleResult` with ``info["sampler"] = name`` and ``info["grid"]``.
    """
    fn = discrete_sampler_function(name)
    if grid is None:
        grid = process.default_grid(name, steps)
    result = fn(model, process, x, grid, generator=generator, callback=callback, **options)
    result.info.setdefault("sampler", name)
    result.info.setdefault("grid", grid)
    return result


__all__ = [
    "SamplerName",
    "SAMPLER_NAMES",
    "DiscreteSamplerName",
    "DISCRETE_SAMPLER_NAMES",
    "sampler_function",
    "discrete_sampler_function",
    "default_grid",
    "run_sampler",
    "run_discrete_sampler",
]
