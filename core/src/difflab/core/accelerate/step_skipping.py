r"""Training-free step skipping (AdaptiveDiffusion; Ye et al. 2024, "Training-Free Adaptive Diffusion
with Bounded Difference Approximation Strategy", NeurIPS 2024, arXiv:2410.09873).

Neighbouring noise predictions along a denoising trajectory are often nearly equal, so a network call
can be replaced by the last prediction. AdaptiveDiffusion decides *online* which calls to skip from the
latents alone: where the trajectory is locally smooth (its third-order difference is small relative to
its first-order difference) the next noise prediction is well approximated by the previous one.

With ``x_k`` the latent handed to the ``k``-th denoiser call of one sampling run and the mean absolute
first difference

.. math:: d_k = \frac{1}{n}\,\lVert x_k - x_{k-1}\rVert_1 \qquad (n = \text{number of elements}),

the relative third-order difference of the latents is (a second difference of the first differences)

.. math:: \xi_k = \frac{\lvert d_k - 2 d_{k-1} + d_{k-2}\rvert}{2\, d_{k-1}}
          = \frac{\lvert (d_k + d_{k-2})/2 - d_{k-1}\rvert}{d_{k-1}} .

Call ``k`` reuses the previous network output instead of evaluating the network when

.. math:: \xi_k < \delta \quad\text{and}\quad \text{(skips in a row so far)} < C_{max},

and the first ``warmup`` calls (at least 4: three differences are needed) always evaluate the network.
``delta`` (:attr:`AdaptiveSkipDenoiser.skip_threshold`) trades network calls for fidelity; ``delta = 0``
never skips, so the wrapped sampler is reproduced bit for bit. ``C_max`` (``max_skips``) bounds the
error of a run of reused predictions. The defaults ``delta = 0.01``, ``C_max = 4`` are those of the
authors' Stable Diffusion XL setting. The decision is made once per call for the whole batch (``d_k``
averages over every element), as in the paper, so a skipped call saves the whole batched evaluation.

What is reused: the raw network output (its own parameterisation), converted at the *current*
``(x_k, t_k)`` by the usual :class:`~difflab.core.samplers.base.Denoiser` conversion. For an
eps-prediction network this is the paper's reuse of the noise prediction, with ``x0_hat`` re-derived
from it at the new latent. Clipping and thresholding of the wrapped denoiser apply as before.

Counting: the wrapper is a :class:`~difflab.core.samplers.base.Denoiser` whose ``nfe`` counts only
real network evaluations, so the ``nfe`` of any sampler's :class:`SampleResult` run through it is the
honest number of network calls; ``calls`` counts what the sampler asked for. :func:`sample_skipping`
runs a sampler through a fresh wrapper state and puts ``calls``, ``network_calls``, ``skipped`` and the
per-call ``evaluated`` mask in ``info``.

The wrapper keeps state between calls (the last latents and the last output), unlike a sampler:
call :meth:`AdaptiveSkipDenoiser.reset` before each sampling run (done by :func:`sample_skipping`;
a change of the batch shape also resets). It is meant for sequential samplers (one or a few calls
per step, as DDIM, DPM-Solver, Euler, Heun); for multi-evaluation steps every call counts as a step of
the latent sequence. Shapes: ``x`` ``(B, ...)``, ``t`` ``(B,)`` or per element.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from difflab.core.samplers.base import Denoiser, SampleResult


class AdaptiveSkipDenoiser(Denoiser):
    """A :class:`Denoiser` that skips network calls by AdaptiveDiffusion's third-order criterion.

    Args:
        denoiser: the denoiser to accelerate; its model, process, parameterisation, condition ``y``
            and clipping / thresholding settings are taken over (it is not called itself).
        skip_threshold: ``delta`` of the criterion, ``>= 0``; ``0`` never skips.
        max_skips: ``C_max``, the largest number of consecutive skipped calls, ``>= 1``.
        warmup: the number of first calls that always evaluate the network, ``>= 4``.

    Attributes:
        calls: denoiser calls since the last :meth:`reset` (what the sampler asked for).
        network_calls: real network evaluations since the last :meth:`reset`.
        evaluated: per call since the last reset, whether the network was evaluated.
        nfe: real network evaluations since construction (what samplers report as NFE).
    """

    def __init__(
        self, denoiser: Denoiser, *, skip_threshold: float = 0.01, max_skips: int = 4, warmup: int = 4
    ) -> None:
        if not skip_threshold >= 0:
            raise ValueError(f"skip_threshold must be >= 0, got {skip_threshold!r}")
        if max_skips < 1:
            raise ValueError(f"max_skips must be >= 1, got {max_skips!r}")
        if warmup < 4:
            raise ValueError(f"warmup must be >= 4 (the criterion needs three differences), got {warmup!r}")
        super().__init__(
            denoiser.model,
            denoiser.process,
            denoiser.prediction,
            **denoiser.settings(),
        )
        self.skip_threshold = float(skip_threshold)
        self.max_skips = int(max_skips)
        self.warmup = int(warmup)
        self.reset()

    def reset(self) -> None:
        """Forget the trajectory: the next call starts a new sampling run."""
        self.calls = 0
        self.network_calls = 0
        self.evaluated: list[bool] = []
        self.xi: list[float] = []
        self._prev_x: Tensor | None = None
        self._diffs: list[float] = []
        self._last_out: Tensor | None = None
        self._run = 0

    def _skip(self) -> bool:
        """The decision for the current call, from the first differences recorded so far."""
        if self.calls < self.warmup or self._last_out is None or len(self._diffs) < 3:
            return False
        d2, d1, d0 = self._diffs[-3:]
        xi = abs(d0 - 2.0 * d1 + d2) / (2.0 * d1) if d1 > 0 else float("inf")
        self.xi.append(xi)
        return xi < self.skip_threshold and self._run < self.max_skips

    def raw(self, x: Tensor, t: Tensor) -> Tensor:
        """The network output at ``(x, t)``: evaluated, or the last one reused when the criterion allows."""
        if self._prev_x is not None and self._prev_x.shape != x.shape:
            self.reset()
        if self._prev_x is not None:
            self._diffs.append(float((x - self._prev_x).abs().mean()))
        self._prev_x = x.detach()
        skip = self._skip()
        self.calls += 1
        self.evaluated.append(not skip)
        if skip:
            self._run += 1
            return self._last_out  # type: ignore[return-value]
        self._run = 0
        n0 = self.nfe
        out = super().raw(x, t)
        self.network_calls += self.nfe - n0
        self._last_out = out
        return out

    @property
    def skipped(self) -> int:
        """Skipped calls since the last :meth:`reset`."""
        return self.calls - sum(self.evaluated)


def sample_skipping(
    sampler: Callable[..., SampleResult],
    denoiser: AdaptiveSkipDenoiser,
    x: Tensor,
    grid: Tensor,
    **options: Any,
) -> SampleResult:
    """Run ``sampler(denoiser, x, grid, **options)`` from a fresh skipping state.

    Returns the sampler's :class:`SampleResult` (whose ``nfe`` already counts real network calls only)
    with ``info`` extended by ``calls`` (denoiser calls of the sampler), ``network_calls``, ``skipped``
    and ``evaluated`` (a bool tensor, one entry per call).
    """
    if not isinstance(denoiser, AdaptiveSkipDenoiser):
        raise TypeError(f"sample_skipping needs an AdaptiveSkipDenoiser, got {type(denoiser).__name__}")
    denoiser.reset()
    result = sampler(denoiser, x, grid, **options)
    result.info.update(
        calls=denoiser.calls,
        network_calls=denoiser.network_calls,
        skipped=denoiser.skipped,
        evaluated=torch.tensor(denoiser.evaluated, dtype=torch.bool),
    )
    return result


__all__ = ["AdaptiveSkipDenoiser", "sample_skipping"]
