r"""Small transformers over token sequences: the diffusion denoiser and the autoregressive baseline.

Both share :class:`Block` (pre-norm multi-head self-attention + GELU MLP, Vaswani et al. 2017) and
learned absolute position embeddings, so at equal ``dim`` / ``depth`` / ``heads`` they have the
same size (the denoiser adds the time embedding and the adaLN modulation when time-conditioned).

* :class:`DiffusionTransformer` (bidirectional, MDLM / GIDD's DiT backbone shrunk): token ids
  ``x_t`` (B, L) and time ``t`` (B,) or (B, L) -> logits (B, L, V). The time enters through a
  sinusoidal embedding and DiT's adaptive LayerNorm (``AdaLayerNorm`` of difflab.core; Peebles &
  Xie 2023) in every block; with ``time_conditioning=False`` (MDLM's default) ``t`` is ignored,
  which makes caching in the masked sampler exact.
* :class:`ARTransformer` (causal): ids (B, L) -> next-token logits (B, L, V); the baseline language
  model and the scorer of generative perplexity.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from difflab.core.nn import AdaLayerNorm, SinusoidalTimeEmbedding


class Block(nn.Module):
    """Pre-norm transformer block; the norms are ``AdaLayerNorm`` when ``cond_dim`` is given.

    Shapes: ``h`` (B, L, D); ``cond`` (B, C) or (B, L, C); ``key_mask`` (B, L) bool, True = attend.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4, dropout: float = 0.0, cond_dim: int | None = None):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        self.heads = heads
        self.cond = cond_dim is not None
        if self.cond:
            self.norm1, self.norm2 = AdaLayerNorm(dim, cond_dim), AdaLayerNorm(dim, cond_dim)
        else:
            self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))
        self.dropout = nn.Dropout(dropout)
        self.p = dropout

    def _norm(self, norm: nn.Module, h: Tensor, cond: Tensor | None) -> Tensor:
        return norm(h, cond) if self.cond else norm(h)

    def attend(self, h: Tensor, key_mask: Tensor | None, causal: bool, memory: Tensor | None = None) -> Tensor:
        b, n, d = h.shape
        q, k, v = self.qkv(h).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.p if self.training else 0.0, is_causal=causal and mask is None
        )
        return self.proj(out.transpose(1, 2).reshape(b, n, d))

    def forward(self, h: Tensor, cond: Tensor | None = None, key_mask: Tensor | None = None, causal: bool = False):
        h = h + self.dropout(self.attend(self._norm(self.norm1, h, cond), key_mask, causal))
        return h + self.dropout(self.mlp(self._norm(self.norm2, h, cond)))


class DiffusionTransformer(nn.Module):
    """Bidirectional transformer denoiser ``(x_t, t) -> logits``.

    Args:
        vocab_size: V (including [MASK]).
        max_len: longest sequence (position embeddings).
        dim: model width D.
        depth: number of blocks.
        heads: attention heads.
        time_conditioning: feed ``t`` through adaLN (False: ``t`` is ignored, MDLM's default).
        cond_dim: width of the time embedding.
        dropout: dropout in attention and residual branches.

    Shapes: ``x`` (B, L) long; ``t`` (B,) or (B, L) in [0, 1]; ``attention_mask`` (B, L) (1 = real
    token) or None -> logits (B, L, V) float.
    """

    def __init__(
        self,
        vocab_size: int,
        max_len: int = 128,
        dim: int = 128,
        depth: int = 4,
        heads: int = 4,
        time_conditioning: bool = True,
        cond_dim: int = 128,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.vocab_size, self.max_len, self.time_conditioning = vocab_size, max_len, time_conditioning
        self.embed = nn.Embedding(vocab_size, dim)
        self.pos = nn.Parameter(torch.zeros(max_len, dim))
        # token and position embeddings on the same scale (GPT-2 init): with nn.Embedding's N(0, 1)
        # the positions would be drowned and a bidirectional model could not tell neighbours apart
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.pos, std=0.02)
        cdim = cond_dim if time_conditioning else None
        if time_conditioning:
            self.time_embed = nn.Sequential(SinusoidalTimeEmbedding(cond_dim), nn.Linear(cond_dim, cond_dim), nn.SiLU())
        self.blocks = nn.ModuleList(Block(dim, heads, dropout=dropout, cond_dim=cdim) for _ in range(depth))
        self.norm = AdaLayerNorm(dim, cond_dim) if time_conditioning else nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab_size)

    def forward(self, x: Tensor, t: Tensor | None = None, attention_mask: Tensor | None = None) -> Tensor:
        if x.shape[1] > self.max_len:
            raise ValueError(f"sequence length {x.shape[1]} exceeds max_len {self.max_len}")
        h = self.embed(x) + self.pos[: x.shape[1]]
        cond = None
        if self.time_conditioning:
            if t is None:
                raise ValueError("this DiffusionTransformer is time-conditioned: pass t")
            t = t.to(h.dtype)
            cond = self.time_embed(t if t.ndim else t.expand(x.shape[0]))
        key_mask = None if attention_mask is None else attention_mask.bool()
        for blk in self.blocks:
            h = blk(h, cond, key_mask)
        h = self.norm(h, cond) if self.time_conditioning else self.norm(h)
        return self.head(h)


class ARTransformer(nn.Module):
    """Causal transformer language model ``x -> next-token logits`` (same blocks as the denoiser).

    Shapes: ``x`` (B, L) long -> logits (B, L, V); ``logits[:, i]`` predicts ``x[:, i + 1]``.
    """

    def __init__(
        self, vocab_size: int, max_len: int = 128, dim: int = 128, depth: int = 4, heads: int = 4, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.vocab_size, self.max_len = vocab_size, max_len
        self.embed = nn.Embedding(vocab_size, dim)
        self.pos = nn.Parameter(torch.zeros(max_len, dim))
        # token and position embeddings on the same scale (GPT-2 init): with nn.Embedding's N(0, 1)
        # the positions would be drowned and a bidirectional model could not tell neighbours apart
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, dropout=dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab_size)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] > self.max_len:
            raise ValueError(f"sequence length {x.shape[1]} exceeds max_len {self.max_len}")
        h = self.embed(x) + self.pos[: x.shape[1]]
        for blk in self.blocks:
            h = blk(h, causal=True)
        return self.head(self.norm(h))

    @torch.no_grad()
    def generate(
        self, prefix: Tensor, length: int, generator: torch.Generator | None = None, temperature: float = 1.0
    ) -> Tensor:
        """Ancestral sampling: extend ``prefix`` (B, P) to (B, length), one token per forward pass.

        ``length - P`` network evaluations (no key/value cache: the same cost model as the denoiser).
        """
        x = prefix
        while x.shape[1] < length:
            logits = self(x)[:, -1].double() / temperature
            probs = torch.softmax(logits, -1)
            nxt = torch.multinomial(probs, 1, generator=generator)
            x = torch.cat([x, nxt], 1)
        return x


__all__ = ["Block", "DiffusionTransformer", "ARTransformer"]
