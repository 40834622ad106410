r"""Noise sources of the stochastic samplers: fresh white noise per step, or increments of one
Brownian path so that a sample does not depend on how finely the path is stepped.

A stochastic sampler asks for standard normal noise for the move from time ``t`` to ``t_next``.
``"white"`` draws it fresh from the generator (the process's own noise, correlated where the
process's is). ``"brownian"`` returns the normalised increment ``(W(sigma_next) - W(sigma)) /
sqrt(|sigma_next - sigma|)`` of one Brownian path ``W`` indexed by the noise level ``sigma(t)``
(k-diffusion's ``BrownianTreeNoiseSampler`` convention): steps of a 10-step and a 100-step run see
the same path, so the SDE solution they approximate is the same one.

:class:`BrownianTree` builds ``W`` on ``[lo, hi]`` by Brownian-bridge bisection (Levy's
construction): ``W(lo) = 0``, ``W(hi) = sqrt(hi - lo) z_1``, and the midpoint ``m`` of a node
``[a, b]`` is ``W(m) = (W(a) + W(b)) / 2 + sqrt(b - a) / 2 z_node``, where ``z_node`` is drawn from a
generator seeded by ``(seed, node)`` alone. ``W(t)`` is the bisection down to a leaf of width
``tol (hi - lo)`` and linear interpolation inside it, so it depends on ``(seed, t)`` only, never on
which or how many other points were asked for.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from difflab.core.processes.base import LinearGaussianProcess
from difflab.core.samplers.base import noise_like

NoiseSampler = Callable[[Tensor, Tensor], Tensor]
"""``(t, t_next) -> z``: standard normal noise of the sample's shape for a move from ``t`` to ``t_next``."""

_MASK = (1 << 63) - 1


def _mix(seed: int, node: int) -> int:
    """A 63-bit seed for tree node ``node`` (splitmix64 of the pair), so nearby seeds and nodes decorrelate."""
    z = (seed * 0x9E3779B97F4A7C15 + node * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & ((1 << 64) - 1)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & ((1 << 64) - 1)
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & ((1 << 64) - 1)
    return (z ^ (z >> 31)) & _MASK


class BrownianTree:
    """One Brownian path ``W`` on ``[lo, hi]`` of ``like``'s shape, ``W(lo) = 0`` (module docstring).

    Args:
        like: tensor whose shape, dtype and device the path takes.
        lo, hi: the interval, ``lo < hi``.
        seed: the path's seed.
        tol: leaf width relative to ``hi - lo`` (the bisection depth is ``ceil(log2(1 / tol))``).
    """

    def __init__(self, like: Tensor, lo: float, hi: float, seed: int, tol: float = 1e-6) -> None:
        if not lo < hi:
            raise ValueError(f"a Brownian tree needs lo < hi, got [{lo}, {hi}]")
        self.shape, self.dtype, self.device = like.shape, like.dtype, like.device
        self.lo, self.hi, self.seed = float(lo), float(hi), int(seed) & _MASK
        self.depth = max(1, math.ceil(math.log2(1 / tol)))
        self._top = math.sqrt(self.hi - self.lo) * self._normal(1)
        self._last: tuple[float, Tensor] | None = None

    def _normal(self, node: int) -> Tensor:
        g = torch.Generator(device=self.device).manual_seed(_mix(self.seed, node))
        return torch.randn(self.shape, generator=g, device=self.device, dtype=self.dtype)

    def __call__(self, t: float) -> Tensor:
        """``W(t)`` for ``t`` in ``[lo, hi]``."""
        t = min(max(float(t), self.lo), self.hi)
        if self._last is not None and self._last[0] == t:
            return self._last[1]
        a, b, wa, wb, node = self.lo, self.hi, torch.zeros_like(self._top), self._top, 1
        for _ in range(self.depth):
            if t in (a, b):
                break
            m = 0.5 * (a + b)
            wm = 0.5 * (wa + wb) + 0.5 * math.sqrt(b - a) * self._normal(2 * node)
            node = 2 * node + (t > m)
            a, b, wa, wb = (a, m, wa, wm) if t <= m else (m, b, wm, wb)
        w = wa if t == a else wb if t == b else wa + (t - a) / (b - a) * (wb - wa)
        self._last = (t, w)
        return w

    def normalised_increment(self, t0: float, t1: float) -> Tensor:
        """``(W(t1) - W(t0)) / sqrt(|t1 - t0|)``: standard normal for any ``t0 != t1``."""
        return (self(t1) - self(t0)) / math.sqrt(abs(t1 - t0))


def noise_source(
    noise: str | NoiseSampler,
    process: LinearGaussianProcess,
    x: Tensor,
    grid: Tensor,
    generator: torch.Generator | None,
) -> NoiseSampler:
    """The sampler's noise: ``"white"`` (fresh from ``generator``), ``"brownian"`` (one path over the
    grid's noise levels, seeded from ``generator``; a grid of one time per step, a process with white
    noise) or a given ``(t, t_next) -> z`` callable."""
    if callable(noise):
        return noise
    if noise == "white":
        return lambda t, t_next: noise_like(process, x, generator)
    if noise != "brownian":
        raise ValueError(f"noise must be 'white', 'brownian' or a callable, got {noise!r}")
    if type(process).noise_like is not LinearGaussianProcess.noise_like:
        raise ValueError(f"brownian noise needs a process with white noise; {type(process).__name__} has its own")
    if grid.ndim != 1:
        raise ValueError(f"brownian noise takes one time per step, a grid of shape (N + 1,); got {tuple(grid.shape)}")
    sig = process.sigma(grid.to(torch.float64))
    sig = sig[torch.isfinite(sig) & (sig > 0)]
    seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
    tree = BrownianTree(x, float(sig.min()) if len(sig) else 0.0, float(sig.max()) if len(sig) else 1.0, seed)

    def draw(t: Tensor, t_next: Tensor) -> Tensor:
        s0, s1 = process.sigma(t.reshape(-1)[:1].double()).item(), process.sigma(t_next.reshape(-1)[:1].double()).item()
        return tree.normalised_increment(s0, s1)

    return draw


__all__ = ["BrownianTree", "NoiseSampler", "noise_source"]
