r"""Reverse-SDE and probability-flow samplers for any linear Gaussian process (Song et al. 2021).

The forward process ``dx = f(x, t) dt + g(t) dW`` (from :class:`LinearGaussianProcess`) has the
reverse-time SDE and the probability-flow ODE

.. math:: dx = [f(x, t) - g(t)^2 \nabla\log p_t(x)]\,dt + g(t)\,d\bar W, \qquad
          dx = [f(x, t) - \tfrac12 g(t)^2 \nabla\log p_t(x)]\,dt,

integrated from ``grid[0]`` (the prior, ``t = 1``) down to ``grid[-1]``. The score comes from the
:class:`Denoiser` as ``-eps_hat / s(t)``.

* :func:`sample_euler_maruyama`: ``x_mean = x - (f - g^2 s) dt``, ``x = x_mean + g sqrt(dt) z``;
  the last step returns ``x_mean`` (no noise). NFE = N.
* :func:`sample_predictor_corrector`: score_sde's PC sampler. At each grid time the corrector
  (Langevin / annealed Langevin) runs ``n_corrector`` times, then the predictor moves to the next
  grid time. The reverse-diffusion predictor uses the process discretised between grid points:
  the forward kernel ``x_t = r x_s + m y + G z`` (``r`` = :meth:`transition_ratio`, ``m = b_t - r b_s``,
  ``G^2 = s_t^2 - r^2 s_s^2``) gives ``f = (r - 1) x + m y`` and the reverse step
  ``x_mean = x - f + G^2 s``, ``x = x_mean + G z`` (for VP this is the DDPM discretisation
  ``f = (sqrt(alpha_i) - 1) x, G = sqrt(beta_i)``; for VE ``f = 0, G^2 = sigma_i^2 - sigma_{i-1}^2``).
  Returns the last ``x_mean``. NFE = N (n_corrector + 1).
* :func:`sample_probability_flow`: Euler or classical RK4 on the probability-flow ODE.

Shapes: ``x`` is ``(B, ...)``; the grid is ``(N + 1,)`` or ``(N + 1, *t_shape)`` for per-element time.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from difflab.core.broadcast import expand_like
from difflab.core.samplers.base import Callback, Denoiser, SampleResult, noise_like, step_time

Predictor = Literal["reverse_diffusion", "euler_maruyama"]
Corrector = Literal["langevin", "ald", "none"]


def _x0_score(denoiser: Denoiser, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(x0_hat, score, s(t) expanded)`` from one network evaluation."""
    x0, eps = denoiser(x, t)
    _, _, s = denoiser.process.coefficients_like(t, x)
    return x0, -eps / s, s


def _times(grid: Tensor, i: int, x: Tensor) -> tuple[Tensor, Tensor]:
    """Grid rows ``i`` and ``i + 1`` as time tensors for ``x`` in ``x``'s dtype."""
    return step_time(grid, i, x).to(x.dtype), step_time(grid, i + 1, x).to(x.dtype)


def _check_grid(grid: Tensor) -> None:
    if grid.ndim == 0 or grid.shape[0] < 2:
        raise ValueError(f"grid must hold at least two times, got shape {tuple(grid.shape)}")


def sample_euler_maruyama(
    denoiser: Denoiser,
    x: Tensor,
    grid: Tensor,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> SampleResult:
    r"""Euler–Maruyama on the reverse SDE (score_sde's ``EulerMaruyamaPredictor``).

    For ``dt = t_i - t_{i+1} > 0``: ``x_mean = x - [f(x, t_i) - g(t_i)^2 s(x, t_i)] dt`` and
    ``x = x_mean + g(t_i) sqrt(dt) z``. The final step returns ``x_mean``.

    Args:
        denoiser: the wrapped network (gives the score ``-eps_hat / s``).
        x: the prior sample at ``grid[0]``, ``(B, ...)``.
        grid: descending times ``(N + 1,)`` or ``(N + 1, *t_shape)``.
    Returns:
        :class:`SampleResult` with ``nfe = N``.
    """
    _check_grid(grid)
    process, y = denoiser.process, denoiser.y
    nfe0 = denoiser.nfe
    n = grid.shape[0] - 1
    for i in range(n):
        t, t_next = _times(grid, i, x)
        x0, score, _ = _x0_score(denoiser, x, t)
        dt = expand_like((t - t_next).to(x.dtype), x)
        x_mean = x - process.reverse_drift(x, t, score, y) * dt
        if i < n - 1:
            g = expand_like(process.diffusion(t).to(x.dtype), x)
            x = x_mean + g * dt.sqrt() * noise_like(process, x, generator)
        else:
            x = x_mean
        if callback is not None:
            callback({"step": i, "t": t_next, "x": x, "x0": x0})
    return SampleResult(x, denoiser.nfe - nfe0, {})


def langevin_step_size(score: Tensor, z: Tensor, snr: float, alpha: Tensor | float = 1.0) -> Tensor:
    r"""Langevin corrector step ``eps = 2 alpha (snr ||z|| / ||s||)^2`` with batch-mean norms (score_sde).

    ``||.||`` is the per-sample Euclidean norm averaged over the batch, so ``eps`` is shared by the
    batch (times ``alpha`` of shape ``(B,)`` or a scalar). Returns a tensor broadcastable against ``x``.
    """
    b = score.shape[0]
    s_norm = score.reshape(b, -1).norm(dim=-1).mean()
    z_norm = z.reshape(b, -1).norm(dim=-1).mean()
    alpha = torch.as_tensor(alpha, dtype=score.dtype, device=score.device)
    return expand_like(2 * alpha * (snr * z_norm / s_norm) ** 2, score)


def ald_step_size(std: Tensor, snr: float) -> Tensor:
    r"""Annealed Langevin dynamics step ``eps = 2 (snr std(t))^2`` (SGMSE's ``AnnealedLangevinDynamics``)."""
    return 2 * (snr * std) ** 2


def _corrector_step_size(process, corrector: Corrector, score: Tensor, z: Tensor, s: Tensor, snr: float, t, t_next):
    """The corrector's step size: Langevin's ``2 alpha (snr ||z|| / ||score||)^2`` or ALD's ``2 (snr s)^2``."""
    if corrector == "langevin":
        alpha = process.transition_ratio(t_next, t).to(z.dtype) ** 2
        if alpha.ndim > 1:  # per-element time: one alpha per sample, as in score_sde
            alpha = alpha.reshape(alpha.shape[0], -1).mean(-1)
        return langevin_step_size(score, z, snr, alpha)
    return ald_step_size(s, snr)


def _predictor_step(
    process, predictor: Predictor, x: Tensor, t: Tensor, t_next: Tensor, score: Tensor, z: Tensor, y
) -> tuple[Tensor, Tensor]:
    """One predictor move ``t -> t_next``: ``(x, x_mean)`` (reverse diffusion or Euler-Maruyama)."""
    if predictor == "reverse_diffusion":
        r = expand_like(process.transition_ratio(t_next, t).to(x.dtype), x)
        _, b_t, s_t = process.coefficients_like(t, x)
        _, b_s, s_s = process.coefficients_like(t_next, x)
        f = (r - 1) * x
        if process.conditional:
            f = f + (b_t - r * b_s) * y
        g2 = (s_t**2 - r**2 * s_s**2).clamp_min(0.0)
        x_mean = x - f + g2 * score
        return x_mean + g2.sqrt() * z, x_mean
    dt = expand_like((t - t_next).to(x.dtype), x)
    x_mean = x - process.reverse_drift(x, t, score, y) * dt
    return x_mean + expand_like(process.diffusion(t).to(x.dtype), x) * dt.sqrt() * z, x_mean


def sample_predictor_corrector(
    denoiser: Denoiser,
    x: Tensor,
    grid: Tensor,
    *,
    predictor: Predictor = "reverse_diffusion",
    corrector: Corrector = "ald",
    snr: float = 0.16,
    n_corrector: int = 1,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> SampleResult:
    r"""Predictor-corrector sampling (Song et al. 2021, Alg. 2–3; SGMSE+ uses ``ald`` with ``snr = 0.5``).

    For each grid time ``t_i`` (``i = 0..N-1``) the corrector runs ``n_corrector`` times at ``t_i``:

    * ``langevin``: ``x <- x + eps s + sqrt(2 eps) z`` with ``eps = 2 alpha (snr ||z||/||s||)^2``
      (batch-mean norms; ``alpha = r(t_{i+1}, t_i)^2``, i.e. ``1 - beta_i`` for VP and 1 for VE);
    * ``ald``: the same update with ``eps = 2 (snr s(t_i))^2``;
    * ``none``: no corrector;

    then the predictor moves ``x`` from ``t_i`` to ``t_{i+1}`` (``reverse_diffusion`` with the
    discretised process, or ``euler_maruyama``). Returns the final noise-free ``x_mean``.

    Args:
        denoiser: the wrapped network.
        x: the prior sample at ``grid[0]``, ``(B, ...)``.
        grid: descending times ``(N + 1,)`` or per element.
        predictor, corrector, snr, n_corrector: as above.
    Returns:
        :class:`SampleResult` with ``nfe = N (n_corrector + 1)`` (0 corrector steps for ``none``) and
        ``info["corrector_step_sizes"]``: the step size used by each corrector update (a list of tensors).
    """
    _check_grid(grid)
    if predictor not in ("reverse_diffusion", "euler_maruyama"):
        raise ValueError(f"unknown predictor {predictor!r}; expected 'reverse_diffusion' or 'euler_maruyama'")
    if corrector not in ("langevin", "ald", "none"):
        raise ValueError(f"unknown corrector {corrector!r}; expected 'langevin', 'ald' or 'none'")
    if n_corrector < 0:
        raise ValueError(f"n_corrector must be >= 0, got {n_corrector}")
    process, y = denoiser.process, denoiser.y
    nfe0 = denoiser.nfe
    n = grid.shape[0] - 1
    n_corr = 0 if corrector == "none" else n_corrector
    step_sizes: list[Tensor] = []
    x_mean = x
    for i in range(n):
        t, t_next = _times(grid, i, x)
        # ---- corrector at t_i
        for _ in range(n_corr):
            _, score, s = _x0_score(denoiser, x, t)
            z = noise_like(process, x, generator)
            eps = _corrector_step_size(process, corrector, score, z, s, snr, t, t_next)
            step_sizes.append(eps)
            x_mean = x + eps * score
            x = x_mean + (2 * eps).sqrt() * z
        # ---- predictor t_i -> t_{i+1}
        x0, score, _ = _x0_score(denoiser, x, t)
        z = noise_like(process, x, generator)
        x, x_mean = _predictor_step(process, predictor, x, t, t_next, score, z, y)
        if callback is not None:
            callback({"step": i, "t": t_next, "x": x if i < n - 1 else x_mean, "x0": x0})
    return SampleResult(x_mean, denoiser.nfe - nfe0, {"corrector_step_sizes": step_sizes})


def sample_probability_flow(
    denoiser: Denoiser,
    x: Tensor,
    grid: Tensor,
    *,
    method: Literal["euler", "rk4"] = "euler",
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> SampleResult:
    r"""Fixed-step integration of the probability-flow ODE ``dx/dt = f - g^2 s / 2`` along the grid.

    ``euler``: 1 NFE per step. ``rk4``: the classical fourth-order Runge–Kutta scheme, 4 NFE per step
    (the midpoint time is the arithmetic mean of the grid times). ``generator`` is unused (the ODE is
    deterministic) and accepted for a uniform signature.
    """
    _check_grid(grid)
    if method not in ("euler", "rk4"):
        raise ValueError(f"unknown method {method!r}; expected 'euler' or 'rk4'")
    process, y = denoiser.process, denoiser.y
    nfe0 = denoiser.nfe

    def velocity(x_: Tensor, t_: Tensor) -> tuple[Tensor, Tensor]:
        x0, score, _ = _x0_score(denoiser, x_, t_)
        return process.reverse_drift(x_, t_, score, y, probability_flow=True), x0

    n = grid.shape[0] - 1
    for i in range(n):
        t, t_next = _times(grid, i, x)
        h = expand_like((t_next - t).to(x.dtype), x)  # negative: integrating backwards in time
        k1, x0 = velocity(x, t)
        if method == "euler":
            x = x + h * k1
        else:
            t_mid = (t + t_next) / 2
            k2, _ = velocity(x + 0.5 * h * k1, t_mid)
            k3, _ = velocity(x + 0.5 * h * k2, t_mid)
            k4, _ = velocity(x + h * k3, t_next)
            x = x + h * (k1 + 2 * k2 + 2 * k3 + k4) / 6
        if callback is not None:
            callback({"step": i, "t": t_next, "x": x, "x0": x0})
    return SampleResult(x, denoiser.nfe - nfe0, {})


__all__ = [
    "sample_euler_maruyama",
    "sample_predictor_corrector",
    "sample_probability_flow",
    "langevin_step_size",
    "ald_step_size",
]
