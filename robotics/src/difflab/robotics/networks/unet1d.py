r"""Conditional 1-D temporal U-Net over action chunks (Chi et al. 2023, Diffusion Policy, CNN variant).

The network denoises an action chunk ``x`` of shape ``(B, Tp, Da)`` (convolutions run over the
``Tp`` time axis, the ``Da`` action dimensions are channels). A global condition vector

.. math:: c = [\,\mathrm{MLP}(\mathrm{emb}(t)) \;\|\; o_{t-T_o+1:t}\,] \in \mathbb R^{d_t + T_o D_o}

(a sinusoidal embedding of the diffusion time followed by a two-layer Mish MLP, concatenated with the
flattened last ``To`` observations) modulates every residual block by FiLM,
``h \mapsto h (1 + \gamma(c)) + \beta(c)`` (core's :class:`~difflab.core.nn.FiLM`, zero-initialised).

Residual block: ``Conv1d -> GroupNorm(8) -> Mish``, FiLM, ``Conv1d -> GroupNorm(8) -> Mish``, plus a
1x1 convolution of the input when the width changes. Each level of ``down_dims`` has two blocks and
a stride-2 downsampling (not at the last level); two blocks in the middle; the up path mirrors the
down path with skip connections and transposed-convolution upsampling (one per downsampling); a final conv block and a
1x1 convolution map back to ``Da`` channels. ``Tp`` must be divisible by ``2^(len(down_dims) - 1)``.

Per-token time (``per_token_time=True``; Diffusion Forcing / TEDi). ``t`` may then be ``(B, Tp)``, one
noise level per action step. With ``e_l = MLP(emb(t_l))`` the global condition uses the mean
``\bar e = \frac{1}{T_p}\sum_l e_l`` in place of ``MLP(emb(t))``, and every residual block adds a
per-position term to its features after FiLM,

.. math:: h_{:, l} \mapsto h_{:, l} + W\,\mathrm{pool}(e - \bar e)_{:, l}

(``W`` a zero-initialised 1x1 convolution without bias per block; ``pool`` averages over the ``2^i`` positions a
position of level ``i`` covers). A row of equal times gives ``e - \bar e = 0`` and ``\bar e = MLP(emb(t))``,
so it computes exactly what the shared-time path computes for ``t`` of shape ``(B,)``; without the
flag the network has no extra parameters and old checkpoints load unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from difflab.core.nn import FiLM, SinusoidalTimeEmbedding


class ConvBlock1d(nn.Module):
    """``Conv1d -> GroupNorm(groups) -> Mish`` with 'same' padding."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, groups: int = 8) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2), nn.GroupNorm(groups, c_out), nn.Mish()
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x)


class ConditionalResBlock1d(nn.Module):
    """Two conv blocks with FiLM conditioning between them, and a residual connection.

    ``pos_dim > 0`` adds a zero-initialised 1x1 convolution of per-position features ``(B, pos_dim, L)``
    to the FiLM output (the per-token time of :class:`ConditionalUnet1D`).
    """

    def __init__(
        self, c_in: int, c_out: int, cond_dim: int, kernel_size: int, groups: int = 8, pos_dim: int = 0
    ) -> None:
        super().__init__()
        self.conv1 = ConvBlock1d(c_in, c_out, kernel_size, groups)
        self.conv2 = ConvBlock1d(c_out, c_out, kernel_size, groups)
        self.film = FiLM(cond_dim, c_out, channel_axis=1)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.pos = None
        if pos_dim:
            self.pos = nn.Conv1d(pos_dim, c_out, 1, bias=False)  # no bias: equal times add exactly 0
            nn.init.zeros_(self.pos.weight)

    def forward(self, x: Tensor, cond: Tensor, pos: Tensor | None = None) -> Tensor:
        h = self.film(self.conv1(x), cond)
        if pos is not None and self.pos is not None:
            h = h + self.pos(pos)
        return self.conv2(h) + self.skip(x)


class ConditionalUnet1D(nn.Module):
    """Args:
    action_dim: ``Da``.
    global_cond_dim: size of the flattened observation condition ``To * Do`` (0: unconditional).
    down_dims: channel widths per level (the reference uses 256, 512, 1024).
    kernel_size: convolution kernel size (5).
    step_embed_dim: size of the diffusion-time embedding (256 in the reference).
    time_scale: the time ``t`` in [0, 1] is multiplied by this before the sinusoidal embedding (the
        number of training steps, so the embedding sees the step index as in DDPM).
    groups: GroupNorm groups.
    per_token_time: accept ``t`` of shape ``(B, Tp)`` (one noise level per action step; see the
        module docstring). Off by default, and then the network is exactly the reference one.

    Shapes: ``forward(x (B, Tp, Da), t (B,) or (B, Tp), cond (B, global_cond_dim)) -> (B, Tp, Da)``.
    """

    def __init__(
        self,
        action_dim: int,
        global_cond_dim: int,
        down_dims: tuple[int, ...] | list[int] = (64, 128, 256),
        kernel_size: int = 5,
        step_embed_dim: int = 64,
        time_scale: float = 100.0,
        groups: int = 8,
        per_token_time: bool = False,
    ) -> None:
        super().__init__()
        down_dims = list(down_dims)
        self.per_token_time = bool(per_token_time)
        pos = step_embed_dim if per_token_time else 0
        if not down_dims or any(d % groups for d in down_dims):
            raise ValueError(f"down_dims must be non-empty multiples of groups={groups}, got {down_dims}")
        self.action_dim, self.global_cond_dim = action_dim, global_cond_dim
        self.levels = len(down_dims)
        self.time_embed = nn.Sequential(
            SinusoidalTimeEmbedding(step_embed_dim, scale=time_scale),
            nn.Linear(step_embed_dim, 4 * step_embed_dim),
            nn.Mish(),
            nn.Linear(4 * step_embed_dim, step_embed_dim),
        )
        cond_dim = step_embed_dim + global_cond_dim
        self.cond_act = nn.Mish()
        dims = [action_dim, *down_dims]
        self.down = nn.ModuleList()
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
            last = i == len(down_dims) - 1
            self.down.append(
                nn.ModuleList(
                    [
                        ConditionalResBlock1d(d_in, d_out, cond_dim, kernel_size, groups, pos),
                        ConditionalResBlock1d(d_out, d_out, cond_dim, kernel_size, groups, pos),
                        nn.Conv1d(d_out, d_out, 3, stride=2, padding=1) if not last else nn.Identity(),
                    ]
                )
            )
        mid = down_dims[-1]
        self.mid = nn.ModuleList(
            [ConditionalResBlock1d(mid, mid, cond_dim, kernel_size, groups, pos) for _ in range(2)]
        )
        self.up = nn.ModuleList()
        rev = list(reversed(down_dims))
        for d_out, d_in in zip(rev[:-1], rev[1:]):
            self.up.append(
                nn.ModuleList(
                    [
                        ConditionalResBlock1d(2 * d_out, d_in, cond_dim, kernel_size, groups, pos),
                        ConditionalResBlock1d(d_in, d_in, cond_dim, kernel_size, groups, pos),
                        nn.ConvTranspose1d(d_in, d_in, 4, stride=2, padding=1),
                    ]
                )
            )
        self.final = nn.Sequential(
            ConvBlock1d(down_dims[0], down_dims[0], kernel_size, groups), nn.Conv1d(down_dims[0], action_dim, 1)
        )

    def _time_condition(self, t: Tensor, x: Tensor):
        """``(global time features (B, d), pos)``: ``pos(length)`` gives the per-position features
        ``(B, d, length)`` (None on the shared-time path)."""
        B, horizon = x.shape[0], x.shape[1]
        if t.ndim == 2 and t.shape[1] == horizon and horizon > 1:
            if not self.per_token_time:
                raise ValueError(
                    f"t of shape {tuple(t.shape)} has one time per action step; build the network with "
                    "per_token_time=True to accept it"
                )
            e = self.time_embed(t.expand(B, horizon).reshape(-1)).reshape(B, horizon, -1)
            mean = e.mean(1)
            dev = (e - mean[:, None]).transpose(1, 2)
            cache: dict[int, Tensor] = {}

            def pos(length: int) -> Tensor:
                if length not in cache:
                    f = horizon // length
                    cache[length] = dev if f == 1 else nn.functional.avg_pool1d(dev, f, f)
                return cache[length]

            return mean, pos
        t = t.reshape(-1).expand(B) if t.numel() in (1, B) else t
        return self.time_embed(t), lambda length: None

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        if x.ndim != 3 or x.shape[-1] != self.action_dim:
            raise ValueError(f"x must have shape (B, Tp, {self.action_dim}), got {tuple(x.shape)}")
        horizon = x.shape[1]
        if horizon % 2 ** (self.levels - 1):
            raise ValueError(f"horizon {horizon} must be divisible by 2^(levels - 1) = {2 ** (self.levels - 1)}")
        c, pos = self._time_condition(t.to(x.dtype), x)
        if self.global_cond_dim:
            if cond is None or cond.shape != (x.shape[0], self.global_cond_dim):
                got = None if cond is None else tuple(cond.shape)
                raise ValueError(f"cond must have shape ({x.shape[0]}, {self.global_cond_dim}), got {got}")
            c = torch.cat([c, cond.to(x.dtype)], dim=-1)
        c = self.cond_act(c)
        h = x.transpose(1, 2)
        skips = []
        for block1, block2, down in self.down:
            p = pos(h.shape[-1])
            h = block2(block1(h, c, p), c, p)
            skips.append(h)
            h = down(h)
        for block in self.mid:
            h = block(h, c, pos(h.shape[-1]))
        for block1, block2, up in self.up:
            h = torch.cat([h, skips.pop()], dim=1)
            p = pos(h.shape[-1])
            h = up(block2(block1(h, c, p), c, p))
        return self.final(h).transpose(1, 2)


__all__ = ["ConditionalUnet1D", "ConditionalResBlock1d", "ConvBlock1d"]
