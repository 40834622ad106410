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
from typing import Any

import torch
from torch import Tensor

from difflab.core.parameterization import Prediction, to_x0_eps
from difflab.core.processes.base import LinearGaussianProcess
from difflab.core.samplers.registry import GridKind, time_grid

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


def dynamic_threshold(x0: Tensor, quantile: float, max_value: float = 1.0) -> Tensor:
    """Imagen's dynamic thresholding of ``x0`` ``(B, ...)``: per example the ``quantile`` of ``|x0|``,
    clamped to ``[1, max_value]``, is the level ``s``; returns ``clamp(x0, -s, s) / s``."""
    flat = x0.reshape(x0.shape[0], -1)
    values = flat.abs() if flat.dtype in (torch.float32, torch.float64) else flat.abs().float()
    level = torch.quantile(values, quantile, dim=1)
    level = level.clamp(min=1.0, max=max_value).to(x0.dtype).reshape((-1,) + (1,) * (x0.ndim - 1))
    return torch.maximum(torch.minimum(x0, level), -level) / level


class Denoiser:
    """Wraps a network ``model(x_t, t) -> out`` into ``(x0_hat, eps_hat)`` for a process.

    Args:
        model: callable taking ``x_t`` (shape of the data) and ``t`` (shape ``(B,)`` or per element,
            in [0, 1]) and returning a prediction of kind ``prediction``. Network conditioning
            (class labels, context) is closed over by the callable.
        process: the forward process the network was trained with.
        prediction: what the network outputs: ``eps``, ``x0``, ``v``, ``score`` or ``velocity``.
        y: the process condition (OUVE, ResShift), shape of ``x``; ``None`` for unconditional processes.
        clip_x0: if set, clamp ``x0_hat`` to ``[-clip_x0, clip_x0]``.
        threshold: dynamic thresholding (Saharia et al. 2022, Imagen): with ``p = threshold`` in
            (0, 1], per example ``s = clamp(quantile_p(|x0_hat|), 1, threshold_max)`` and
            ``x0_hat <- clamp(x0_hat, -s, s) / s`` (after ``clip_x0``).
        threshold_max: the largest ``s`` of dynamic thresholding (diffusers' ``sample_max_value``).
        rederive_eps: after clipping or thresholding, recompute ``eps_hat`` from the changed ``x0_hat``
            (default; diffusers' ``use_clipped_model_output=True``), or keep the model's (``False``).
    """

    def __init__(
        self,
        model: ModelFn,
        process: LinearGaussianProcess,
        prediction: Prediction = "eps",
        *,
        y: Tensor | None = None,
        clip_x0: float | None = None,
        threshold: float | None = None,
        threshold_max: float = 1.0,
        rederive_eps: bool = True,
    ) -> None:
        if threshold is not None and not 0 < threshold <= 1:
            raise ValueError(f"threshold must be a quantile in (0, 1], got {threshold!r}")
        self.model = model
        self.process = process
        self.prediction = prediction
        self.y = y
        self.clip_x0 = clip_x0
        self.threshold = threshold
        self.threshold_max = threshold_max
        self.rederive_eps = rederive_eps
        self.nfe = 0

    def settings(self) -> dict[str, Any]:
        """The keyword settings (condition ``y``, clipping, thresholding), to build a :class:`Denoiser`
        of another model that treats its outputs the same way (``Denoiser(m, process, prediction,
        **den.settings())``)."""
        return dict(
            y=self.y,
            clip_x0=self.clip_x0,
            threshold=self.threshold,
            threshold_max=self.threshold_max,
            rederive_eps=self.rederive_eps,
        )

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
        if self.clip_x0 is None and self.threshold is None:
            return x0, eps
        if self.clip_x0 is not None:
            x0 = x0.clamp(-self.clip_x0, self.clip_x0)
        if self.threshold is not None:
            x0 = dynamic_threshold(x0, self.threshold, self.threshold_max)
        if self.rederive_eps:
            _, eps = to_x0_eps(self.process, "x0", x0, x, t, self.y, coefficients=coefficients)
        return x0, eps

    def score(self, x: Tensor, t: Tensor) -> Tensor:
        """Score ``-eps_hat / s(t)`` of the marginal at ``t``."""
        from difflab.core.broadcast import expand_like

        _, eps = self(x, t)
        _, _, s = self.process.coefficients(t)
        return -eps / expand_like(s, x)


def require_shared_grid(name: str, grid: Tensor) -> None:
    """Samplers whose coefficients are computed once per step (LMS, DEIS) take one time per step for
    the whole batch: a grid of shape ``(N + 1,)``."""
    if grid.ndim != 1:
        raise ValueError(f"{name} takes one time per step, a grid of shape (N + 1,); got {tuple(grid.shape)}")


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

    def end_step(
        self, i: int, x: Tensor, x_new: Tensor, x0: Tensor, callback: Callback | None, shift: Tensor | None = None
    ) -> Tensor:
        """Close step ``i``: the state at its end.

        A solver that steps the shifted state ``x - b(t) y`` of a conditional process passes
        ``shift = y`` to add ``b(s) y`` back; elements whose time did not move keep ``x``
        (:func:`keep_still`); ``callback`` gets ``{"step": i, "t": s, "x": state, "x0": x0}``.
        """
        if shift is not None:
            from difflab.core.broadcast import expand_like

            x_new = x_new + expand_like(self.parts[i][1], x_new) * shift
        x = keep_still(self.still[i], x, x_new)
        if callback is not None:
            callback({"step": i, "t": self.s[i], "x": x, "x0": x0})
        return x

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


def noise_like(process: LinearGaussianProcess, x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Fresh noise for a sampler step: the process's own (white or correlated) noise."""
    return process.noise_like(x, generator)


__all__ = [
    "Callback",
    "dynamic_threshold",
    "GridKind",
    "Denoiser",
    "GridSteps",
    "SampleResult",
    "keep_still",
    "noise_like",
    "prepare_grid",
    "step_time",
    "time_grid",
]
