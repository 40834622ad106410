r"""Encoder-decoder transformer denoiser for continuous-embedding sequence-to-sequence diffusion.

SeqDiffuSeq's layout (Yuan et al. 2022) on a small scale: a bidirectional **encoder** reads the clean
source tokens once; a bidirectional **decoder** reads the noisy target embeddings ``x_t``, the time
``t`` (sinusoidal embedding into DiT's adaptive LayerNorm) and, with self-conditioning (Chen et al.
2022, *Analog Bits*), the previous estimate of ``x_0``, attends to the encoder output by
cross-attention, and predicts ``x_0`` in embedding space.

With ``copy_attention`` the prediction also gets a copy path, a pointer (See et al. 2017, *Get To
The Point*) in embedding space: one attention head from the decoder's last states over the encoder
states whose values are the source tokens' own embeddings, added under a learned gate,
``x0_hat_i = W h_i + sigmoid(g . h_i) sum_j a_ij E(src_j)``. In a task that rewrites its input most
target vectors are source embeddings, and the copy path lets a briefly trained decoder hit them
exactly once it has found the aligned source word.

The token embedding ``E`` (V, ``emb_dim``) is shared by the source, the diffusion space of the
target and the rounding head ``logits = x E^T + b`` (DiffuSeq ties its LM head to the embedding).
It starts at N(0, 1), the scale of the diffusion noise, as in DiffuSeq.

Shapes: ``x_t`` (B, Lt, emb_dim); ``t`` (B,) in [0, 1]; ``src`` (B, Ls) long; ``src_mask`` (B, Ls)
(1 = real token); ``self_cond`` (B, Lt, emb_dim) or None (zeros) -> ``x0_hat`` (B, Lt, emb_dim).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from difflab.core.nn import AdaLayerNorm, SinusoidalTimeEmbedding
from difflab.text.networks.transformer import Block


class CrossAttention(nn.Module):
    """Multi-head attention of ``h`` (B, Lq, D) over ``memory`` (B, Lk, D) with a key mask (B, Lk)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        self.heads = heads
        self.q, self.kv, self.proj = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim), nn.Linear(dim, dim)

    def forward(self, h: Tensor, memory: Tensor, key_mask: Tensor | None) -> Tensor:
        b, n, d = h.shape
        hd = d // self.heads
        q = self.q(h).view(b, n, self.heads, hd).transpose(1, 2)
        k, v = self.kv(memory).view(b, memory.shape[1], 2, self.heads, hd).permute(2, 0, 3, 1, 4)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class DecoderBlock(nn.Module):
    """Time-modulated self-attention, cross-attention to the source, MLP (pre-norm, residual)."""

    def __init__(self, dim: int, heads: int, cond_dim: int, mlp_ratio: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.self_block = Block(dim, heads, mlp_ratio=mlp_ratio, dropout=dropout, cond_dim=cond_dim)
        self.cross_norm = AdaLayerNorm(dim, cond_dim)
        self.cross = CrossAttention(dim, heads)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: Tensor, cond: Tensor, memory: Tensor, memory_mask: Tensor | None) -> Tensor:
        blk = self.self_block
        h = h + blk.dropout(blk.attend(blk.norm1(h, cond), None, False))
        h = h + self.dropout(self.cross(self.cross_norm(h, cond), memory, memory_mask))
        return h + blk.dropout(blk.mlp(blk.norm2(h, cond)))


class EncoderDecoderDenoiser(nn.Module):
    """``(x_t, t, src, src_mask, self_cond) -> x0_hat`` in embedding space, plus the rounding head.

    Args:
        vocab_size: V.
        emb_dim: width of the diffusion space (DiffuSeq: 128; small vocabularies need less).
        dim: transformer width.
        enc_depth, dec_depth: encoder / decoder blocks.
        heads: attention heads.
        max_src_len, max_trg_len: longest source / target (learned positions).
        self_condition: the decoder also reads the previous ``x0`` estimate.
        cond_dim: width of the time embedding.
        dropout: dropout in the blocks.
        copy_attention: add the gated copy path over the source embeddings (module docstring).
    """

    def __init__(
        self,
        vocab_size: int,
        emb_dim: int = 32,
        dim: int = 128,
        enc_depth: int = 2,
        dec_depth: int = 2,
        heads: int = 4,
        max_src_len: int = 64,
        max_trg_len: int = 64,
        self_condition: bool = True,
        cond_dim: int = 128,
        dropout: float = 0.0,
        copy_attention: bool = False,
    ) -> None:
        super().__init__()
        self.vocab_size, self.emb_dim, self.self_condition = vocab_size, emb_dim, self_condition
        self.copy_attention = copy_attention
        self.max_src_len, self.max_trg_len = max_src_len, max_trg_len
        self.embedding = nn.Embedding(vocab_size, emb_dim)  # N(0, 1), as DiffuSeq
        self.head_bias = nn.Parameter(torch.zeros(vocab_size))
        self.src_in = nn.Linear(emb_dim, dim)
        self.src_pos = nn.Parameter(torch.randn(max_src_len, dim) * 0.02)
        self.encoder = nn.ModuleList(Block(dim, heads, dropout=dropout) for _ in range(enc_depth))
        self.enc_norm = nn.LayerNorm(dim)
        self.trg_in = nn.Linear(emb_dim * (2 if self_condition else 1), dim)
        self.trg_pos = nn.Parameter(torch.randn(max_trg_len, dim) * 0.02)
        self.time_embed = nn.Sequential(SinusoidalTimeEmbedding(cond_dim), nn.Linear(cond_dim, cond_dim), nn.SiLU())
        self.decoder = nn.ModuleList(DecoderBlock(dim, heads, cond_dim, dropout=dropout) for _ in range(dec_depth))
        self.dec_norm = AdaLayerNorm(dim, cond_dim)
        self.out = nn.Linear(dim, emb_dim)
        if copy_attention:
            self.copy_q, self.copy_k, self.copy_gate = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, 1)

    # ------------------------------------------------------------------ embedding space
    def embed(self, ids: Tensor) -> Tensor:
        """Token ids (...,) -> embeddings (..., emb_dim)."""
        return self.embedding(ids)

    def logits(self, x: Tensor) -> Tensor:
        """Rounding head ``x E^T + b``: (..., emb_dim) -> (..., V)."""
        return x @ self.embedding.weight.t() + self.head_bias

    def nearest(self, x: Tensor) -> Tensor:
        """Ids of the nearest embedding (L2) of every vector (..., emb_dim) -> (...,)."""
        w = self.embedding.weight
        d = (x * x).sum(-1, keepdim=True) - 2 * x @ w.t() + (w * w).sum(-1)
        return d.argmin(-1)

    # ------------------------------------------------------------------ network
    def encode(self, src: Tensor, src_mask: Tensor | None = None) -> Tensor:
        """Source ids (B, Ls) -> encoder states (B, Ls, dim); call once per batch when sampling."""
        if src.shape[1] > self.max_src_len:
            raise ValueError(f"source length {src.shape[1]} exceeds max_src_len {self.max_src_len}")
        h = self.src_in(self.embedding(src)) + self.src_pos[: src.shape[1]]
        key_mask = None if src_mask is None else src_mask.bool()
        for blk in self.encoder:
            h = blk(h, None, key_mask)
        return self.enc_norm(h)

    def decode(
        self,
        x_t: Tensor,
        t: Tensor,
        memory: Tensor,
        src_mask: Tensor | None,
        self_cond: Tensor | None = None,
        src: Tensor | None = None,
    ) -> Tensor:
        """Noisy target embeddings (B, Lt, emb_dim) -> ``x0_hat`` (B, Lt, emb_dim).

        ``src`` (the source ids ``memory`` was encoded from) is needed with ``copy_attention``.
        """
        if self.copy_attention and src is None:
            raise ValueError("this denoiser has a copy path: pass the source ids (src=) to decode")
        if x_t.shape[1] > self.max_trg_len:
            raise ValueError(f"target length {x_t.shape[1]} exceeds max_trg_len {self.max_trg_len}")
        inp = x_t
        if self.self_condition:
            inp = torch.cat([x_t, torch.zeros_like(x_t) if self_cond is None else self_cond], -1)
        h = self.trg_in(inp) + self.trg_pos[: x_t.shape[1]]
        t = t.to(h.dtype)
        cond = self.time_embed(t if t.ndim else t.expand(x_t.shape[0]))
        key_mask = None if src_mask is None else src_mask.bool()
        for blk in self.decoder:
            h = blk(h, cond, memory, key_mask)
        h = self.dec_norm(h, cond)
        if not self.copy_attention:
            return self.out(h)
        assert src is not None
        scores = self.copy_q(h) @ self.copy_k(memory).transpose(1, 2) / math.sqrt(h.shape[-1])  # (B, Lt, Ls)
        if key_mask is not None:
            scores = scores.masked_fill(~key_mask[:, None, :], float("-inf"))
        copied = scores.softmax(-1) @ self.embedding(src)  # (B, Lt, emb_dim)
        return self.out(h) + torch.sigmoid(self.copy_gate(h)) * copied

    def forward(
        self,
        x_t: Tensor,
        t: Tensor,
        src: Tensor,
        src_mask: Tensor | None = None,
        self_cond: Tensor | None = None,
    ) -> Tensor:
        return self.decode(x_t, t, self.encode(src, src_mask), src_mask, self_cond, src)


__all__ = ["CrossAttention", "DecoderBlock", "EncoderDecoderDenoiser"]
