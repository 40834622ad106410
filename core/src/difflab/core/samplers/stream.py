r"""Streaming (rolling / diagonal) denoising: a buffer of tokens at increasing noise levels.

Diffusion Forcing (Chen et al. 2024) trains a denoiser with an independent noise level per token;
TEDi (Zhang et al. 2023, motion) and TEDi Policy (Høeg & Tingelstad 2024, robot actions) and
FIFO-Diffusion sample with a *buffer* whose tokens sit on a ladder of noise levels. Each call
denoises every token by one step of its own chain, the head token reaches the data and is emitted,
and a fresh pure-noise token enters at the tail, so one network evaluation yields one clean token
(or one chunk of ``chunk`` tokens).

Ladder. A descending grid ``g_0 = t_start > g_1 > ... > g_n = t_end`` (usually ``t_max`` and 0) of
``n`` steps and a chunk size ``m`` give a buffer of ``L = n m`` tokens ``x^{(0)}, ..., x^{(L-1)}``
(token 0 is the head). Before a call, token ``i`` sits on rung ``r_i = n - 1 - \lfloor i / m \rfloor``,
i.e. at time ``tau_i = g_{r_i}``: the head chunk one step from the end, the tail chunk at ``g_0``.

Step (:func:`stream_step`, one NFE). With ``(\hat x_0, \hat\varepsilon) = D_\theta(x, \tau)`` for
the whole buffer (``tau`` of shape ``(B, L)``), every token moves from ``t = g_{r_i}`` to
``s = g_{r_i + 1}`` by the DDIM-family posterior of its own times (``eta = 0``: DDIM, ``eta = 1``:
ancestral DDPM with ``fixed_small`` variance):

.. math::

    x_s = a_s \hat x_0 + \sqrt{s_s^2 - \eta^2\tilde\sigma^2}\,\hat\varepsilon + \eta\tilde\sigma z,
    \qquad \tilde\sigma^2 = s_s^2 \, \frac{s_t^2 - r^2 s_s^2}{s_t^2}, \quad r = a_t / a_s ,

evaluated element-wise in ``(s_i, t_i)``; the head chunk's step lands on ``g_n`` and adds no
noise (as :func:`~difflab.core.samplers.ddpm.sample_ddpm`'s last step). The head chunk
``x^{(0..m-1)}`` is then clean and returned; the other tokens shift ``m`` places towards the
head (each is now on the next rung, exactly where the shifted slot expects it), and ``m`` prior
draws ``s(t_max) z`` enter at the tail at ``g_0``. Every emitted token has therefore gone through
the same chain ``g_0 -> g_1 -> ... -> g_n`` of the ordinary sampler, one step per call; only the
network sees the whole buffer (so a token's denoising is conditioned on the noisier future).

Start (:func:`stream_start`): the buffer is filled from pure noise at ``g_0``.

* ``"ladder"`` (default; the "laddering" of RNR-DP): steps of the same per-element chain where
  token ``i`` stops when it reaches its rung, ``n - 1`` NFE; each token then carries exactly the
  chain state that the streaming steps expect.
* ``"renoise"`` (TEDi Policy's ``denoise`` initialisation): the full shared chain ``g_0 -> g_n``
  (``n`` NFE) gives a clean buffer ``\hat x``, which is noised to the ladder,
  ``x^{(i)} = a(\tau_i)\hat x^{(i)} + s(\tau_i) z``.

Oracles (tests/core/test_stream_sampler.py): for a network that treats tokens independently, the
emitted tokens equal the ordinary :func:`~difflab.core.samplers.ddim.sample_ddim` /
:func:`~difflab.core.samplers.ddpm.sample_ddpm` run on each token alone over the grid (exactly,
with the same noise), and with the exact score of i.i.d. Gaussian-mixture tokens the emitted
stream has the mixture's distribution.

Contract. Unlike the samplers of :data:`~difflab.core.samplers.select.SAMPLER_NAMES` (one call
returns finished samples), a stream is stateful across calls: the buffer lives in a small
immutable :class:`StreamState` that each pure function takes and returns, and the caller (a
controller that changes the network's conditioning between calls, e.g. the current observation)
owns it. It is therefore *not* in the sampler registry; use these functions directly.
Randomness comes only from the ``generator`` passed in (or explicit ``noise`` / ``tail``
tensors). Conditional processes (a condition ``y`` that would have to roll with the buffer) are
not supported.

Shapes: the buffer ``x`` is ``(B, L, *D)``; times handed to the denoiser are ``(B, L)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import torch
from torch import Tensor

from difflab.core.broadcast import expand_like
from difflab.core.samplers.base import Denoiser

StreamInit = Literal["ladder", "renoise"]


@dataclass(frozen=True)
class StreamState:
    """The buffer of a stream between calls.

    Attributes:
        x: the buffer ``(B, L, *D)``; token ``i`` is at time ``times[i]`` (token 0 is the head).
        grid: the descending ladder grid ``(n + 1,)``, float64 (``grid[0]`` the tail's time,
            ``grid[-1]`` the time of the emitted tokens).
        chunk: tokens per rung ``m`` (emitted per call); ``L = n m``.
        steps_taken: streaming steps since the buffer was filled.
    """

    x: Tensor
    grid: Tensor
    chunk: int = 1
    steps_taken: int = 0

    @property
    def levels(self) -> int:
        """Number of rungs ``n`` (the steps each token goes through)."""
        return int(self.grid.shape[0]) - 1

    @property
    def times(self) -> Tensor:
        """Times of the buffer tokens before the next step, ``(L,)`` float64 (see :func:`ladder_times`)."""
        return ladder_times(self.grid, self.chunk)


@dataclass(frozen=True)
class StreamOutput:
    """What :func:`stream_step` returns.

    Attributes:
        emitted: the head chunk, now at ``grid[-1]``, ``(B, chunk, *D)``.
        state: the new state (buffer shifted, fresh noise at the tail).
        x0: the denoiser's clean estimate of the whole buffer before the shift, ``(B, L, *D)``.
        nfe: network evaluations of this call (1 for a plain network).
    """

    emitted: Tensor
    state: StreamState
    x0: Tensor
    nfe: int


def check_grid(grid: Tensor) -> Tensor:
    """The grid as float64 ``(n + 1,)``; a ``ValueError`` naming it unless 1-D, ``n >= 1`` and strictly descending."""
    g = torch.as_tensor(grid).to(torch.float64)
    if g.ndim != 1 or g.shape[0] < 2:
        raise ValueError(f"stream grid must be 1-D with at least 2 times, got shape {tuple(g.shape)}")
    if not bool((g[1:] < g[:-1]).all()):
        raise ValueError(f"stream grid must be strictly descending, got {g.tolist()}")
    return g


def ladder_times(grid: Tensor, chunk: int = 1) -> Tensor:
    """Times ``tau_i = grid[n - 1 - i // chunk]`` of the ``L = n * chunk`` buffer tokens, ``(L,)`` float64."""
    g = check_grid(grid)
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    n = g.shape[0] - 1
    rung = n - 1 - torch.arange(n * chunk) // chunk
    return g[rung]


def chain_ladder_grid(num_steps: int, levels: int) -> Tensor:
    """TEDi's ladder on a ``num_steps``-step chain: rung ``c`` (0 = head) at whole step
    ``k_c = floor(T (c + 1) / n)``, as the descending grid ``[k_{n-1}, ..., k_0, 0] / T`` ``(n + 1,)``.

    (TEDi Policy puts chunk ``c`` at level ``floor(N (c + 1) / n) - 1`` in diffusers' numbering, whose
    step ``j`` is our ``k = j + 1``.) ``levels`` must lie in ``[1, num_steps]``.
    """
    if not 1 <= levels <= num_steps:
        raise ValueError(f"levels must lie in [1, {num_steps}], got {levels}")
    c = torch.arange(levels - 1, -1, -1, dtype=torch.float64)
    k = torch.floor(num_steps * (c + 1) / levels)
    return torch.cat([k, k.new_zeros(1)]) / num_steps


def _check_buffer(denoiser: Denoiser, x: Tensor, grid: Tensor, chunk: int) -> Tensor:
    g = check_grid(grid)
    if denoiser.process.conditional or denoiser.y is not None:
        raise ValueError(f"stream sampling needs an unconditional process, got {type(denoiser.process).__name__}")
    n = g.shape[0] - 1
    if x.ndim < 2 or x.shape[1] != n * chunk:
        raise ValueError(
            f"stream buffer must have shape (B, L = {n} levels x {chunk} tokens = {n * chunk}, ...), "
            f"got {tuple(x.shape)}"
        )
    return g


def _posterior_step(
    denoiser: Denoiser,
    x: Tensor,
    t: Tensor,
    s: Tensor,
    *,
    eta: float,
    generator: torch.Generator | None,
    noise: Tensor | None = None,
    quiet: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """One per-element step of every token from ``t`` to ``s`` (float64 ``(L,)``), ``(x_s, x0_hat)``.

    Tokens with ``s == t`` keep their state; ``quiet`` (bool ``(L,)``) marks tokens whose step adds no noise.
    """
    process = denoiser.process
    B = x.shape[0]
    parts = [c.to(device=x.device, dtype=x.dtype) for c in process.posterior_parts(s, t)]
    parts = tuple(c.expand(B, -1) for c in parts)
    x0, eps = denoiser(x, t.to(device=x.device, dtype=x.dtype).expand(B, -1), coefficients=parts[3:6])
    mean, std = process.posterior_from_parts(parts, x, x0, None, eps=eps, eta=eta)
    if eta > 0:
        if quiet is not None:
            std = std * expand_like((~quiet).to(x.dtype).to(x.device), x[0])
        z = process.noise_like(x, generator) if noise is None else noise
        mean = mean + std * z
    still = (s == t).to(x.device)
    if bool(still.any()):
        mean = torch.where(expand_like(still, x[0]), x, mean)
    return mean, x0


def stream_start(
    denoiser: Denoiser,
    x: Tensor,
    grid: Tensor,
    *,
    chunk: int = 1,
    eta: float = 0.0,
    init: StreamInit = "ladder",
    generator: torch.Generator | None = None,
) -> tuple[StreamState, int]:
    """Fill a buffer from pure noise ``x`` ``(B, L, *D)`` at ``grid[0]`` (see the module docstring).

    Returns ``(state, nfe)``: ``n - 1`` NFE for ``"ladder"``, ``n`` for ``"renoise"``.
    """
    if not eta >= 0:
        raise ValueError(f"eta must be >= 0, got {eta!r}")
    g = _check_buffer(denoiser, x, grid, chunk)
    n = g.shape[0] - 1
    rung = n - 1 - torch.arange(n * chunk) // chunk
    nfe0 = denoiser.nfe
    if init == "ladder":
        for k in range(n - 1):
            t, s = g[torch.clamp(rung, max=k)], g[torch.clamp(rung, max=k + 1)]
            x, _ = _posterior_step(denoiser, x, t, s, eta=eta, generator=generator)
    elif init == "renoise":
        for k in range(n):
            t, s = g[k].expand(n * chunk), g[k + 1].expand(n * chunk)
            quiet = torch.full((n * chunk,), k == n - 1)
            x, _ = _posterior_step(denoiser, x, t, s, eta=eta, generator=generator, quiet=quiet)
        tau = g[rung]
        a, _, sd = (c.to(device=x.device, dtype=x.dtype) for c in denoiser.process.coefficients(tau))
        z = denoiser.process.noise_like(x, generator)
        x = expand_like(a, x[0]) * x + expand_like(sd, x[0]) * z
    else:
        raise ValueError(f"init must be 'ladder' or 'renoise', got {init!r}")
    return StreamState(x, g, chunk), denoiser.nfe - nfe0


def stream_step(
    denoiser: Denoiser,
    state: StreamState,
    *,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    noise: Tensor | None = None,
    tail: Tensor | None = None,
) -> StreamOutput:
    """One denoising step of the whole buffer, emit the head chunk, append fresh noise at the tail.

    Args:
        denoiser: the network as a :class:`Denoiser`, called once with ``t`` of shape ``(B, L)``.
        state: the buffer (from :func:`stream_start` or the previous call).
        eta: 0 for DDIM steps, 1 for ancestral DDPM steps (``fixed_small``).
        generator: randomness of the step noise (``eta > 0``) and of the new tail tokens.
        noise: the step's standard noise ``(B, L, *D)`` instead of a draw (``eta > 0`` only).
        tail: the new tail tokens ``(B, chunk, *D)`` at ``grid[0]`` instead of a prior draw.
    """
    if not eta >= 0:
        raise ValueError(f"eta must be >= 0, got {eta!r}")
    x, m = state.x, state.chunk
    g = _check_buffer(denoiser, x, state.grid, m)
    n = g.shape[0] - 1
    rung = n - 1 - torch.arange(n * m) // m
    nfe0 = denoiser.nfe
    x_new, x0 = _posterior_step(
        denoiser, x, g[rung], g[rung + 1], eta=eta, generator=generator, noise=noise, quiet=rung == n - 1
    )
    if tail is None:
        shape = (x.shape[0], m, *x.shape[2:])
        tail = denoiser.process.prior_sample(shape, generator=generator, device=x.device, dtype=x.dtype)
    elif tail.shape != (x.shape[0], m, *x.shape[2:]):
        raise ValueError(f"tail must have shape {(x.shape[0], m, *x.shape[2:])}, got {tuple(tail.shape)}")
    buffer = torch.cat([x_new[:, m:], tail.to(x_new)], dim=1)
    new_state = replace(state, x=buffer, steps_taken=state.steps_taken + 1)
    return StreamOutput(x_new[:, :m], new_state, x0, denoiser.nfe - nfe0)


__all__ = [
    "StreamInit",
    "StreamOutput",
    "StreamState",
    "chain_ladder_grid",
    "check_grid",
    "ladder_times",
    "stream_start",
    "stream_step",
]
