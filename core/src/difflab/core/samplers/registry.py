"""The sampler registries and the samplers' default time grids (data and pure grid arithmetic).

``SAMPLERS`` maps each continuous sampler's name to its module, function, default grid kind and
whether its grid ends at ``t = 0`` (see the table in :mod:`difflab.core.samplers.select`);
``DISCRETE_SAMPLERS`` does the same for discrete token processes. :func:`standard_grid` builds a
sampler's default grid for a continuous-time process and :func:`time_grid` the grids themselves.
Processes call :func:`standard_grid` from their ``default_grid``, so this module imports no process.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

# name -> (module, function, default grid kind, ends at t = 0 (True) or at process.t_min (False))
SAMPLERS: dict[str, tuple[str, str, str, bool]] = {
    "ddpm": ("difflab.core.samplers.ddpm", "sample_ddpm", "uniform", True),
    "ddim": ("difflab.core.samplers.ddim", "sample_ddim", "log_snr", True),
    "dpm_solver": ("difflab.core.samplers.dpm_solver", "sample_dpm_solver", "log_snr", True),
    "dpm_solver_singlestep": (
        "difflab.core.samplers.dpm_singlestep",
        "sample_dpm_solver_singlestep",
        "log_snr",
        True,
    ),
    "pndm": ("difflab.core.samplers.pndm", "sample_pndm", "uniform", True),
    "euler": ("difflab.core.samplers.karras", "sample_euler", "karras", True),
    "heun": ("difflab.core.samplers.karras", "sample_heun", "karras", True),
    "euler_ancestral": ("difflab.core.samplers.ancestral", "sample_euler_ancestral", "karras", True),
    "dpmpp_2s_ancestral": ("difflab.core.samplers.dpmpp_sde", "sample_dpmpp_2s_ancestral", "karras", True),
    "dpmpp_sde": ("difflab.core.samplers.dpmpp_sde", "sample_dpmpp_sde", "karras", True),
    "dpmpp_2m_sde": ("difflab.core.samplers.ancestral", "sample_dpmpp_2m_sde", "log_snr", True),
    "dpmpp_3m_sde": ("difflab.core.samplers.ancestral", "sample_dpmpp_3m_sde", "log_snr", True),
    "unipc": ("difflab.core.samplers.unipc", "sample_unipc", "log_snr", True),
    "lms": ("difflab.core.samplers.lms", "sample_lms", "karras", True),
    "deis": ("difflab.core.samplers.deis", "sample_deis", "log_snr", True),
    "lcm": ("difflab.core.samplers.consistency", "sample_lcm", "uniform", True),
    "tcd": ("difflab.core.samplers.consistency", "sample_tcd", "uniform", True),
    "probability_flow": ("difflab.core.samplers.sde", "sample_probability_flow", "log_snr", False),
    "euler_maruyama": ("difflab.core.samplers.sde", "sample_euler_maruyama", "uniform", False),
    "pc": ("difflab.core.samplers.sde", "sample_predictor_corrector", "uniform", False),
    "adaptive": ("difflab.core.samplers.adaptive", "sample_adaptive", "endpoints", False),
    "paradigms": ("difflab.core.samplers.paradigms", "sample_paradigms", "log_snr", True),
}
# name -> (module, function) of the samplers of discrete token processes
DISCRETE_SAMPLERS: dict[str, tuple[str, str]] = {
    "masked": ("difflab.core.samplers.masked", "sample_masked"),
    "gidd": ("difflab.core.samplers.masked", "sample_gidd"),
    "ddpd": ("difflab.core.samplers.ddpd", "sample_ddpd"),
}

GridKind = Literal[
    "uniform", "karras", "exponential", "polyexponential", "quadratic", "log_snr", "leading", "trailing", "linspace"
]
SIGMA_KINDS = ("karras", "exponential", "polyexponential")
"""Grids defined by their noise levels ``sigma`` from ``sigma(t_start)`` to ``sigma(t_end)`` (then 0)."""


def sigma_levels(kind: str, sigma_max: float, sigma_min: float, n: int, rho: float | None, dtype) -> Tensor:
    """``n`` noise levels from ``sigma_max`` down to ``sigma_min``: ``karras`` (EDM, ``rho`` 7),
    ``exponential`` (uniform in ``log sigma``) or ``polyexponential`` (``log sigma`` on the ramp
    ``(1 - i / (n - 1))^rho``, ``rho`` 1; k-diffusion's schedules)."""
    i = torch.arange(n, dtype=dtype) / max(n - 1, 1)
    if kind == "karras":
        r = 7.0 if rho is None else rho
        return (sigma_max ** (1 / r) + i * (sigma_min ** (1 / r) - sigma_max ** (1 / r))) ** r
    lo, hi = torch.log(torch.tensor(sigma_min, dtype=dtype)), torch.log(torch.tensor(sigma_max, dtype=dtype))
    ramp = 1 - i if kind == "exponential" else (1 - i) ** (1.0 if rho is None else rho)
    return torch.exp(lo + ramp * (hi - lo))


def time_grid(
    steps: int,
    *,
    t_start: float = 1.0,
    t_end: float = 0.0,
    kind: GridKind = "uniform",
    process=None,
    rho: float | None = None,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """A descending grid of ``steps + 1`` times from ``t_start`` to ``t_end``.

    ``uniform``: linspace. ``quadratic``: denser near ``t_end``. ``karras``: the EDM grid
    ``sigma_i = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho`` over the
    process's VE noise level, mapped back to time (the last point is ``t_end`` exactly, so a grid
    ending at ``t = 0`` ends at ``sigma = 0``); ``exponential`` and ``polyexponential`` likewise with
    the levels of :func:`sigma_levels`. ``log_snr``: uniform in log-SNR (DPM-Solver's choice).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not t_start > t_end:
        raise ValueError(f"t_start ({t_start}) must be greater than t_end ({t_end})")
    if kind == "uniform":
        return torch.linspace(t_start, t_end, steps + 1, dtype=dtype)
    if kind == "quadratic":
        u = torch.linspace(1.0, 0.0, steps + 1, dtype=dtype)
        return t_end + (t_start - t_end) * u**2
    if process is None:
        raise ValueError(f"grid kind {kind!r} needs the process")
    ts = torch.tensor([t_start, max(t_end, 1e-6) if t_end == 0 else t_end], dtype=dtype)
    if not bool(torch.isfinite(process.sigma(ts)).all()):
        raise ValueError(
            f"grid kind {kind!r} needs a finite noise level sigma = s/a at both ends, but "
            f"{type(process).__name__} has sigma(t={t_start:g}) = inf; use t_start < {t_start:g} or a uniform grid"
        )
    if kind in SIGMA_KINDS:
        sig = process.sigma(ts)
        n = steps if t_end == 0 else steps + 1
        grid = process.t_from_sigma(sigma_levels(kind, sig[0].item(), sig[1].item(), n, rho, dtype))
        grid[0] = t_start
        if t_end == 0:
            grid = torch.cat([grid, torch.zeros(1, dtype=dtype)])
        else:
            grid[-1] = t_end
        return grid
    if kind == "log_snr":
        lam = process.log_snr(ts)
        lams = torch.linspace(lam[0].item(), lam[1].item(), steps + 1, dtype=dtype)
        grid = process.t_from_sigma(torch.exp(-lams / 2))
        grid[0], grid[-1] = t_start, t_end
        return grid
    raise ValueError(f"unknown grid kind {kind!r}; expected one of {GridKind.__args__}")


def standard_grid(
    name: str,
    process,
    steps: int,
    *,
    grid_kind: GridKind | None = None,
    t_start: float | None = None,
    t_end: float | None = None,
    karras_floor: float | None = None,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """The sampler's own default grid for a continuous-time process: ``(steps + 1,)``, descending
    (what ``LinearGaussianProcess.default_grid`` returns).

    Args:
        name: sampler name.
        process: the forward process (gives ``t_max``, ``t_min`` and, for ``karras`` / ``log_snr``
            grids, the noise level).
        steps: number of steps (ignored by ``adaptive``, which gets ``[t_start, t_end]``).
        grid_kind: ``uniform``, ``quadratic``, ``karras`` or ``log_snr``; the sampler's default if None.
        t_start: first time, ``process.t_max`` if None.
        t_end: last time; 0 or ``process.t_min`` (the table of :mod:`~difflab.core.samplers.select`) if None.
        karras_floor: the smallest time of a Karras grid ending at 0 (before the last step onto 0);
            ``process.t_min`` if None (and if that is 0, ``sigma(1e-6)`` is the smallest level).
    """
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; expected one of {tuple(SAMPLERS)}")
    _, _, kind, to_zero = SAMPLERS[name]
    t_start = float(process.t_max) if t_start is None else float(t_start)
    if t_end is None:
        t_end = 0.0 if to_zero else float(process.t_min)
    if kind == "endpoints" and grid_kind is None:
        return torch.tensor([t_start, t_end], dtype=dtype)
    if grid_kind is None and kind == "log_snr":
        ends = torch.tensor([t_start, max(t_end, 1e-6)], dtype=torch.float64)
        if not bool(torch.isfinite(process.log_snr(ends)).all()):
            kind = "uniform"
    kind = grid_kind or kind
    t_min = float(process.t_min)
    floor = t_min if karras_floor is None else float(karras_floor)
    if kind in SIGMA_KINDS and t_end == 0 and 0 < floor < t_start and steps >= 2:
        # k-diffusion's convention: sigma_max .. sigma_min = sigma(floor) over ``steps`` points, then 0
        head = time_grid(steps - 1, t_start=t_start, t_end=floor, kind=kind, process=process, dtype=dtype)
        return torch.cat([head, torch.zeros(1, dtype=dtype)])
    if kind == "log_snr" and t_end == 0 and steps >= 2:
        # uniform in log-SNR down to t_min (1e-3 where t_min = 0), then one last step onto t = 0
        low = t_min if 0 < t_min < t_start else min(1e-3, t_start / 2)
        head = time_grid(steps - 1, t_start=t_start, t_end=low, kind="log_snr", process=process, dtype=dtype)
        return torch.cat([head, torch.zeros(1, dtype=dtype)])
    return time_grid(steps, t_start=t_start, t_end=t_end, kind=kind, process=process, dtype=dtype)


__all__ = ["SAMPLERS", "DISCRETE_SAMPLERS", "GridKind", "SIGMA_KINDS", "sigma_levels", "standard_grid", "time_grid"]
