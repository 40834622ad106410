r"""Continuous-embedding diffusion for sequence to sequence (DiffuSeq, Gong et al. 2023; SeqDiffuSeq, Yuan et al. 2022).

The target tokens are mapped to vectors by a learned embedding ``E`` and diffused with a Gaussian
process; the source is never noised (it conditions the denoiser through an encoder, SeqDiffuSeq's
encoder-decoder, :class:`~difflab.text.networks.seq2seq.EncoderDecoderDenoiser`).

Forward process: :class:`difflab.core.processes.DiscreteVP` with DiffuSeq's **sqrt** schedule
(Li et al. 2022, Diffusion-LM), ``alpha_bar(tau) = 1 - sqrt(tau + 1e-4)``, ``beta_i = min(1 -
alpha_bar((i+1)/T) / alpha_bar(i/T), 0.999)``, ``T = 2000`` (core's ``sqrt`` schedule,
``difflab.core.schedules.sqrt_betas``); step ``k`` is at ``t = k / T``.

Objective (DiffuSeq's, per example, means over target positions and embedding channels):

.. math::
    x_{start} = E(w) + s_1 \varepsilon_0,\quad x_t = a_t x_{start} + s_t \varepsilon,\quad
    \hat x_0 = f_\theta(x_t, t, \mathrm{src}[, \tilde x_0]),

    \mathcal L = \lVert \hat x_0 - x_{start} \rVert^2 \;(\lVert \hat x_0 - E(w)\rVert^2 \text{ at } k = 1)
      + \lVert a_T x_{start} \rVert^2 - \log p(w \mid x_{start}),

with ``k`` uniform on ``1..T``, ``s_1`` the noise level of the first step, ``a_T x_start`` the mean
at the last step (keeps the embeddings from growing) and ``p(w | x) = softmax(x E^T + b)`` the
rounding term (keeps the embeddings apart so rounding is well defined). Every target position is
diffused, including the ``[EOS] [PAD]...`` tail, so the model also chooses the length.

Self-conditioning (SeqDiffuSeq; Chen et al. 2022): with probability ``self_cond_prob`` a first pass
without gradient gives ``tilde x_0``, which the second pass reads; at sampling time each step reads
the previous step's estimate.

Sampling: any core sampler by name (``ddpm`` default, ``ddim``, ...) on the ``x0`` prediction from
``N(0, I)``; with ``clamp`` (DiffuSeq's clamping trick) every ``x0_hat`` is replaced by its nearest
embedding before the sampler uses it. The final vectors are rounded by the head (``argmax x E^T +
b``); the text ends at the first ``[EOS]``. :meth:`DiffuSeq.translate_texts` adds DiffuSeq's
minimum-Bayes-risk decoding: several draws per source, keeping the one with the highest mean
sentence BLEU against the others (:func:`difflab.text.metrics.mbr_select`).

Likelihood: :meth:`DiffuSeq.token_nll_bound` is an upper bound on ``-log P(w | src)`` of the target
tokens (variational dequantisation with ``q(x | w) = N(E(w), s_1^2 I)``: the PF-ODE NLL of ``x``
with the self-conditioning input zero, plus the rounding term, plus ``log q``; see
:mod:`difflab.text.likelihood`), which ``difflab-text evaluate`` reports per target token.

Copy path (``copy_attention``, off by default): the denoiser may also point at source tokens and
copy their embeddings into ``x0_hat`` (see :mod:`difflab.text.networks.seq2seq`); the diffusion,
objective and sampling are unchanged.

Batch: ``x0`` (B, Lt) target ids, ``src`` (B, Ls), ``src_mask`` (B, Ls) (see
:mod:`difflab.text.data.seq2seq`).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor
from torch.nn import functional as F

from difflab.core.lightning import DiffusionModule, NoiseStream, eval_mode
from difflab.core.processes.gaussian import DiscreteVP
from difflab.core.samplers.base import Denoiser, SampleResult
from difflab.core.samplers.select import SamplerName
from difflab.text.likelihood import BoundTerms, diffuseq_bound
from difflab.text.metrics import corpus_bleu, mbr_select
from difflab.text.models.base import TokenizerMixin
from difflab.text.networks.seq2seq import EncoderDecoderDenoiser


class DiffuSeq(TokenizerMixin, DiffusionModule):
    """DiffuSeq / SeqDiffuSeq-style seq2seq diffusion in embedding space with an encoder-decoder denoiser.

    Args:
        vocab_size: V, at least the tokenizer's size.
        emb_dim: width of the diffusion (embedding) space.
        dim, enc_depth, dec_depth, heads, dropout: transformer size.
        copy_attention: give the denoiser the gated copy path over the source embeddings.
        max_src_len, max_trg_len: longest source / target.
        num_steps: ``T`` of the sqrt schedule (DiffuSeq: 2000).
        self_condition: use self-conditioning; ``self_cond_prob``: share of training steps that do.
        clamp: clamp ``x0_hat`` to the nearest embedding at every sampling step.
        sampler: core sampler name (``ddpm`` is DiffuSeq's ancestral sampler).
        sample_steps: sampler steps (DiffuSeq uses all ``T``; far fewer suffice with ``x0`` prediction).
        num_val_samples: sources translated at each validation for ``val/bleu``.
        eos_id, pad_id: ids of [EOS] / [PAD] (0 and 3 for ``train-tokenizer`` tokenizers).
        optimizer, lr_scheduler: optimiser factories.
    """

    def __init__(
        self,
        vocab_size: int = 1024,
        emb_dim: int = 32,
        dim: int = 128,
        enc_depth: int = 2,
        dec_depth: int = 2,
        heads: int = 4,
        dropout: float = 0.0,
        copy_attention: bool = False,
        max_src_len: int = 32,
        max_trg_len: int = 32,
        num_steps: int = 2000,
        self_condition: bool = True,
        self_cond_prob: float = 0.5,
        clamp: bool = True,
        sampler: SamplerName = "ddpm",
        sample_steps: int = 100,
        num_val_samples: int = 0,
        eos_id: int = 3,
        pad_id: int = 0,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        if not 0.0 <= self_cond_prob <= 1.0:
            raise ValueError(f"self_cond_prob must lie in [0, 1], got {self_cond_prob}")
        network = EncoderDecoderDenoiser(
            vocab_size,
            emb_dim,
            dim,
            enc_depth,
            dec_depth,
            heads,
            max_src_len,
            max_trg_len,
            self_condition,
            dropout=dropout,
            copy_attention=copy_attention,
        )
        super().__init__(
            network=network,
            process=DiscreteVP("sqrt", num_steps),
            prediction="x0",
            optimizer=optimizer,
            lr_scheduler=lr_scheduler,
            sampler=sampler,
            sample_steps=sample_steps,
            num_val_samples=num_val_samples,
        )
        self.vocab_size, self.num_steps = vocab_size, num_steps
        self.self_condition, self.self_cond_prob, self.clamp = self_condition, self_cond_prob, clamp
        self.eos_id, self.pad_id = eos_id, pad_id

    SPECIAL_IDS = ("eos_id", "pad_id")

    data_trg_len: int | None = None
    """The training data's target length (``Seq2SeqDataModule.trg_len``), kept in the checkpoint."""

    # ------------------------------------------------------------------ tokenizer / checkpoint
    def setup(self, stage: str) -> None:
        super().setup(stage)  # the tokenizer first (TokenizerMixin)
        trainer = getattr(self, "_trainer", None)
        trg_len = getattr(getattr(trainer, "datamodule", None), "trg_len", None)
        if isinstance(trg_len, int):
            self.data_trg_len = trg_len

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint.setdefault("difflab_text", {})["trg_len"] = self.data_trg_len

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        trg_len = (checkpoint.get("difflab_text") or {}).get("trg_len")
        if trg_len is not None:
            self.data_trg_len = int(trg_len)

    # ------------------------------------------------------------------ loss
    def network_forward(self, x_t: Tensor, t: Tensor, batch: dict[str, Any] | None = None) -> Tensor:
        assert batch is not None, "DiffuSeq needs the batch's source"
        return self.network(x_t, t, batch["src"], batch.get("src_mask"), batch.get("self_cond"))

    def training_loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> Tensor:
        return self.loss_terms(batch, generator)["loss"]

    def loss_terms(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """``{"loss", "mse", "t_T", "rounding"}``, batch means (see the module docstring)."""
        net: EncoderDecoderDenoiser = self.network  # type: ignore[assignment]
        w = batch["x0"]
        b, dev = w.shape[0], w.device
        emb = net.embed(w)
        t = self.process.train_times(emb, generator)  # whole steps k / T, k ~ U{1..T}
        k = self.process.index(t)
        t1 = torch.full((b,), 1.0 / self.num_steps, device=dev, dtype=emb.dtype)
        _, _, s1 = self.process.coefficients(t1)
        eps0 = torch.randn(emb.shape, generator=generator, device=dev, dtype=emb.dtype)
        x_start = emb + s1[:, None, None] * eps0
        x_t, _ = self.process.sample_marginal(x_start, t, generator=generator)
        memory = net.encode(batch["src"], batch.get("src_mask"))
        sc = None
        if self.self_condition:
            use = torch.rand(b, generator=generator, device=dev) < self.self_cond_prob
            if bool(use.any()):
                with torch.no_grad():
                    first = net.decode(x_t, t, memory, batch.get("src_mask"), None, batch["src"])
                sc = first * use[:, None, None].to(first.dtype)
        x0_hat = net.decode(x_t, t, memory, batch.get("src_mask"), sc, batch["src"])
        target = torch.where((k == 1)[:, None, None], emb, x_start)
        mse = (x0_hat - target).pow(2).mean((1, 2))
        a_T, _, _ = self.process.coefficients(torch.ones_like(t))
        t_T = (a_T[:, None, None] * x_start).pow(2).mean((1, 2))
        rounding = F.cross_entropy(net.logits(x_start).transpose(1, 2), w, reduction="none").mean(1)
        loss = (mse + t_T + rounding).mean()
        return {"loss": loss, "mse": mse.mean(), "t_T": t_T.mean(), "rounding": rounding.mean()}

    def validation_metrics(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Tensor | float]:
        return {}

    def token_nll_bound(
        self,
        batch: dict[str, Any],
        *,
        steps: int = 16,
        probes: int = 1,
        divergence: Literal["exact", "hutchinson"] = "hutchinson",
        generator: torch.Generator | None = None,
        callback=None,
    ) -> BoundTerms:
        """One draw of the upper bound on ``-log P(w | src)`` per example (B,), nats: the PF-ODE NLL of
        the dequantised target embeddings plus the rounding term plus ``log q(x | w)``
        (:mod:`difflab.text.likelihood`). Cost: ``4 * steps`` decoder evaluations, each with one
        backward pass per probe."""
        return diffuseq_bound(
            self, batch, steps=steps, probes=probes, divergence=divergence, generator=generator, callback=callback
        )

    # ------------------------------------------------------------------ sampling
    def make_denoiser(self, batch: dict[str, Any] | None = None, y: Tensor | None = None) -> Denoiser:
        """The decoder on ``batch``'s source (``src`` (B, Ls), ``src_mask``), encoded once; with
        self-conditioning each call reads the previous call's estimate (``batch["self_condition"] =
        False``: the input stays zero, a function of ``(x, t)`` only, as the PF-ODE likelihood needs),
        and with ``batch["clamp"]`` (default: the module's ``clamp``) ``x0_hat`` is replaced by its
        nearest embedding."""
        if batch is None or "src" not in batch:
            raise ValueError("DiffuSeq samples from a batch holding the source ids 'src'")
        net: EncoderDecoderDenoiser = self.network  # type: ignore[assignment]
        src, src_mask = batch["src"], batch.get("src_mask")
        memory = net.encode(src, src_mask)
        clamp = batch.get("clamp", self.clamp)
        self_cond = self.self_condition and batch.get("self_condition", True)
        state: dict[str, Tensor | None] = {"prev": None}

        def model(x_t: Tensor, t: Tensor) -> Tensor:
            if x_t.shape[0] != src.shape[0]:
                raise ValueError(
                    f"the sampler evaluates {x_t.shape[0]} targets for {src.shape[0]} sources at once "
                    "(parallel samplers such as paradigms are not supported by DiffuSeq's self-conditioning)"
                )
            out = net.decode(x_t, t, memory, src_mask, state["prev"] if self_cond else None, src)
            state["prev"] = out
            return net.embed(net.nearest(out)) if clamp else out

        return Denoiser(model, self.process, "x0")

    @torch.no_grad()
    def translate(
        self,
        src: Tensor,
        src_mask: Tensor | None = None,
        *,
        trg_len: int | None = None,
        sampler: SamplerName | None = None,
        steps: int | None = None,
        clamp: bool | None = None,
        generator: torch.Generator | None = None,
        callback=None,
        **options: Any,
    ) -> SampleResult:
        """Generate target ids (B, Lt) for source ids ``src`` (B, Ls).

        Core's :meth:`~difflab.core.lightning.DiffusionModule.sample` from ``N(0, I)`` of shape
        ``(B, Lt, emb_dim)``, then rounding by the head. ``info`` carries the final embedding-space
        sample (``"x"``, (B, Lt, emb_dim)).
        """
        net: EncoderDecoderDenoiser = self.network  # type: ignore[assignment]
        src = src.to(self.device)
        src_mask = None if src_mask is None else src_mask.to(self.device)
        batch = {"src": src, "src_mask": src_mask, "clamp": self.clamp if clamp is None else clamp}
        shape = (src.shape[0], trg_len or net.max_trg_len, net.emb_dim)
        res = self.sample(
            shape, batch=batch, sampler=sampler, steps=steps, generator=generator, callback=callback, **options
        )
        with eval_mode(self):
            ids = net.logits(res.sample).argmax(-1)
        return SampleResult(ids, res.nfe, {**res.info, "x": res.sample})

    @torch.no_grad()
    def translate_texts(
        self,
        src: Tensor,
        src_mask: Tensor | None = None,
        *,
        draws: int = 1,
        batch_size: int = 256,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> list[str]:
        """Target texts for source ids ``src`` (B, Ls): ``draws`` samples per source, MBR-selected.

        ``draws=1`` is one sample per source; ``draws > 1`` is DiffuSeq's minimum-Bayes-risk
        decoding (:func:`~difflab.text.metrics.mbr_select`). ``options`` go to :meth:`translate`.
        """
        if draws < 1:
            raise ValueError(f"draws must be >= 1, got {draws}")
        cands = []
        for _ in range(draws):
            texts: list[str] = []
            for i in range(0, src.shape[0], batch_size):
                m = None if src_mask is None else src_mask[i : i + batch_size]
                r = self.translate(src[i : i + batch_size], m, generator=generator, **options)
                texts += self.decode_ids(r.sample)
            cands.append(texts)
        return cands[0] if draws == 1 else mbr_select(cands)

    def decode_ids(self, ids: Tensor) -> list[str]:
        """Target ids (B, Lt) -> texts (up to the first [EOS])."""
        if self.tokenizer is None:
            raise ValueError("no tokenizer attached (train through a data module or load a checkpoint)")
        return self.tokenizer.decode_batch(ids.tolist(), stop_at_eos=True)

    def sample_for_validation(self, batch: dict[str, Any], generator: torch.Generator) -> SampleResult:
        n = self.num_val_samples
        m = batch.get("src_mask")
        return self.translate(
            batch["src"][:n], None if m is None else m[:n], trg_len=batch["x0"].shape[1], generator=generator
        )

    def sample_metrics(self, samples: Tensor, batch: dict[str, Any]) -> dict[str, Tensor | float]:
        if self.tokenizer is None:
            return {"token_accuracy": float((samples == batch["x0"][: samples.shape[0]]).float().mean())}
        hyps = self.decode_ids(samples)
        refs = self.decode_ids(batch["x0"][: samples.shape[0]])
        return {"bleu": corpus_bleu(hyps, refs)}

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        return self.translate(
            batch["src"],
            batch.get("src_mask"),
            trg_len=batch["x0"].shape[1] if "x0" in batch else None,
            generator=self.noise_generator(NoiseStream.PREDICT, batch_idx),
        ).sample


__all__ = ["DiffuSeq"]
