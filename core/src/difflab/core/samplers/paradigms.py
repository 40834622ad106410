r"""ParaDiGMS: parallel sampling by sliding-window Picard iteration (Shih et al. 2023, arXiv:2305.16317).

A sequential sampler with ``N`` steps is a recursion ``x_{j+1} = x_j + Delta_j(x_j) + xi_j`` with
the deterministic drift ``Delta_j(x) = mu_j(x) - x`` (``mu_j`` the noise-free step from ``t_j`` to
``t_{j+1}``) and the step noise ``xi_j = sigma_j z_j``. Drawing every ``z_j`` in advance turns the
whole trajectory into the fixed point of the Picard map

.. math:: X_{j+1} = X_b + \sum_{i=b}^{j} \big(\Delta_i(X_i) + \xi_i\big), \qquad j = b, \dots, b + p - 1,

on a window ``[b, b + p)`` of ``p`` positions. One *round* evaluates the network once, batched over
all ``p`` positions (their states are concatenated along the batch dimension, so the model must
accept ``p B`` samples), then updates the window by a cumulative sum. The window slides past the
longest prefix whose new values moved by at most the tolerance,

.. math:: \max_{\text{samples}} \frac{\lVert X^{new}_{j+1} - X^{old}_{j+1} \rVert^2}{D\, \tilde\sigma_j^2} \le \tau^2,

with ``D`` the number of elements per sample and :math:`\tilde\sigma_j^2` the ancestral (``eta = 1``)
posterior variance of step ``j`` (for a step whose variance is 0, the last step onto ``t = 0``,
the previous non-zero one). The sample with the largest deviation decides, so every sample in the
batch is converged. Newly opened window positions start from the last computed state. Because the
first position of a window is always exact, the window advances by at least one step per round and
the result equals the sequential sampler with the same noise up to the tolerance.

The per-step update is the DDIM-family posterior of the process
(:meth:`LinearGaussianProcess.posterior`), so any linear Gaussian process works:

* ``step="ddim"``: ``mu_j`` the DDIM step with ``eta``, noise ``eta tilde sigma_j z_j`` on every step
  when ``eta > 0`` (as :func:`~difflab.core.samplers.ddim.sample_ddim`);
* ``step="ddpm"``: the ancestral step (``eta = 1``) with no noise on the final step (as
  :func:`~difflab.core.samplers.ddpm.sample_ddpm` with ``fixed_small`` variance).

With the same ``generator`` state the noises are drawn in the sequential sampler's order, so the
two outputs are directly comparable.

Cost: ``info["rounds"]`` sequential rounds (= batched network calls, the latency on parallel
hardware) versus ``N`` for the sequential sampler; ``nfe`` is the total number of per-position
network evaluations (the sum of window sizes), which exceeds ``N``.

Shapes: ``x`` ``(B, ...)``; ``grid`` ``(N + 1,)`` or ``(N + 1, *t_shape)`` (per-element time).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from difflab.core.broadcast import expand_like
from difflab.core.samplers.base import Callback, Denoiser, SampleResult, noise_like, step_time

StepKind = Literal["ddim", "ddpm"]


def _tile(v: Tensor | None, times: int) -> Tensor | None:
    if v is None:
        return None
    return v.repeat((times,) + (1,) * (v.ndim - 1))


def _check_options(step: str, window: int, tolerance: float, eta: float, grid: Tensor) -> None:
    if step not in ("ddim", "ddpm"):
        raise ValueError(f"unknown step {step!r}; expected 'ddim' or 'ddpm'")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    if not eta >= 0:
        raise ValueError(f"eta must be >= 0, got {eta!r}")
    if grid.ndim == 0 or grid.shape[0] < 2:
        raise ValueError(f"grid must hold at least two times, got shape {tuple(grid.shape)}")


def _noises_and_variances(
    process, x: Tensor, ts: list[Tensor], step: str, eta: float, generator: torch.Generator | None
) -> tuple[list[Tensor | float], list[Tensor]]:
    """Per step ``j``: the pre-drawn noise ``xi_j = eta sigma_j z_j`` (none on DDPM's last step) and the
    error normaliser ``sigma_j^2`` (a zero variance replaced by the previous step's, or 1)."""
    n = len(ts) - 1
    post_std = [expand_like(process.posterior_std(ts[j + 1], ts[j]).to(x.dtype), x) for j in range(n)]
    xis: list[Tensor | float] = []
    for j in range(n):
        noisy = eta > 0 and not (step == "ddpm" and j == n - 1)
        xis.append(eta * post_std[j] * noise_like(process, x, generator) if noisy else 0.0)
    var: list[Tensor] = []
    prev = None
    for j in range(n):
        v = (post_std[j] ** 2).expand_as(x)
        if bool((v <= 0).any()):
            v = torch.where(v > 0, v, prev if prev is not None else torch.ones_like(v))
        var.append(v)
        prev = v
    return xis, var


def _picard_update(
    xs: list[Tensor], begin: int, drift: tuple[Tensor, ...], xis: list, var: list[Tensor], ts: list[Tensor], tol2: float
) -> int:
    """Picard update of the window in place, ``X[j+1] = X[begin] + sum_{i=begin..j} (Delta_i + xi_i)``;
    returns the offset of the first position whose change exceeds the tolerance (the window size if none)."""
    acc, p, b = xs[begin], len(drift), xs[begin].shape[0]
    first_bad = p
    for k in range(p):
        j = begin + k
        keep = expand_like(ts[j + 1] == ts[j], acc)  # frozen elements keep their state
        acc = torch.where(keep, acc, acc + drift[k] + xis[j])
        err = ((acc - xs[j + 1]) ** 2 / var[j]).reshape(b, -1).mean(-1).max()
        if first_bad == p and bool(err > tol2):
            first_bad = k
        xs[j + 1] = acc
    return first_bad


def sample_paradigms(
    denoiser: Denoiser,
    x: Tensor,
    grid: Tensor,
    *,
    step: StepKind = "ddim",
    eta: float = 0.0,
    window: int = 20,
    tolerance: float = 0.1,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> SampleResult:
    r"""Sample with ParaDiGMS over a DDIM or DDPM step.

    Args:
        denoiser: the wrapped network; it is called on ``window * B`` samples at once (the
            process condition ``denoiser.y`` is tiled to match; a network that closes over
            per-sample conditioning must accept the tiled batch).
        x: start state at ``grid[0]``, ``(B, ...)``.
        grid: descending times, ``(N + 1,)`` or per element.
        step: ``ddim`` (with ``eta``) or ``ddpm`` (ancestral).
        eta: DDIM noise scale (ignored for ``ddpm``).
        window: parallel window ``p`` (positions evaluated per round; the reference default is 10
            per device batch, larger windows save more rounds).
        tolerance: ``tau`` of the convergence test (0.1 in the paper).
        generator: source of the pre-drawn step noises.
        callback: called after every round with ``{"step": round, "t": grid time of the window start,
            "x": the state at the window start, "x0": None, "begin": window start index}``.

    Returns:
        :class:`SampleResult` with ``nfe`` the total per-position evaluations and ``info``:
        ``rounds`` (batched network calls), ``steps`` (``N``), ``window``.
    """
    _check_options(step, window, tolerance, eta, grid)
    process = denoiser.process
    eta_ = 1.0 if step == "ddpm" else float(eta)
    n = grid.shape[0] - 1
    b = x.shape[0]

    # ---- per-step times, noise scales and error normalisers, precomputed once
    ts = [step_time(grid, j, x).to(x.dtype) for j in range(n + 1)]
    xis, var = _noises_and_variances(process, x, ts, step, eta_, generator)

    # ---- buffer X[0..N], all initialised to x_T
    xs = [x.clone() for _ in range(n + 1)]
    begin, end = 0, min(window, n)
    rounds = 0
    total = 0
    y_saved = denoiser.y
    tol2 = tolerance**2
    try:
        while begin < n:
            p = end - begin
            rounds += 1
            total += p
            x_cat = torch.cat(xs[begin:end], dim=0)
            t_cat = torch.cat(ts[begin:end], dim=0)
            s_cat = torch.cat(ts[begin + 1 : end + 1], dim=0)
            denoiser.y = _tile(y_saved, p)
            x0, eps = denoiser(x_cat, t_cat)
            mean, _ = process.posterior(x_cat, x0, s_cat, t_cat, denoiser.y, eps=eps, eta=eta_)
            drift = (mean - x_cat).split(b, dim=0)
            first_bad = _picard_update(xs, begin, drift, xis, var, ts, tol2)
            new_begin = begin + min(1 + first_bad, p)
            new_end = min(new_begin + window, n)
            for j in range(end + 1, new_end + 1):
                xs[j] = xs[end]
            if callback is not None:
                callback({"step": rounds - 1, "t": ts[new_begin], "x": xs[new_begin], "x0": None, "begin": new_begin})
            begin, end = new_begin, new_end
    finally:
        denoiser.y = y_saved
    return SampleResult(xs[n], total, {"rounds": rounds, "steps": n, "window": window})


__all__ = ["sample_paradigms"]
