r"""Noise-unconditional denoisers (Sun, Wang, Chen, Li & He 2025, "Is Noise Conditioning Necessary for
Denoising Generative Models?", arXiv:2502.13129).

A noise-unconditional network ``f(x_t)`` is not told the noise level. Trained with the usual loss
``E_{t, x_0, eps} || f(x_t) - r(x_0, eps, t) ||^2`` (``r`` the regression target: ``eps``, ``x0``,
velocity, ...), its optimum is the *effective target*, the conditional optimum averaged over the
posterior of the noise level given the input:

.. math:: R(x_t) = E_{p(t \mid x_t)}\big[ R(x_t, t) \big], \qquad
          p(t \mid x_t) \propto p(x_t \mid t)\, p(t), \qquad R(x_t, t) = E[r \mid x_t, t].

In high dimension ``p(t | x_t)`` is sharply concentrated (its spread shrinks like ``1/sqrt(D)``), so
``R(x_t) ~ R(x_t, t)`` and the error ``||R(x_t) - R(x_t, t)||`` is small. The paper bounds how a
sampler accumulates it: each step ``x_{i+1} = a_i x_i + b_i R(x_i)`` propagates an earlier error
through the products of the ``a``'s and adds ``b_i`` times the new one. For DDIM with an
eps-prediction network the coefficient of the noise term in ``x0_hat = (x_t - s eps)/a`` is ``s/a``,
which is huge near the prior: a small error in the noise prediction there becomes a large error in the
sample, and noise-unconditional DDIM fails. Flow matching (velocity) and EDM-style (``x0``-prediction)
samplers have bounded coefficients and degrade gracefully. The same holds for the Bayes-optimal
denoisers of a Gaussian mixture (tests/core/test_accel_noise_unconditional.py).

:class:`NoiseUnconditional` is the option: it wraps any network ``net(x, t, ...)`` and passes it a
constant time, so the same architecture and training code give a noise-unconditional model (usable
from a config as ``class_path: difflab.core.accelerate.NoiseUnconditional`` with the wrapped network
in ``init_args.network``). :func:`noise_unconditional_oracle` is the Bayes-optimal noise-unconditional
model of a :class:`~difflab.core.toy.GaussianMixture`, the effective target ``R(x)`` computed by
quadrature over a grid of noise levels with the mixture's closed-form marginals ``p(x | t)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from difflab.core.parameterization import Prediction, from_x0_eps
from difflab.core.processes.base import LinearGaussianProcess
from difflab.core.toy import GaussianMixture


class NoiseUnconditional(nn.Module):
    """``net(x, t, ...)`` called with the constant time ``t_value`` instead of ``t`` (same shape).

    Args:
        network: the wrapped network; its other arguments are passed through.
        t_value: the time the network always sees (0 by default: the time embedding becomes a
            learned constant).
    """

    def __init__(self, network: nn.Module, t_value: float = 0.0) -> None:
        super().__init__()
        self.network = network
        self.t_value = float(t_value)

    def __getattr__(self, name: str) -> Any:
        """Attributes the wrapped network has (its class count, sizes) read through the wrapper."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("network"), name)

    def forward(self, x: Tensor, t: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        t = torch.as_tensor(t, device=x.device)
        dtype = t.dtype if t.is_floating_point() else x.dtype
        return self.network(x, torch.full(t.shape, self.t_value, dtype=dtype, device=x.device), *args, **kwargs)

    def extra_repr(self) -> str:
        return f"t_value={self.t_value}"


def noise_level_posterior(
    mixture: GaussianMixture, process: LinearGaussianProcess, x: Tensor, times: Tensor, prior: Tensor | None = None
) -> Tensor:
    r"""``p(t_j | x)`` on a grid of noise levels, ``(B, M)``: softmax of ``log p_{t_j}(x) + log w_j``.

    ``times`` ``(M,)``; ``prior`` the quadrature weights ``w_j`` of the training time density (uniform
    if omitted). ``x`` ``(B, D)``.
    """
    w = torch.full_like(times, 1.0 / times.shape[0]) if prior is None else prior / prior.sum()
    logp = torch.stack([mixture.log_prob_t(x, float(tj), process) for tj in times], dim=-1)
    return torch.softmax(logp + torch.log(w.to(x.dtype)), dim=-1)


def noise_unconditional_oracle(
    mixture: GaussianMixture,
    process: LinearGaussianProcess,
    prediction: Prediction = "eps",
    *,
    times: Tensor | None = None,
    prior: Tensor | None = None,
) -> Callable[[Tensor, Tensor], Tensor]:
    """The Bayes-optimal noise-unconditional network ``model(x, t) -> R(x)`` (``t`` is ignored).

    Args:
        mixture: the data law.
        process: the forward process.
        prediction: the regression target's kind (``eps``, ``x0``, ``v``, ``velocity``).
        times: quadrature grid of noise levels ``(M,)``; 256 uniform midpoints of
            ``[process.t_min, process.t_max]`` if omitted (training times ``t ~ U(t_min, t_max)``).
        prior: quadrature weights of the training time density on ``times`` (uniform if omitted).
    """
    if times is None:
        lo, hi, m = process.t_min, process.t_max, 256
        times = lo + (hi - lo) * (torch.arange(m, dtype=torch.float64) + 0.5) / m
    times = torch.as_tensor(times, dtype=torch.float64)

    def model(x: Tensor, t: Tensor) -> Tensor:
        post = noise_level_posterior(mixture, process, x, times.to(x.dtype), prior)
        out = torch.zeros_like(x)
        for j, tj in enumerate(times.tolist()):
            tt = torch.full((x.shape[0],), tj, dtype=x.dtype, device=x.device)
            x0, eps = mixture.x0_eps_t(x, tt, process)
            out = out + post[:, j : j + 1] * from_x0_eps(process, prediction, x0, eps, tt)
        return out

    return model


__all__ = ["NoiseUnconditional", "noise_level_posterior", "noise_unconditional_oracle"]
