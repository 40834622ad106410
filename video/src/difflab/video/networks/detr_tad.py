r"""Temporal encoder + DETR-style decoder with temporal location queries (plain ``nn.Module``s).

Encoder (:class:`TemporalEncoder`), features ``(B, T, C)`` -> memory ``(B, S, D)``:

* ``transformer``: a 1-D conv stem then ``num_layers`` Transformer encoder layers over all steps;
* ``pyramid``: the stem, then ``num_levels`` levels each down-sampled by 2 (strided conv) with a
  Transformer layer; the memory is all levels concatenated (a temporal feature pyramid), with a
  level embedding.

Every memory token carries the sinusoidal embedding of its normalised position ``p in [0, 1]``
(relative to the video's own length), the same embedding the queries use for their proposals.

Decoder (:class:`ProposalDecoder`): ``N`` queries, each tied to a temporal proposal
``(centre, width)`` in ``[0, 1]``. A layer builds the query position from the sinusoidal embedding of
``(centre, width)``, adds the proposal's pooled features (1-D RoI-align: ``roi_points`` linear samples
of the stem features inside the proposal), applies FiLM from the diffusion-time embedding (DiffTAD;
absent for the deterministic baseline), then self-attention among queries, cross-attention to the
memory and an FFN. Each layer predicts class logits and refines the proposal in logit space,
``p' = sigmoid(logit(p) + delta)`` (iterative refinement, deep supervision over layers).

Output dict: ``logits`` (L, B, N, K) and ``segments`` (L, B, N, 2) (centre, width), one per layer.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from difflab.core.nn import SinusoidalTimeEmbedding


def sine_embed(x: Tensor, dim: int, scale: float = 2 * math.pi) -> Tensor:
    """Sinusoidal embedding of values in [0, 1]: ``(...)`` -> ``(..., dim)``."""
    half = dim // 2
    freq = torch.exp(torch.arange(half, device=x.device, dtype=x.dtype) * (-math.log(1000.0) / max(half - 1, 1)))
    arg = x[..., None] * scale * 100.0 * freq / (2 * math.pi)
    return torch.cat([arg.sin(), arg.cos()], dim=-1)


def inverse_sigmoid(x: Tensor, eps: float = 1e-4) -> Tensor:
    x = x.clamp(eps, 1 - eps)
    return torch.log(x / (1 - x))


class MLP(nn.Sequential):
    def __init__(self, d_in: int, d_hidden: int, d_out: int, layers: int = 2) -> None:
        mods: list[nn.Module] = []
        d = d_in
        for _ in range(layers - 1):
            mods += [nn.Linear(d, d_hidden), nn.GELU()]
            d = d_hidden
        mods.append(nn.Linear(d, d_out))
        super().__init__(*mods)


class TemporalEncoder(nn.Module):
    """Features ``(B, T, C)`` + mask ``(B, T)`` -> ``(stem (B, T, D), memory (B, S, D), memory_mask (B, S),
    memory_pos (B, S))`` with normalised positions (see module docstring)."""

    def __init__(
        self,
        input_dim: int,
        d_model: int = 128,
        kind: Literal["transformer", "pyramid"] = "transformer",
        num_layers: int = 2,
        num_levels: int = 3,
        heads: int = 4,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if kind not in ("transformer", "pyramid"):
            raise ValueError(f"TemporalEncoder: kind must be 'transformer' or 'pyramid', got {kind!r}")
        self.kind, self.d_model = kind, d_model
        self.norm_in = nn.LayerNorm(input_dim)
        self.stem = nn.Sequential(
            nn.Conv1d(input_dim, d_model, 3, padding=1), nn.GELU(), nn.Conv1d(d_model, d_model, 3, padding=1), nn.GELU()
        )

        def layer() -> nn.TransformerEncoderLayer:
            return nn.TransformerEncoderLayer(d_model, heads, 2 * d_model, dropout, batch_first=True, norm_first=True)

        if kind == "transformer":
            self.layers = nn.ModuleList([layer() for _ in range(num_layers)])
        else:
            self.layers = nn.ModuleList([layer() for _ in range(num_levels)])
            self.down = nn.ModuleList(
                [nn.Conv1d(d_model, d_model, 3, stride=2, padding=1) for _ in range(num_levels - 1)]
            )
            self.level_embed = nn.Parameter(torch.zeros(num_levels, d_model))
        self.pos_proj = nn.Linear(d_model, d_model)

    def positions(self, mask: Tensor) -> Tensor:
        """Normalised centre positions ``(i + 0.5) / length`` ``(B, T)``."""
        length = mask.sum(1, keepdim=True).clamp_min(1).to(torch.float32)
        idx = torch.arange(mask.shape[1], device=mask.device, dtype=torch.float32)[None]
        return (idx + 0.5) / length

    def forward(self, feats: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        m = mask[:, None, :].to(feats.dtype)
        x = self.norm_in(feats).transpose(1, 2) * m
        x = self.stem[1](self.stem[0](x)) * m  # masked between convolutions: padding never leaks in
        x = (self.stem[3](self.stem[2](x)) * m).transpose(1, 2)
        stem = x
        pos = self.positions(mask)
        if self.kind == "transformer":
            pe = self.pos_proj(sine_embed(pos, self.d_model))
            for lyr in self.layers:
                x = lyr(x + pe, src_key_padding_mask=~mask)
            return stem, x, mask, pe
        mems, masks, pes = [], [], []
        m = mask
        for lvl, lyr in enumerate(self.layers):
            if lvl > 0:
                x = self.down[lvl - 1](x.transpose(1, 2)).transpose(1, 2)
                m = F.max_pool1d(m[:, None].float(), 3, stride=2, padding=1)[:, 0] > 0 if m.shape[1] > 1 else m
                x = x[:, : m.shape[1]] * m[..., None]
            length = mask.sum(1, keepdim=True).clamp_min(1).float()
            idx = torch.arange(m.shape[1], device=m.device, dtype=torch.float32)[None]
            p = ((idx + 0.5) * (2**lvl) / length).clamp(max=1.0)
            pe = self.pos_proj(sine_embed(p, self.d_model)) + self.level_embed[lvl]
            x = lyr(x + pe, src_key_padding_mask=~m)
            mems.append(x)
            masks.append(m)
            pes.append(pe)
        return stem, torch.cat(mems, 1), torch.cat(masks, 1), torch.cat(pes, 1)


def roi_align_1d(stem: Tensor, lengths: Tensor, segments: Tensor, points: int) -> Tensor:
    """Linear samples of ``stem`` (B, T, D) at ``points`` positions inside each (centre, width) proposal
    (B, N, 2), normalised by each video's length -> (B, N, points, D)."""
    b, t, d = stem.shape
    n = segments.shape[1]
    frac = (torch.arange(points, device=stem.device, dtype=stem.dtype) + 0.5) / points - 0.5
    pos = segments[..., :1] + segments[..., 1:] * frac  # (B, N, P) in [0, 1] of the video
    idx = pos * lengths[:, None, None].to(stem.dtype)  # continuous index in [0, length]
    gx = (idx / t) * 2 - 1  # grid_sample x in [-1, 1] over the padded length (align_corners=False)
    grid = torch.stack([gx, torch.zeros_like(gx)], dim=-1).reshape(b, n * points, 1, 2)
    out = F.grid_sample(stem.transpose(1, 2)[:, :, None, :], grid.transpose(1, 2), align_corners=False)
    # out: (B, D, 1... ) -> reshape
    return out.reshape(b, d, n, points).permute(0, 2, 3, 1) if out.numel() else out.new_zeros(b, n, points, d)


class DecoderLayer(nn.Module):
    def __init__(self, d_model: int, heads: int, dropout: float, num_classes: int, time_conditioned: bool) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d_model, heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(
            nn.Linear(d_model, 2 * d_model), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * d_model, d_model)
        )
        self.n1, self.n2, self.n3 = nn.LayerNorm(d_model), nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.film = nn.Linear(d_model, 2 * d_model) if time_conditioned else None
        self.cls = nn.Linear(d_model, num_classes)
        self.reg = MLP(d_model, d_model, 2, 3)
        nn.init.zeros_(self.reg[-1].weight)
        nn.init.zeros_(self.reg[-1].bias)
        nn.init.constant_(self.cls.bias, -math.log((1 - 0.01) / 0.01))

    def forward(
        self,
        q: Tensor,
        q_pos: Tensor,
        roi: Tensor,
        memory: Tensor,
        mem_pos: Tensor,
        mem_mask: Tensor,
        temb: Tensor | None,
    ) -> Tensor:
        q = q + roi
        if self.film is not None and temb is not None:
            scale, shift = self.film(temb)[:, None].chunk(2, dim=-1)
            q = q * (1 + scale) + shift
        h = self.n1(q)
        q = q + self.self_attn(h + q_pos, h + q_pos, h, need_weights=False)[0]
        h = self.n2(q)
        q = q + self.cross_attn(h + q_pos, memory + mem_pos, memory, key_padding_mask=~mem_mask, need_weights=False)[0]
        return q + self.ffn(self.n3(q))


class ProposalDecoder(nn.Module):
    """DETR-style decoder over temporal proposals (see module docstring)."""

    def __init__(
        self,
        d_model: int,
        num_classes: int,
        num_layers: int = 3,
        heads: int = 4,
        dropout: float = 0.1,
        roi_points: int = 8,
        time_conditioned: bool = True,
    ) -> None:
        super().__init__()
        self.d_model, self.roi_points = d_model, roi_points
        self.layers = nn.ModuleList(
            [DecoderLayer(d_model, heads, dropout, num_classes, time_conditioned) for _ in range(num_layers)]
        )
        self.pos_mlp = MLP(2 * d_model, d_model, d_model)
        self.roi_proj = nn.Sequential(nn.Linear(roi_points * d_model, d_model), nn.LayerNorm(d_model))
        self.time_embed = (
            nn.Sequential(
                SinusoidalTimeEmbedding(d_model), nn.Linear(d_model, d_model), nn.GELU(), nn.Linear(d_model, d_model)
            )
            if time_conditioned
            else None
        )

    def forward(
        self,
        stem: Tensor,
        lengths: Tensor,
        memory: Tensor,
        mem_pos: Tensor,
        mem_mask: Tensor,
        proposals: Tensor,
        content: Tensor | None = None,
        t: Tensor | None = None,
    ) -> dict[str, Tensor]:
        b, n, _ = proposals.shape
        q = content if content is not None else proposals.new_zeros(b, n, self.d_model)
        temb = self.time_embed(t) if (self.time_embed is not None and t is not None) else None
        logits, segs = [], []
        p = proposals.clamp(1e-4, 1 - 1e-4)
        for lyr in self.layers:
            p = p.detach()
            q_pos = self.pos_mlp(
                torch.cat([sine_embed(p[..., 0], self.d_model), sine_embed(p[..., 1], self.d_model)], -1)
            )
            roi = self.roi_proj(roi_align_1d(stem, lengths, p, self.roi_points).flatten(2))
            q = lyr(q, q_pos, roi, memory, mem_pos, mem_mask, temb)
            p = torch.sigmoid(inverse_sigmoid(p) + lyr.reg(q))
            logits.append(lyr.cls(q))
            segs.append(p)
        return {"logits": torch.stack(logits), "segments": torch.stack(segs)}


class DetrTADNet(nn.Module):
    """Encoder + proposal decoder. ``encode`` once per video, ``decode`` once per denoising step.

    Args:
        input_dim: feature channels C.
        num_classes: K.
        d_model, heads, dropout: Transformer sizes.
        encoder: ``transformer`` or ``pyramid``.
        enc_layers, num_levels: encoder depth / pyramid levels.
        dec_layers: decoder layers (refinement stages).
        roi_points: samples per proposal in the 1-D RoI-align.
        time_conditioned: FiLM from the diffusion time (DiffTAD) or not (deterministic baseline).
        num_queries: learned queries of the deterministic baseline (0: none; proposals come from outside).
    """

    def __init__(
        self,
        input_dim: int,
        num_classes: int,
        d_model: int = 128,
        heads: int = 4,
        dropout: float = 0.1,
        encoder: Literal["transformer", "pyramid"] = "transformer",
        enc_layers: int = 2,
        num_levels: int = 3,
        dec_layers: int = 3,
        roi_points: int = 8,
        time_conditioned: bool = True,
        num_queries: int = 0,
    ) -> None:
        super().__init__()
        self.input_dim, self.num_classes = input_dim, num_classes
        self.encoder = TemporalEncoder(input_dim, d_model, encoder, enc_layers, num_levels, heads, dropout)
        self.decoder = ProposalDecoder(d_model, num_classes, dec_layers, heads, dropout, roi_points, time_conditioned)
        self.num_queries = num_queries
        if num_queries > 0:
            self.query_content = nn.Parameter(torch.randn(num_queries, d_model) * 0.02)
            centres = (torch.arange(num_queries) + 0.5) / num_queries
            widths = torch.full((num_queries,), 0.15)
            self.query_ref = nn.Parameter(inverse_sigmoid(torch.stack([centres, widths], -1)))

    def encode(self, feats: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """``(stem, lengths, memory, memory_pos, memory_mask)``."""
        if feats.shape[-1] != self.input_dim:
            raise ValueError(f"features have {feats.shape[-1]} channels, the network expects {self.input_dim}")
        stem, mem, mmask, mpos = self.encoder(feats, mask)
        return stem, mask.sum(1), mem, mpos, mmask

    def decode(
        self, enc: tuple[Tensor, ...], proposals: Tensor | None = None, t: Tensor | None = None
    ) -> dict[str, Tensor]:
        stem, lengths, mem, mpos, mmask = enc
        content = None
        if proposals is None:
            if self.num_queries == 0:
                raise ValueError("DetrTADNet: give proposals, or build the network with num_queries > 0")
            b = stem.shape[0]
            proposals = torch.sigmoid(self.query_ref)[None].expand(b, -1, -1)
            content = self.query_content[None].expand(b, -1, -1)
        return self.decoder(stem, lengths, mem, mpos, mmask, proposals, content, t)

    def forward(
        self, feats: Tensor, mask: Tensor, proposals: Tensor | None = None, t: Tensor | None = None
    ) -> dict[str, Tensor]:
        return self.decode(self.encode(feats, mask), proposals, t)


__all__ = ["DetrTADNet", "ProposalDecoder", "TemporalEncoder", "inverse_sigmoid", "roi_align_1d", "sine_embed"]
