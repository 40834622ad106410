"""What every sampler shares: the :class:`Denoiser` wrapper, the result type and time grids.

Samplers are pure functions ``sample_xxx(denoiser, x, grid, *, generator=None, callback=None, ...)``
returning a :class:`SampleResult`. They keep no hidden state between calls; randomness comes only
from the ``generator`` passed in; the number of network evaluations (NFE) is counted by the
:class:`Denoiser`; ``callback`` receives a dict ``{"step", "t", "x", "x0"}`` after every step so a
caller can record the trajectory.

``grid`` is a 1-D descending tensor of times from the start time (usually ``process.t_max``) to
the end time (``0`` or ``process.t_min``), of length ``steps + 1``. Rows may also carry per-element
times: a grid of shape ``(steps + 1, *t_shape)`` with ``t_shape`` broadcasting against ``x``'s
leading dimensions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from difflab.core.parameterization import Prediction, to_x0_eps
from difflab.core.processes.base import LinearGaussianProcess

Callback = Callable[[dict[str, Any]], None]
ModelFn = Callable[[Tensor, Tensor], Tensor]


@dataclass
class SampleResult:
    """Output of a sampler.

    Attributes:
        sample: the final sample, shape of the initial ``x``.
        nfe: number of network evaluations (batched calls count once).
        info: sampler-specific extras (e.g. ``rounds`` for parallel sampling, ``accepted`` steps).
    """

    sample: Tensor
    nfe: int
    info: dict[str, Any] = field(default_factory=dict)


class Denoiser:
    """Wraps a network ``model(x_t, t) -> out`` into ``(x0_hat, eps_hat)`` for a process.

    Args:
        model: callable taking ``x_t`` (shape of the data) and ``t`` (shape ``(B,)`` or per element,
            in [0, 1]) and returning a prediction of kind ``prediction``. Network conditioning
            (class labels, context) is closed over by the callable.
        process: the forward process the network was trained with.
        prediction: what the network outputs: ``eps``, ``x0``, ``v``, ``score`` or ``velocity``.
        y: the process condition (OUVE, ResShift), shape of ``x``; ``None`` for unconditional processes.
        clip_x0: if set, clamp ``x0_hat`` to ``[-clip_x0, clip_x0]`` and recompute ``eps_hat`` from it.
    """

    def __init__(
        self,
        model: ModelFn,
        process: LinearGaussianProcess,
        prediction: Prediction = "eps",
        *,
        y: Tensor | None = None,
        clip_x0: float | None = None,
    ) -> None:
        self.model = model
        self.process = process
        self.prediction = prediction
        self.y = y
        self.clip_x0 = clip_x0
        self.nfe = 0

    def raw(self, x: Tensor, t: Tensor) -> Tensor:
        """One network evaluation, counted.

        A model that makes several network calls per call (the guidance wrappers of
        :mod:`difflab.core.guidance`) reports them in its ``last_nfe`` attribute; otherwise 1.
        """
        out = self.model(x, t)
        self.nfe += int(getattr(self.model, "last_nfe", 1))
        return out

    def __call__(
        self, x: Tensor, t: Tensor, *, coefficients: tuple[Tensor, Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(x0_hat, eps_hat)`` at ``(x, t)``; ``coefficients`` = ``process.coefficients(t)`` if already known."""
        out = self.raw(x, t)
        x0, eps = to_x0_eps(self.process, self.prediction, out, x, t, self.y, coefficients=coefficients)
        if self.clip_x0 is not None:
            x0 = x0.clamp(-self.clip_x0, self.clip_x0)
            _, eps = to_x0_eps(self.process, "x0", x0, x, t, self.y, coefficients=coefficients)
        return x0, eps

    def score(self, x: Tensor, t: Tensor) -> Tensor:
        """Score ``-eps_hat / s(t)`` of the marginal at ``t``."""
        from difflab.core.broadcast import expand_like

        _, eps = self(x, t)
        _, _, s = self.process.coefficients(t)
        return -eps / expand_like(s, x)


def step_time(grid: Tensor, i: int, x: Tensor) -> Tensor:
    """Row ``i`` of the grid as a time tensor for ``x``: shape ``(B,)`` or the per-element shape."""
    t = grid[i]
    if t.ndim == 0:
        return t.expand(x.shape[0]).to(x.device)
    return t.expand(x.shape[: t.ndim] if t.shape[0] == 1 else t.shape).to(x.device)


@dataclass
class GridSteps:
    """A grid's per-step times and posterior coefficients, evaluated once before a sampling loop.

    Evaluating the process coefficients in one vectorised call over the whole grid (rather than
    several times per step) is what keeps a sampler's per-step overhead at or below that of a
    scheduler object. Attributes, one entry per step ``i`` (from ``grid[i]`` to ``grid[i + 1]``):

    * ``t``: model time of the step start, shape ``(B,)`` or per element, in ``x``'s dtype;
    * ``s``: time of the step end (same shape);
    * ``parts``: :meth:`LinearGaussianProcess.posterior_parts` ``(a_s, b_s, s_s, a_t, b_t, s_t,
      tilde sigma)``, each of the row's time shape, in ``x``'s dtype;
    * ``still``: mask of elements whose time does not change (``s == t``), or ``None`` if all move.
    """

    t: list[Tensor]
    s: list[Tensor]
    parts: list[tuple[Tensor, ...]]
    still: list[Tensor | None]

    def coefficients_t(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        """``(a_t, b_t, s_t)`` at the start of step ``i`` (for :class:`Denoiser`'s ``coefficients=``)."""
        return self.parts[i][3], self.parts[i][4], self.parts[i][5]

    def __len__(self) -> int:
        return len(self.t)


def prepare_grid(process: LinearGaussianProcess, grid: Tensor, x: Tensor) -> GridSteps:
    """Evaluate a grid's times and posterior coefficients once (in float64, then cast to ``x``'s dtype)."""
    if grid.ndim == 0 or grid.shape[0] < 2:
        raise ValueError(f"a time grid needs at least 2 rows, got shape {tuple(grid.shape)}")
    g = grid.to(device=x.device, dtype=torch.float64)
    parts = [c.to(x.dtype) for c in process.posterior_parts(g[1:], g[:-1])]
    n = g.shape[0] - 1
    rows = [step_time(g, i, x).to(x.dtype) for i in range(n + 1)]
    still = [(g[i + 1] == g[i]) for i in range(n)]
    return GridSteps(
        t=rows[:-1],
        s=rows[1:],
        parts=list(zip(*(c.unbind(0) for c in parts))),
        still=[m if bool(m.any()) else None for m in still],
    )


def keep_still(still: Tensor | None, x: Tensor, x_new: Tensor) -> Tensor:
    """``x_new`` except where the element's time did not change in this step."""
    if still is None:
        return x_new
    from difflab.core.broadcast import expand_like

    return torch.where(expand_like(still, x), x, x_new)


GridKind = Literal["uniform", "karras", "quadratic", "log_snr"]


def time_grid(
    steps: int,
    *,
    t_start: float = 1.0,
    t_end: float = 0.0,
    kind: GridKind = "uniform",
    process: LinearGaussianProcess | None = None,
    rho: float = 7.0,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """A descending grid of ``steps + 1`` times from ``t_start`` to ``t_end``.

    ``uniform``: linspace. ``quadratic``: denser near ``t_end``. ``karras``: the EDM grid
    ``sigma_i = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho`` over the
    process's VE noise level, mapped back to time (the last point is ``t_end`` exactly, so a grid
    ending at ``t = 0`` ends at ``sigma = 0``). ``log_snr``: uniform in log-SNR (DPM-Solver's choice).
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
    if kind == "karras":
        sig = process.sigma(ts)
        smax, smin = sig[0].item(), sig[1].item()
        n = steps if t_end == 0 else steps + 1
        i = torch.arange(n, dtype=dtype) / max(n - 1, 1)
        sigmas = (smax ** (1 / rho) + i * (smin ** (1 / rho) - smax ** (1 / rho))) ** rho
        grid = process.t_from_sigma(sigmas)
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
    raise ValueError(f"unknown grid kind {kind!r}; expected uniform, quadratic, karras or log_snr")


def noise_like(process: LinearGaussianProcess, x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Fresh noise for a sampler step: the process's own (white or correlated) noise."""
    return process.noise_like(x, generator)


__all__ = [
    "Callback",
    "Denoiser",
    "GridSteps",
    "SampleResult",
    "keep_still",
    "noise_like",
    "prepare_grid",
    "step_time",
    "time_grid",
]
