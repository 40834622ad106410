r"""Conversions between network parameterisations for any linear Gaussian process.

With ``x_t = a x_0 + b y + s eps`` write ``x' = x_t - b y = a x_0 + s eps``. Then

* eps-prediction:      x0 = (x' - s eps) / a
* x0-prediction:       eps = (x' - a x0) / s
* v-prediction:        v = a eps - s x0,  so  x0 = (a x' - s v) / (a^2 + s^2),  eps = (s x' + a v) / (a^2 + s^2)
                       (Salimans & Ho 2022; for VP ``a^2 + s^2 = 1``)
* score:               score = grad log q(x_t | y) = -eps / s
* velocity (flow):     u = dx_t/dt = a' x0 + b' y + s' eps  (flow matching: u = eps - x0)

Every function takes the process and ``t`` (shape ``(B,)`` or per element) and returns tensors of
``x``'s shape. :func:`to_x0_eps` is the single entry point used by the samplers.

Preconditioning (Karras et al. 2022, EDM) of an ``x0`` network ``F`` at the VE noise level
``sigma = s / a`` with data scale ``sd`` (:func:`edm_scales`, :func:`precondition_x0`):

* ``x0``:       ``x0_hat = c_skip x~ + c_out F``, ``x~ = (x_t - b y) / a`` (the VE-scaled input),
* ``residual``: ``x0_hat = y + c_skip (x~ - y) + c_out F`` (the same on the residual ``x0 - y`` around the
  process condition: a zero output returns ``y`` at large ``sigma`` and the input at small ``sigma``),

with ``c_skip = sd^2 / (sigma^2 + sd^2)`` and ``c_out = sigma sd / sqrt(sigma^2 + sd^2)``; EDM's loss
weight ``1 / c_out^2`` (:func:`edm_loss_weight`) makes the regression target of ``F`` unit-scale.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor

from difflab.core.broadcast import expand_like
from difflab.core.processes.base import LinearGaussianProcess

Prediction = Literal["eps", "x0", "v", "score", "velocity"]
Preconditioning = Literal["x0", "residual"]
PREDICTIONS: tuple[str, ...] = ("eps", "x0", "v", "score", "velocity")


def _shifted(
    process: LinearGaussianProcess,
    x: Tensor,
    t: Tensor,
    y: Tensor | None,
    coefficients: tuple[Tensor, Tensor, Tensor] | None = None,
):
    if coefficients is None:
        a, b, s = process.coefficients_like(t, x)
    else:
        a, b, s = (expand_like(c, x) for c in coefficients)
    xs = x - b * y if process.conditional else x
    return xs, a, b, s


def to_x0_eps(
    process: LinearGaussianProcess,
    kind: Prediction,
    out: Tensor,
    x: Tensor,
    t: Tensor,
    y: Tensor | None = None,
    *,
    coefficients: tuple[Tensor, Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """Convert a network output ``out`` of the given ``kind`` at ``(x, t)`` to ``(x0_hat, eps_hat)``.

    ``coefficients``: ``process.coefficients(t)`` if the caller already has them (a sampler that
    evaluates its whole grid once), so that they are not recomputed.
    """
    xs, a, b, s = _shifted(process, x, t, y, coefficients)
    if kind == "eps":
        return (xs - s * out) / a, out
    if kind == "x0":
        return out, (xs - a * out) / s
    if kind == "v":
        n = a**2 + s**2
        return (a * xs - s * out) / n, (s * xs + a * out) / n
    if kind == "score":
        eps = -s * out
        return (xs - s * eps) / a, eps
    if kind == "velocity":
        da, db, ds = (expand_like(d, x) for d in process.coefficient_derivatives(t))
        u = out - db * y if process.conditional else out
        det = s * da - ds * a
        return (s * u - ds * xs) / det, (a * u - da * xs) / (-det)
    raise ValueError(f"unknown prediction kind {kind!r}; expected one of {PREDICTIONS}")


def from_x0_eps(
    process: LinearGaussianProcess, kind: Prediction, x0: Tensor, eps: Tensor, t: Tensor, y: Tensor | None = None
) -> Tensor:
    """The quantity of ``kind`` implied by ``(x0, eps)`` at time ``t`` (training targets use this)."""
    a, b, s = process.coefficients_like(t, x0)
    if kind == "eps":
        return eps
    if kind == "x0":
        return x0
    if kind == "v":
        return a * eps - s * x0
    if kind == "score":
        return -eps / s
    if kind == "velocity":
        da, db, ds = (expand_like(d, x0) for d in process.coefficient_derivatives(t))
        u = da * x0 + ds * eps
        return u + db * y if process.conditional else u
    raise ValueError(f"unknown prediction kind {kind!r}; expected one of {PREDICTIONS}")


def convert(
    process: LinearGaussianProcess,
    out: Tensor,
    x: Tensor,
    t: Tensor,
    *,
    source: Prediction,
    target: Prediction,
    y: Tensor | None = None,
) -> Tensor:
    """Convert a prediction from ``source`` to ``target`` parameterisation."""
    x0, eps = to_x0_eps(process, source, out, x, t, y)
    return from_x0_eps(process, target, x0, eps, t, y)


def edm_scales(
    process: LinearGaussianProcess, t: Tensor, like: Tensor, sigma_data: float
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(a, b, c_skip, c_out)`` of EDM's preconditioning at ``t``, shaped to multiply ``like``.

    ``c_skip = sd^2 / (sigma^2 + sd^2)``, ``c_out = sigma sd / sqrt(sigma^2 + sd^2)``, ``sigma = s / a``.
    """
    a, b, s = process.coefficients_like(t, like)
    sigma2 = (s / a) ** 2
    sd2 = sigma_data**2
    return a, b, sd2 / (sigma2 + sd2), (sigma2 * sd2 / (sigma2 + sd2)).sqrt()


def precondition_x0(
    process: LinearGaussianProcess,
    out: Tensor,
    x_t: Tensor,
    t: Tensor,
    y: Tensor | None,
    sigma_data: float,
    kind: Preconditioning = "x0",
) -> Tensor:
    """The clean estimate ``x0_hat`` ``(B, ...)`` of a preconditioned network output ``out`` (module docstring).

    ``y`` is the process condition (``None`` for unconditional processes; required for ``residual``).
    """
    if kind not in ("x0", "residual"):
        raise ValueError(f"unknown preconditioning {kind!r}; expected 'x0' or 'residual'")
    a, b, c_skip, c_out = edm_scales(process, t, x_t, sigma_data)
    if kind == "residual":
        if y is None:
            raise ValueError("residual preconditioning needs the process condition y")
        return y + c_skip * ((x_t - b * y) / a - y) + c_out * out
    shifted = x_t - b * y if y is not None else x_t
    return c_skip * shifted / a + c_out * out


def edm_loss_weight(process: LinearGaussianProcess, t: Tensor, sigma_data: float) -> Tensor:
    """EDM's weight ``1 / c_out^2 = (sigma^2 + sd^2) / (sigma^2 sd^2)`` of the ``x0`` regression (shape of ``t``)."""
    sigma2 = process.sigma(t) ** 2
    sd2 = sigma_data**2
    return (sigma2 + sd2) / (sigma2 * sd2)
