r"""Score calibration of a pretrained diffusion model (Pang et al. 2023, "On Calibrating Diffusion
Probabilistic Models", NeurIPS 2023, arXiv:2302.10688).

The data score is a martingale of the reverse process, and in particular has zero mean under every
noisy marginal: :math:`E_{q_t(x_t)}[\nabla\log q_t(x_t)] = 0`. With ``x_t = a x_0 + b y + s eps`` the
noise posterior mean is ``E[eps | x_t] = -s \nabla\log q_t``, so its expectation over the data vanishes
too. A trained network need not satisfy this; its per-time mean

.. math:: \eta_t = E_{q_t(x_t)}\big[\varepsilon_\theta(x_t, t)\big] \qquad (\text{shape of one example})

is estimated once from data and subtracted at sampling time:

.. math:: \varepsilon^{c}_\theta(x_t, t) = \varepsilon_\theta(x_t, t) - \eta_t, \qquad
          \hat x_0^{c} = \frac{x_t - b y - s\,\varepsilon^c_\theta}{a} = \hat x_0 + \frac{s}{a}\eta_t .

Calibration never increases the denoising score-matching loss: with ``E[eps] = 0``,

.. math:: E\lVert \varepsilon^c_\theta - \varepsilon\rVert^2 = E\lVert\varepsilon_\theta - \varepsilon\rVert^2
          - \lVert\eta_t\rVert^2 \quad\text{at every } t,

so the loss falls by exactly the squared norm of the removed mean (the paper's Eq. for the
eps-parameterisation; for an ``x0`` network the same correction reads ``x0_hat + (s/a) eta_t``).

:func:`estimate_eps_mean` evaluates ``eta`` on a grid of times (``x_t`` drawn from the forward process
at each grid time, one fresh noise per data example) and returns an :class:`EpsMeanTable`, linear in
``t`` between grid points. :class:`CalibratedModel` wraps a network so that it outputs the calibrated
prediction in its own parameterisation, and :class:`CalibratedDenoiser` is the corresponding
:class:`~difflab.core.samplers.base.Denoiser` (any core sampler runs on it; one network call per call).

Shapes: data ``(N, ...)``; ``eta`` ``(G, ...)`` for ``G`` grid times; model time ``t`` scalar or
``(B,)`` (one noise level per example; per-element times are not supported by the table).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from difflab.core.broadcast import expand_like
from difflab.core.parameterization import Prediction, from_x0_eps, to_x0_eps
from difflab.core.processes.base import LinearGaussianProcess
from difflab.core.samplers.base import Denoiser, ModelFn


@dataclass
class EpsMeanTable:
    """The mean noise prediction ``eta_t`` on a grid of times, linearly interpolated in ``t``.

    Attributes:
        times: ascending grid times ``(G,)``.
        means: ``eta`` at each grid time, ``(G, ...)`` (the shape of one example).
        stderr: Monte-Carlo standard error of each entry of ``means``, ``(G, ...)``.
        count: data examples averaged at each grid time.
    """

    times: Tensor
    means: Tensor
    stderr: Tensor
    count: int

    def __call__(self, t: Tensor | float, like: Tensor) -> Tensor:
        """``eta`` at time ``t`` (scalar or ``(B,)``) for a batch ``like`` ``(B, ...)``: shape of ``like``."""
        t = torch.as_tensor(t, dtype=torch.float64, device=self.times.device)
        if t.ndim == 0:
            t = t.expand(like.shape[0])
        if t.ndim != 1:
            raise ValueError(f"EpsMeanTable takes one time per example, shape (B,); got {tuple(t.shape)}")
        times = self.times.to(torch.float64)
        tc = t.clamp(float(times[0]), float(times[-1]))
        hi = torch.searchsorted(times, tc).clamp(1, times.shape[0] - 1)
        lo = hi - 1
        w = (tc - times[lo]) / (times[hi] - times[lo])
        means = self.means.to(torch.float64)
        eta = means[lo] + expand_like(w, means[lo]) * (means[hi] - means[lo])
        return eta.to(device=like.device, dtype=like.dtype).expand_as(like)


@torch.no_grad()
def estimate_eps_mean(
    model: ModelFn,
    process: LinearGaussianProcess,
    data: Tensor,
    *,
    prediction: Prediction = "eps",
    y: Tensor | None = None,
    times: Tensor | int = 50,
    batch_size: int = 1024,
    generator: torch.Generator | None = None,
) -> EpsMeanTable:
    """Estimate ``eta_t = E_q[eps_theta(x_t, t)]`` on a grid of times from data examples.

    Args:
        model: the network ``model(x_t, t)`` of kind ``prediction``.
        process: its forward process.
        data: clean examples ``(N, ...)``; each contributes one noisy ``x_t`` per grid time.
        prediction: the network's parameterisation.
        y: the process condition per example ``(N, ...)`` for conditional processes.
        times: ascending grid times ``(G,)``, or a count ``G`` of uniform times on
            ``[process.t_min, process.t_max]`` (``t_min`` raised to 1e-3 when it is 0).
        batch_size: examples per network call.
        generator: for the forward noise.
    """
    if data.ndim < 2 or data.shape[0] < 2:
        raise ValueError(f"data must have shape (N, ...) with N >= 2, got {tuple(data.shape)}")
    if isinstance(times, int):
        if times < 2:
            raise ValueError(f"times must be at least 2 grid points, got {times}")
        times = torch.linspace(max(process.t_min, 1e-3), process.t_max, times, dtype=torch.float64)
    times = torch.as_tensor(times, dtype=torch.float64)
    if times.ndim != 1 or times.shape[0] < 2 or not bool((times[1:] > times[:-1]).all()):
        raise ValueError(f"times must be ascending of shape (G,) with G >= 2, got {times.tolist()}")
    means, stderr = [], []
    n = data.shape[0]
    for tg in times.tolist():
        total = torch.zeros_like(data[0])
        total_sq = torch.zeros_like(data[0])
        for i in range(0, n, batch_size):
            x0 = data[i : i + batch_size]
            yy = None if y is None else y[i : i + batch_size]
            t = torch.full((x0.shape[0],), tg, dtype=x0.dtype, device=x0.device)
            xt, _ = process.sample_marginal(x0, t, yy, generator=generator)
            _, eps = to_x0_eps(process, prediction, model(xt, t), xt, t, yy)
            total += eps.sum(0)
            total_sq += (eps**2).sum(0)
        mean = total / n
        var = (total_sq / n - mean**2).clamp_min(0) * n / (n - 1)
        means.append(mean)
        stderr.append((var / n).sqrt())
    return EpsMeanTable(times.to(data.device), torch.stack(means), torch.stack(stderr), n)


class CalibratedModel:
    """A network with its mean noise prediction removed, in its own parameterisation.

    ``model(x, t) -> out`` of kind ``prediction`` becomes ``out_c``: ``(x0_hat, eps_hat)`` from ``out``,
    ``eps_c = eps_hat - eta_t``, ``x0_c`` re-derived from ``eps_c`` at ``(x, t)``, converted back to
    ``prediction``. One network call per call (a wrapped model's ``last_nfe`` is passed on).
    """

    def __init__(
        self,
        model: ModelFn,
        process: LinearGaussianProcess,
        table: EpsMeanTable,
        prediction: Prediction = "eps",
        *,
        y: Tensor | None = None,
    ) -> None:
        self.model = model
        self.process = process
        self.table = table
        self.prediction = prediction
        self.y = y
        self.last_nfe = 1

    def __call__(self, x: Tensor, t: Tensor) -> Tensor:
        out = self.model(x, t)
        self.last_nfe = int(getattr(self.model, "last_nfe", 1))
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        _, eps = to_x0_eps(self.process, self.prediction, out, x, t, self.y)
        eps_c = eps - self.table(t, x)
        x0_c, _ = to_x0_eps(self.process, "eps", eps_c, x, t, self.y)
        return from_x0_eps(self.process, self.prediction, x0_c, eps_c, t, self.y)


class CalibratedDenoiser(Denoiser):
    """The :class:`Denoiser` of ``denoiser`` with its network calibrated by ``table`` (same settings)."""

    def __init__(self, denoiser: Denoiser, table: EpsMeanTable) -> None:
        super().__init__(
            CalibratedModel(denoiser.model, denoiser.process, table, denoiser.prediction, y=denoiser.y),
            denoiser.process,
            denoiser.prediction,
            **denoiser.settings(),
        )
        self.table = table


__all__ = ["CalibratedDenoiser", "CalibratedModel", "EpsMeanTable", "estimate_eps_mean"]
