r"""A Gaussian mixture with its exact noisy marginals: an exact-score oracle for every sampler.

The data distribution is an isotropic Gaussian mixture in ``D`` dimensions

.. math:: p_0(x_0) = \sum_k w_k\, \mathcal N(x_0;\ \mu_k,\ \sigma_k^2 I).

Under any :class:`~difflab.core.processes.base.LinearGaussianProcess`,
``x_t = a(t) x_0 + b(t) y + s(t) eps``, the marginal of ``x_t`` (given the condition ``y`` for
conditional processes) is again a mixture with the same weights:

.. math:: p_t(x_t \mid y) = \sum_k w_k\, \mathcal N(x_t;\ m_k,\ v_k I),
          \qquad m_k = a\mu_k + b y, \qquad v_k = a^2\sigma_k^2 + s^2 .

With the responsibilities :math:`r_k(x_t) \propto w_k \mathcal N(x_t; m_k, v_k I)` everything a
denoising network could learn is available in closed form:

* score: :math:`\nabla \log p_t = \sum_k r_k\,(m_k - x_t)/v_k`;
* Tweedie posterior mean: :math:`E[x_0 \mid x_t] = \sum_k r_k\,(\mu_k + a\sigma_k^2 (x_t - m_k)/v_k)`;
* noise: :math:`E[\varepsilon \mid x_t] = -s\,\nabla\log p_t` (finite also at ``s = 0``).

:meth:`GaussianMixture.exact_model` wraps these as a network callable ``model(x, t)`` returning any
parameterisation (``eps``, ``x0``, ``v``, ``score``, ``velocity``), so the Bayes-optimal denoiser
can be plugged into a :class:`~difflab.core.samplers.base.Denoiser`. Any remaining difference
between a sampler's output and the mixture is then the sampler's own discretisation error.

Shapes: samples are ``(*lead, D)``; ``t`` is a scalar, ``(B,)`` or any shape broadcasting against
``lead`` (per-element time, e.g. ``(B, L)`` for ``x`` of shape ``(B, L, D)``).

The evaluation helpers (nearest-mode assignment, mode weights, per-mode moments, distance to the
nearest mode in units of the component std) score sampler output against the known mixture.
This module is pure math (torch only).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from difflab.core.broadcast import expand_like
from difflab.core.parameterization import PREDICTIONS, Prediction, from_x0_eps
from difflab.core.processes.base import LinearGaussianProcess


class GaussianMixture:
    """Isotropic Gaussian mixture ``sum_k w_k N(mu_k, std_k^2 I)``.

    Args:
        means: component means, shape ``(K, D)``.
        stds: component standard deviations, shape ``(K,)`` or a scalar shared by all components.
        weights: mixture weights, shape ``(K,)``; normalised to sum to 1. Uniform if omitted.
    """

    def __init__(self, means: Tensor, stds: Tensor | float, weights: Tensor | None = None) -> None:
        means = torch.as_tensor(means)
        if means.ndim != 2:
            raise ValueError(f"means must have shape (K, D), got {tuple(means.shape)}")
        if not means.is_floating_point():
            means = means.to(torch.get_default_dtype())
        k = means.shape[0]
        stds = torch.as_tensor(stds, dtype=means.dtype, device=means.device)
        if stds.ndim == 0:
            stds = stds.expand(k).clone()
        if stds.shape != (k,):
            raise ValueError(f"stds must be a scalar or have shape ({k},), got {tuple(stds.shape)}")
        if (stds < 0).any():
            raise ValueError(f"stds must be non-negative, got {stds.tolist()}")
        if weights is None:
            weights = torch.full((k,), 1.0 / k, dtype=means.dtype, device=means.device)
        weights = torch.as_tensor(weights, dtype=means.dtype, device=means.device)
        if weights.shape != (k,) or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(f"weights must be ({k},) non-negative with a positive sum, got {weights.tolist()}")
        self.means = means
        self.stds = stds
        self.weights = weights / weights.sum()

    # ------------------------------------------------------------------ basics
    @property
    def num_components(self) -> int:
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @classmethod
    def three_modes_2d(cls, dtype: torch.dtype = torch.float64) -> GaussianMixture:
        """The samplers' standard 2-D test mixture: means (1.5, 0), (-1.5, 0), (0, 1.5), stds 0.25 /
        0.2 / 0.15, weights 0.5 / 0.3 / 0.2."""
        means = torch.tensor([[1.5, 0.0], [-1.5, 0.0], [0.0, 1.5]], dtype=dtype)
        return cls(means, torch.tensor([0.25, 0.2, 0.15], dtype=dtype), torch.tensor([0.5, 0.3, 0.2], dtype=dtype))

    def to(self, dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> GaussianMixture:
        """A copy in another dtype / on another device."""
        return GaussianMixture(
            self.means.to(dtype=dtype, device=device),
            self.stds.to(dtype=dtype, device=device),
            self.weights.to(dtype=dtype, device=device),
        )

    def mean(self) -> Tensor:
        """Mean of the mixture, ``(D,)``."""
        return self.weights @ self.means

    def covariance(self) -> Tensor:
        r"""Covariance of the mixture, ``(D, D)``: :math:`\sum_k w_k(\sigma_k^2 I + \mu_k\mu_k^T) - \mu\mu^T`."""
        mu = self.mean()
        eye = torch.eye(self.dim, dtype=self.means.dtype, device=self.means.device)
        second = torch.einsum("k,ki,kj->ij", self.weights, self.means, self.means)
        return (self.weights * self.stds**2).sum() * eye + second - torch.outer(mu, mu)

    def sample(self, n: int, generator: torch.Generator | None = None, *, return_labels: bool = False):
        """Draw ``n`` samples, ``(n, D)`` (and their component labels ``(n,)`` if ``return_labels``)."""
        labels = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn((n, self.dim), generator=generator, dtype=self.means.dtype, device=self.means.device)
        x = self.means[labels] + self.stds[labels, None] * z
        return (x, labels) if return_labels else x

    def marginal_mixture(self, t: float, process: LinearGaussianProcess, y: Tensor | None = None) -> GaussianMixture:
        """The marginal at a single time ``t`` as a mixture: means ``a mu_k + b y``, stds ``sqrt(a^2 std_k^2 + s^2)``.

        ``y`` is one condition vector ``(D,)`` shared by all samples (conditional processes only).
        """
        tt = torch.tensor(float(t), dtype=self.means.dtype, device=self.means.device)
        a, b, s = (float(c) for c in process.coefficients(tt))
        means = a * self.means
        if process.conditional:
            if y is None:
                raise ValueError(f"{type(process).__name__} is conditional: pass the condition y")
            means = means + b * y.reshape(1, -1).to(means)
        return GaussianMixture(means, (a**2 * self.stds**2 + s**2).sqrt(), self.weights)

    # ------------------------------------------------------------------ marginal at time t
    def _marginal_parts(
        self, x: Tensor, t: Tensor | float, process: LinearGaussianProcess, y: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Return ``(diff, v, a, s)``: ``diff = x - m_k`` of shape ``(*lead, K, D)``, ``v`` ``(*lead, K, 1)``."""
        if x.shape[-1] != self.dim:
            raise ValueError(f"x has last dimension {x.shape[-1]}, the mixture has D = {self.dim}")
        if x.ndim < 2:
            raise ValueError(f"x must have shape (*lead, D) with at least one leading dim, got {tuple(x.shape)}")
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        if t.ndim == 0:
            t = t.expand(x.shape[:1])
        if t.ndim >= x.ndim:
            raise ValueError(
                f"time of shape {tuple(t.shape)} must broadcast against the leading dims of x {tuple(x.shape)}"
            )
        a, b, s = (expand_like(c.to(x.dtype), x).unsqueeze(-2) for c in process.coefficients(t))
        mu = self.means.to(x.dtype)
        m = a * mu  # (*lead, K, D) or (K, D)
        if process.conditional:
            if y is None:
                raise ValueError(f"{type(process).__name__} is conditional: pass the condition y")
            m = m + b * y.unsqueeze(-2)
        diff = x.unsqueeze(-2) - m
        v = a**2 * (self.stds.to(x.dtype) ** 2)[:, None] + s**2
        return diff, v, a, s

    def _log_components(self, diff: Tensor, v: Tensor) -> Tensor:
        d = self.dim
        log_n = -0.5 * (diff**2).sum(-1) / v[..., 0] - 0.5 * d * torch.log(2 * math.pi * v[..., 0])
        return torch.log(self.weights.to(diff.dtype)) + log_n  # (*lead, K)

    def log_prob_t(
        self, x: Tensor, t: Tensor | float, process: LinearGaussianProcess, y: Tensor | None = None
    ) -> Tensor:
        """Exact ``log p_t(x | y)``, shape ``lead``."""
        diff, v, _, _ = self._marginal_parts(x, t, process, y)
        return torch.logsumexp(self._log_components(diff, v), dim=-1)

    def log_prob(self, x: Tensor) -> Tensor:
        """Data log-density ``log p_0(x)``, shape ``lead``."""
        diff = x.unsqueeze(-2) - self.means.to(x.dtype)
        v = (self.stds.to(x.dtype) ** 2)[:, None]
        return torch.logsumexp(self._log_components(diff, v), dim=-1)

    def responsibilities_t(
        self, x: Tensor, t: Tensor | float, process: LinearGaussianProcess, y: Tensor | None = None
    ) -> Tensor:
        """Posterior component probabilities ``r_k(x_t)``, shape ``(*lead, K)``."""
        diff, v, _, _ = self._marginal_parts(x, t, process, y)
        return torch.softmax(self._log_components(diff, v), dim=-1)

    def score_t(self, x: Tensor, t: Tensor | float, process: LinearGaussianProcess, y: Tensor | None = None) -> Tensor:
        r"""Exact score :math:`\nabla_x \log p_t(x \mid y) = \sum_k r_k (m_k - x)/v_k`, shape of ``x``."""
        diff, v, _, _ = self._marginal_parts(x, t, process, y)
        r = torch.softmax(self._log_components(diff, v), dim=-1).unsqueeze(-1)
        return -(r * diff / v).sum(-2)

    def x0_t(self, x: Tensor, t: Tensor | float, process: LinearGaussianProcess, y: Tensor | None = None) -> Tensor:
        r"""Posterior mean :math:`E[x_0 \mid x_t] = \sum_k r_k (\mu_k + a\sigma_k^2 (x_t - m_k)/v_k)` (Tweedie)."""
        diff, v, a, _ = self._marginal_parts(x, t, process, y)
        r = torch.softmax(self._log_components(diff, v), dim=-1).unsqueeze(-1)
        gain = a * (self.stds.to(x.dtype) ** 2)[:, None] / v
        return (r * (self.means.to(x.dtype) + gain * diff)).sum(-2)

    def eps_t(self, x: Tensor, t: Tensor | float, process: LinearGaussianProcess, y: Tensor | None = None) -> Tensor:
        r"""Posterior mean of the noise :math:`E[\varepsilon \mid x_t] = -s(t)\,\nabla\log p_t(x_t)`."""
        return self.x0_eps_t(x, t, process, y)[1]

    def x0_eps_t(
        self, x: Tensor, t: Tensor | float, process: LinearGaussianProcess, y: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(E[x0 | x_t], E[eps | x_t])`` from one pass over the components."""
        diff, v, a, s = self._marginal_parts(x, t, process, y)
        r = torch.softmax(self._log_components(diff, v), dim=-1).unsqueeze(-1)
        gain = a * (self.stds.to(x.dtype) ** 2)[:, None] / v
        x0 = (r * (self.means.to(x.dtype) + gain * diff)).sum(-2)
        score = -(r * diff / v).sum(-2)
        return x0, -s.squeeze(-2) * score

    def exact_model(
        self, process: LinearGaussianProcess, prediction: Prediction = "eps", *, y: Tensor | None = None
    ) -> Callable[[Tensor, Tensor], Tensor]:
        """The Bayes-optimal network ``model(x_t, t) -> prediction`` for this mixture under ``process``.

        Args:
            process: the forward process.
            prediction: ``eps``, ``x0``, ``v``, ``score`` or ``velocity`` (see
                :mod:`difflab.core.parameterization`).
            y: the condition of a conditional process, shape of the samples ``(B, ..., D)``. When the
                model is called with a batch that is a whole multiple of ``B`` (batched parallel or
                guided evaluation concatenates copies along the batch), ``y`` is tiled to match.

        The returned callable has the signature every sampler expects; wrap it in a
        :class:`~difflab.core.samplers.base.Denoiser` with the same ``prediction`` (and ``y``).
        """
        if prediction not in PREDICTIONS:
            raise ValueError(f"unknown prediction kind {prediction!r}; expected one of {PREDICTIONS}")
        if process.conditional and y is None:
            raise ValueError(f"{type(process).__name__} is conditional: pass the condition y")

        def model(x: Tensor, t: Tensor) -> Tensor:
            yy = _tile_batch(y, x) if process.conditional else None
            if prediction == "score":
                return self.score_t(x, t, process, yy)
            x0, eps = self.x0_eps_t(x, t, process, yy)
            return from_x0_eps(process, prediction, x0, eps, torch.as_tensor(t, dtype=x.dtype, device=x.device), yy)

        return model

    # ------------------------------------------------------------------ evaluation helpers
    def assign(self, samples: Tensor) -> Tensor:
        """Index of the nearest component mean (Euclidean) for each sample: ``(n, D) -> (n,)``."""
        return torch.cdist(samples, self.means.to(samples.dtype)).argmin(dim=-1)

    def mode_weights(self, samples: Tensor) -> Tensor:
        """Fraction of samples assigned to each component, ``(K,)`` (compare with :attr:`weights`)."""
        counts = torch.bincount(self.assign(samples), minlength=self.num_components)
        return counts.to(samples.dtype) / samples.shape[0]

    def mode_statistics(self, samples: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Per-component sample statistics of the nearest-mode assignment.

        Returns ``(weights (K,), means (K, D), covariances (K, D, D))``; a component with fewer than two
        samples gets NaN moments.
        """
        labels = self.assign(samples)
        k, d = self.num_components, self.dim
        means = torch.full((k, d), float("nan"), dtype=samples.dtype, device=samples.device)
        covs = torch.full((k, d, d), float("nan"), dtype=samples.dtype, device=samples.device)
        for j in range(k):
            xs = samples[labels == j]
            if xs.shape[0] >= 2:
                means[j] = xs.mean(0)
                c = xs - means[j]
                covs[j] = c.T @ c / (xs.shape[0] - 1)
        counts = torch.bincount(labels, minlength=k).to(samples.dtype)
        return counts / samples.shape[0], means, covs

    def distance_to_nearest_mode(self, samples: Tensor, *, relative: bool = True) -> Tensor:
        """Euclidean distance of each sample to its nearest mean, ``(n,)``.

        With ``relative`` (default) the distance is divided by ``std_k sqrt(D)`` of that component:
        for exact samples of well-separated components its mean square is 1, residual noise makes it
        larger, over-contraction smaller.
        """
        dist = torch.cdist(samples, self.means.to(samples.dtype))
        dmin, k = dist.min(dim=-1)
        if not relative:
            return dmin
        return dmin / (self.stds.to(samples.dtype)[k] * math.sqrt(self.dim))

    def spread_error(self, samples: Tensor) -> float:
        """``|sqrt(mean(relative distance^2)) - 1|``: 0 for exact samples of well-separated components."""
        r = self.distance_to_nearest_mode(samples)
        return abs(float((r**2).mean().sqrt()) - 1.0)

    def mode_error(self, samples: Tensor) -> float:
        """``max(|weight error|, |mean error|, |std ratio - 1|)`` over the components, from the
        nearest-mode statistics of ``samples`` (:meth:`mode_statistics`; std: the root mean diagonal
        variance); 0 for exact samples up to sampling noise."""
        w, m, c = self.mode_statistics(samples)
        sd = torch.diagonal(c, dim1=-2, dim2=-1).mean(-1).sqrt()
        return max(
            float((w - self.weights.to(w.dtype)).abs().max()),
            float((m - self.means.to(m.dtype)).norm(dim=-1).max()),
            float((sd / self.stds.to(sd.dtype) - 1).abs().max()),
        )

    def __repr__(self) -> str:
        return f"GaussianMixture(K={self.num_components}, D={self.dim})"


def fit_eps_network(
    net: torch.nn.Module,
    mixture: GaussianMixture,
    process: LinearGaussianProcess,
    *,
    steps: int = 1500,
    batch: int = 256,
    lr: float = 2e-3,
    t_min: float = 1e-3,
    generator: torch.Generator | None = None,
) -> torch.nn.Module:
    """``net(x_t, t)`` regressed onto the mixture's exact noise ``eps_t`` (Adam, ``t ~ U(t_min, 1)``),
    returned in eval mode: a learned model whose errors are its own, next to the exact one."""
    opt = torch.optim.Adam(net.parameters(), lr)
    for _ in range(steps):
        t = t_min + (1 - t_min) * torch.rand(batch, generator=generator)
        xt, _ = process.sample_marginal(mixture.sample(batch, generator), t, generator=generator)
        loss = (net(xt, t) - mixture.eps_t(xt, t, process)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def _tile_batch(y: Tensor | None, x: Tensor) -> Tensor | None:
    """``y`` repeated along the batch dimension to ``x``'s batch when that is a whole multiple of it."""
    if y is None or y.shape[0] == x.shape[0]:
        return y
    if x.shape[0] % y.shape[0]:
        raise ValueError(f"batch of x ({x.shape[0]}) is not a multiple of the batch of y ({y.shape[0]})")
    return y.repeat((x.shape[0] // y.shape[0],) + (1,) * (y.ndim - 1))


__all__ = ["GaussianMixture", "fit_eps_network"]
