r"""Non-simultaneous continuous diffusion with per-token time (NeoDiff; Li, Gao and Xu, ACL 2025,
"Unifying Continuous and Discrete Text Diffusion with Non-simultaneous Diffusion Processes").

NeoDiff is :class:`~difflab.text.models.diffuseq.DiffuSeq` (embedding space, sqrt schedule, ``x0``
prediction, self-conditioning, the same encoder-decoder) with two times: the **extrinsic** time
``t`` of the sentence and an **intrinsic** time ``tau_l`` of every target token, at which that
token's embedding is noised.

Poisson forward process. Given ``t``, each token's intrinsic time is an independent Poisson count of
``K`` steps (:func:`poisson_intrinsic_times`):

.. math::
    N_l \sim \mathrm{Poisson}(\lambda(t)),\quad \lambda(t) = K t,\quad
    \tau_l = \mathrm{clip}\big(\mathrm{round}(\lambda + d\,(N_l - \lambda)),\ 0,\ K\big) / K,

    x_{\tau, l} = a(\tau_l)\, x_{start, l} + s(\tau_l)\, \varepsilon_l,

with ``d`` the ``dispersion`` (1: the plain Poisson count; the reference implementation widens the
spread this way) and ``a, s`` DiffuSeq's sqrt-schedule coefficients. So ``E[tau] ~ t`` and
``Var[tau] ~ d^2 t / K``: tokens of one sentence sit at different noise levels (a token at
``tau = 0`` is clean, one at ``tau = 1`` is noise, like discrete diffusion's kept / masked tokens),
while each level stays continuous. The denoiser reads every token's own ``tau`` (time of shape
(B, Lt)) and the loss is DiffuSeq's, per token: the target of a token whose ``tau`` is at most the
first step is ``E(w)``, otherwise ``x_start``. ``time_mode="shared"`` sets every ``tau_l = t``,
which is exactly DiffuSeq.

Time predictor (:class:`TimePredictor`). A head reads the denoiser's estimate ``x0_hat`` of the
noisy sequence (gradient stopped), the source and an extrinsic time ``t`` and predicts, over the
``K + 1`` levels, the intrinsic time each token should have at ``t``. Its labels (the reference
implementation's): the Poisson quantiles at ``t``, ``F^{-1}((r + 1/2) / L; lambda(t))`` for ranks
``r = 0..L-1``, given to the tokens in the order of their reconstruction loss (squared error of
``x0_hat`` plus the rounding cross-entropy): the tokens the denoiser recovers best get the least
noise. Loss: cross-entropy, weighted by ``time_loss_weight``, added to DiffuSeq's loss.

Reverse process (:meth:`NeoDiff.translate`). Along an extrinsic grid ``1 = t_0 > ... > t_N = 0``
every token starts at ``tau = 1``; each step evaluates ``x0_hat`` at the tokens' current ``tau``,
asks the predictor for their next ``tau'`` at ``t_{i+1}`` (``tau' <= tau``, and 0 at the end) and
moves each token from ``tau`` to ``tau'`` with the Gaussian posterior ``q(x_{tau'} | x_tau,
x0_hat)`` (core's ancestral step, per token; a token with ``tau' = tau`` keeps its state). With a
predictor that returns ``t_{i+1}`` for every token this is core's DDPM sampler on the same grid.

Inference schedule. The paper tunes the ``N`` extrinsic times by Bayesian optimisation on held-out
BLEU. Here the grid is ``t_i = (1 - i / N)^rho`` with one parameter ``rho`` (``schedule_power``),
chosen by a grid search on held-out pairs (:meth:`NeoDiff.tune_schedule`): a cheaper stand-in.

Batch: ``x0`` (B, Lt) target ids, ``src`` (B, Ls), ``src_mask`` (B, Ls), as DiffuSeq.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torch.nn import functional as F

from difflab.core.lightning import NoiseStream, eval_mode
from difflab.core.nn import SinusoidalTimeEmbedding
from difflab.core.samplers.base import Denoiser, SampleResult, keep_still, noise_like
from difflab.core.samplers.select import SamplerName
from difflab.text.metrics import corpus_bleu
from difflab.text.models.diffuseq import DiffuSeq
from difflab.text.networks.seq2seq import DecoderBlock

TimeFn = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]
"""``(x0_hat (B, Lt, E), t_next (B,), memory (B, Ls, D), tau (B, Lt)) -> tau' (B, Lt)`` in [0, 1]."""


def poisson_rate(t: Tensor, num_taus: int) -> Tensor:
    """``lambda(t) = K t``: the mean Poisson count of the ``K`` intrinsic steps at extrinsic time ``t``."""
    return num_taus * t


def counts_to_times(counts: Tensor, rate: Tensor, num_taus: int, dispersion: float) -> Tensor:
    """``clip(round(lambda + d (N - lambda)), 0, K) / K``; ``counts`` and ``rate`` broadcast."""
    spread = rate + dispersion * (counts - rate)
    return torch.round(spread).clamp(0, num_taus) / num_taus


def poisson_intrinsic_times(
    t: Tensor, length: int, num_taus: int, dispersion: float = 1.0, generator: torch.Generator | None = None
) -> Tensor:
    """Intrinsic times (B, L) of ``length`` tokens given the extrinsic times ``t`` (B,) (module docstring)."""
    rate = poisson_rate(t.double(), num_taus)[:, None].expand(t.shape[0], length)
    counts = torch.poisson(rate, generator=generator)
    return counts_to_times(counts, rate, num_taus, dispersion).to(t.dtype)


def poisson_quantile_times(t: Tensor, length: int, num_taus: int, dispersion: float = 1.0) -> Tensor:
    """Intrinsic-time levels (B, L) in {0..K}: the Poisson quantiles ``F^{-1}((r + 1/2) / L; lambda(t))``
    for ranks ``r = 0..L-1`` (non-decreasing along L), mapped as :func:`counts_to_times` and times ``K``."""
    rate = poisson_rate(t.double(), num_taus)[:, None]  # (B, 1)
    top = int(torch.ceil(rate.max() + 12 * rate.max().sqrt() + 12))
    k = torch.arange(top + 1, dtype=torch.float64, device=t.device)
    log_pmf = k * torch.log(rate.clamp_min(1e-300)) - rate - torch.lgamma(k + 1)
    log_pmf = torch.where(rate > 0, log_pmf, torch.where(k == 0, 0.0, -torch.inf))
    cdf = log_pmf.exp().cumsum(-1)  # (B, top + 1)
    q = (torch.arange(length, dtype=torch.float64, device=t.device) + 0.5) / length
    counts = torch.searchsorted(cdf.contiguous(), q.expand(t.shape[0], length).contiguous()).clamp_max(top)
    return torch.round(counts_to_times(counts.double(), rate, num_taus, dispersion) * num_taus).long()


def time_labels(token_loss: Tensor, t: Tensor, num_taus: int, dispersion: float = 1.0) -> Tensor:
    """Predictor labels (B, L) in {0..K}: the Poisson quantile levels at ``t`` (B,) in the order of
    the per-token loss (B, L), smallest loss -> smallest level."""
    levels = poisson_quantile_times(t, token_loss.shape[1], num_taus, dispersion)
    rank = token_loss.argsort(1).argsort(1)
    return torch.gather(levels, 1, rank)


class TimePredictor(nn.Module):
    """``(x0_hat (B, Lt, E), t (B,), memory (B, Ls, D), src_mask) -> logits (B, Lt, K + 1)``.

    A projection of ``x0_hat`` plus learned positions, one decoder block (self-attention,
    cross-attention to the source, MLP; adaptive LayerNorm on the extrinsic time), a linear head
    over the ``K + 1`` intrinsic levels (the reference implementation's one-layer predictor).
    """

    def __init__(self, emb_dim: int, dim: int, heads: int, max_len: int, num_taus: int, cond_dim: int = 128) -> None:
        super().__init__()
        self.inp = nn.Linear(emb_dim, dim)
        self.pos = nn.Parameter(torch.randn(max_len, dim) * 0.02)
        self.time_embed = nn.Sequential(SinusoidalTimeEmbedding(cond_dim), nn.Linear(cond_dim, cond_dim), nn.SiLU())
        self.block = DecoderBlock(dim, heads, cond_dim)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_taus + 1)

    def forward(self, x0_hat: Tensor, t: Tensor, memory: Tensor, src_mask: Tensor | None) -> Tensor:
        h = self.inp(x0_hat) + self.pos[: x0_hat.shape[1]]
        cond = self.time_embed(t.to(h.dtype))
        h = self.block(h, cond, memory, None if src_mask is None else src_mask.bool())
        return self.head(self.norm(h))


class NeoDiff(DiffuSeq):
    """NeoDiff: DiffuSeq with Poisson per-token intrinsic time and a time predictor (module docstring).

    Args (besides :class:`DiffuSeq`'s):
        num_taus: ``K``, the intrinsic steps (the reference: 100).
        dispersion: ``d``, the spread of the Poisson count around its mean (1: plain Poisson).
        time_mode: ``"poisson"`` (NeoDiff) or ``"shared"`` (every ``tau_l = t``: DiffuSeq).
        time_loss_weight: weight of the predictor's cross-entropy in the loss.
        schedule_power: ``rho`` of the extrinsic grid ``t_i = (1 - i / N)^rho``.
        sample_steps: ``N`` (the reference: 20).
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
        sample_steps: int = 20,
        num_val_samples: int = 0,
        eos_id: int = 3,
        pad_id: int = 0,
        num_taus: int = 100,
        dispersion: float = 1.0,
        time_mode: Literal["poisson", "shared"] = "poisson",
        time_loss_weight: float = 1.0,
        schedule_power: float = 1.0,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        if time_mode not in ("poisson", "shared"):
            raise ValueError(f"time_mode must be 'poisson' or 'shared', got {time_mode!r}")
        if num_taus < 1 or num_steps % num_taus:
            raise ValueError(f"num_taus must divide num_steps ({num_steps}) so every level is a step, got {num_taus}")
        if dispersion <= 0 or schedule_power <= 0 or time_loss_weight < 0:
            raise ValueError(
                f"dispersion and schedule_power must be > 0 and time_loss_weight >= 0, got {dispersion}, "
                f"{schedule_power}, {time_loss_weight}"
            )
        super().__init__(
            vocab_size, emb_dim, dim, enc_depth, dec_depth, heads, dropout, copy_attention, max_src_len,
            max_trg_len, num_steps, self_condition, self_cond_prob, clamp, sampler, sample_steps,
            num_val_samples, eos_id, pad_id, optimizer, lr_scheduler,
        )  # fmt: skip
        self.time_predictor = TimePredictor(emb_dim, dim, heads, max_trg_len, num_taus)
        self.num_taus, self.dispersion, self.time_mode = num_taus, dispersion, time_mode
        self.time_loss_weight, self.schedule_power = time_loss_weight, schedule_power

    # ------------------------------------------------------------------ loss
    def intrinsic_times(self, t: Tensor, length: int, generator: torch.Generator | None = None) -> Tensor:
        """``tau`` (B, L) for the extrinsic times ``t`` (B,): Poisson, or ``t`` itself when shared."""
        if self.time_mode == "shared":
            return t[:, None].expand(t.shape[0], length)
        return poisson_intrinsic_times(t, length, self.num_taus, self.dispersion, generator)

    def loss_terms(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """``{"loss", "mse", "t_T", "rounding", "time", "time_mae", "time_blind_mae"}``, batch means:
        DiffuSeq's terms with per-token time, the predictor's cross-entropy and mean absolute errors in
        ``tau`` (:meth:`time_terms`)."""
        net = self.network
        w = batch["x0"]
        b, dev = w.shape[0], w.device
        emb = net.embed(w)
        t = self.process.train_times(emb, generator)  # extrinsic, whole steps k / T
        tau = self.intrinsic_times(t, w.shape[1], generator)  # (B, Lt)
        t1 = torch.full((b,), 1.0 / self.num_steps, device=dev, dtype=emb.dtype)
        _, _, s1 = self.process.coefficients(t1)
        eps0 = torch.randn(emb.shape, generator=generator, device=dev, dtype=emb.dtype)
        x_start = emb + s1[:, None, None] * eps0
        x_t, _ = self.process.sample_marginal(x_start, tau, generator=generator)
        memory = net.encode(batch["src"], batch.get("src_mask"))
        sc = None
        if self.self_condition:
            use = torch.rand(b, generator=generator, device=dev) < self.self_cond_prob
            if bool(use.any()):
                with torch.no_grad():
                    first = net.decode(x_t, tau, memory, batch.get("src_mask"), None, batch["src"])
                sc = first * use[:, None, None].to(first.dtype)
        x0_hat = net.decode(x_t, tau, memory, batch.get("src_mask"), sc, batch["src"])
        target = torch.where((self.process.index(tau) <= 1)[..., None], emb, x_start)
        token_mse = (x0_hat - target).pow(2).mean(2)  # (B, Lt)
        a_T, _, _ = self.process.coefficients(torch.ones_like(t))
        t_T = (a_T[:, None, None] * x_start).pow(2).mean((1, 2))
        rounding = F.cross_entropy(net.logits(x_start).transpose(1, 2), w, reduction="none").mean(1)
        time, mae, blind = self.time_terms(x0_hat.detach(), token_mse.detach(), w, t, memory, batch.get("src_mask"))
        loss = (token_mse.mean(1) + t_T + rounding).mean() + self.time_loss_weight * time
        out = {"loss": loss, "mse": token_mse.mean(), "t_T": t_T.mean(), "rounding": rounding.mean()}
        return {**out, "time": time.detach(), "time_mae": mae, "time_blind_mae": blind}

    def time_terms(
        self, x0_hat: Tensor, token_mse: Tensor, w: Tensor, t: Tensor, memory: Tensor, src_mask: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The predictor's cross-entropy against :func:`time_labels` (ranked by squared error plus
        rounding cross-entropy of ``x0_hat``), the mean absolute error of its argmax in ``tau``, and that
        of the best token-blind predictor (it knows ``t`` and the label levels but not which token gets
        which: the median level for every token)."""
        with torch.no_grad():
            ce = F.cross_entropy(self.network.logits(x0_hat).transpose(1, 2), w, reduction="none")
            labels = time_labels(token_mse + ce, t, self.num_taus, self.dispersion)
            median = labels.sort(1).values[:, labels.shape[1] // 2 : labels.shape[1] // 2 + 1]
            blind = (labels - median).abs().float().mean() / self.num_taus
        logits = self.time_predictor(x0_hat, t, memory, src_mask)
        loss = F.cross_entropy(logits.transpose(1, 2), labels)
        mae = (logits.detach().argmax(-1) - labels).abs().float().mean() / self.num_taus
        return loss, mae, blind

    def validation_metrics(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Tensor | float]:
        g = self.noise_generator(NoiseStream.VAL, batch_idx)
        terms = self.loss_terms(batch, g)
        return {"time_mae": terms["time_mae"], "time_blind_mae": terms["time_blind_mae"], "time_ce": terms["time"]}

    # ------------------------------------------------------------------ sampling
    def extrinsic_grid(self, steps: int, power: float | None = None) -> Tensor:
        """``t_i = (1 - i / N)^rho``, ``i = 0..N`` (N + 1,), snapped to the intrinsic levels ``k / K``."""
        rho = self.schedule_power if power is None else power
        grid = (1 - torch.arange(steps + 1, dtype=torch.float64) / steps) ** rho
        return torch.round(grid * self.num_taus) / self.num_taus

    def predicted_time_fn(self, src_mask: Tensor | None) -> TimeFn:
        """The learned predictor as a :data:`TimeFn`: the most likely level, ``argmax / K``."""

        def time_fn(x0_hat: Tensor, t_next: Tensor, memory: Tensor, tau: Tensor) -> Tensor:
            logits = self.time_predictor(x0_hat, t_next, memory, src_mask)
            return logits.argmax(-1).to(tau.dtype) / self.num_taus

        return time_fn

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
        schedule_power: float | None = None,
        time_fn: TimeFn | None = None,
        **options: Any,
    ) -> SampleResult:
        """Target ids (B, Lt) for source ids ``src`` (B, Ls) by the non-simultaneous reverse process.

        ``sampler``: ``None`` runs NeoDiff's reverse process (module docstring) on the grid of
        ``steps`` (default ``sample_steps``) and ``schedule_power``; a core sampler name runs that
        sampler with one shared time (DiffuSeq's :meth:`~DiffuSeq.translate`, ``options`` go to it).
        ``time_fn`` replaces the learned predictor. ``info``: ``"x"`` the final vectors, ``"taus"``
        the intrinsic times (N + 1, B, Lt) the tokens went through.
        """
        if sampler is not None:
            return super().translate(
                src, src_mask, trg_len=trg_len, sampler=sampler, steps=steps, clamp=clamp,
                generator=generator, callback=callback, **options,
            )  # fmt: skip
        if options:
            raise ValueError(f"NeoDiff's reverse process takes no sampler options, got {sorted(options)}")
        net = self.network
        src = src.to(self.device)
        src_mask = None if src_mask is None else src_mask.to(self.device)
        batch = {"src": src, "src_mask": src_mask, "clamp": self.clamp if clamp is None else clamp}
        shape = (src.shape[0], trg_len or net.max_trg_len, net.emb_dim)
        grid = self.extrinsic_grid(steps or self.sample_steps, schedule_power)
        with eval_mode(self):
            memory = net.encode(src, src_mask)
            x = self.process.prior_sample(shape, generator=generator, device=self.device)
            den, raw = self.sampling_denoiser(batch)
            time_fn = time_fn or self.predicted_time_fn(src_mask)
            res = self.reverse_process(den, x, grid, time_fn, memory, generator, callback, raw)
            ids = net.logits(res.sample).argmax(-1)
        return SampleResult(ids, res.nfe, {**res.info, "x": res.sample})

    def sampling_denoiser(self, batch: dict[str, Any]) -> tuple[Denoiser, dict[str, Tensor]]:
        """DiffuSeq's denoiser on ``batch`` with the clamping done here, so that the unclamped
        ``x0_hat`` of the last call (what the predictor was trained on) is kept under ``"x0"``."""
        net, clamp = self.network, batch["clamp"]
        inner = self.make_denoiser({**batch, "clamp": False})
        seen: dict[str, Tensor] = {}

        def model(x_t: Tensor, t: Tensor) -> Tensor:
            seen["x0"] = out = inner.model(x_t, t)
            return net.embed(net.nearest(out)) if clamp else out

        return Denoiser(model, self.process, "x0"), seen

    def reverse_process(
        self,
        denoiser: Denoiser,
        x: Tensor,
        grid: Tensor,
        time_fn: TimeFn,
        memory: Tensor,
        generator: torch.Generator | None = None,
        callback=None,
        raw: dict[str, Tensor] | None = None,
    ) -> SampleResult:
        """Move ``x`` (B, Lt, E) from ``tau = grid[0]`` to 0 along the extrinsic ``grid`` (N + 1,), each
        token at the intrinsic time ``time_fn`` gives it (clipped to ``<=`` its current ``tau``; 0 at
        the last step), by the per-token posterior ``q(x_{tau'} | x_tau, x0_hat)`` (core's DDPM step).
        ``time_fn`` reads ``raw["x0"]`` (the unclamped estimate) when given, else the denoiser's ``x0``."""
        proc, n = self.process, grid.shape[0] - 1
        tau = torch.full(x.shape[:2], float(grid[0]), dtype=x.dtype, device=x.device)
        taus, nfe0 = [tau], denoiser.nfe
        for i in range(n):
            parts_t = [c.to(x.dtype) for c in proc.coefficients(tau.double())]
            x0, eps = denoiser(x, tau, coefficients=(parts_t[0], parts_t[1], parts_t[2]))
            if i < n - 1:
                t_next = torch.full((x.shape[0],), float(grid[i + 1]), dtype=x.dtype, device=x.device)
                seen = x0 if raw is None else raw.get("x0", x0)
                nxt = torch.minimum(time_fn(seen, t_next, memory, tau).to(x.dtype), tau)
            else:
                nxt = torch.zeros_like(tau)
            parts = [c.to(x.dtype) for c in proc.posterior_parts(nxt.double(), tau.double())]
            mean, std = proc.posterior_from_parts(tuple(parts), x, x0, eps=eps, eta=1.0)
            x_new = mean + std * noise_like(proc, x, generator) if i < n - 1 else mean
            x = keep_still(nxt == tau, x, x_new)
            tau = nxt
            taus.append(tau)
            if callback is not None:
                callback({"step": i, "t": tau, "x": x, "x0": x0})
        return SampleResult(x, denoiser.nfe - nfe0, {"taus": torch.stack(taus)})

    @torch.no_grad()
    def tune_schedule(
        self,
        src: Tensor,
        src_mask: Tensor | None,
        refs: Sequence[str],
        powers: Sequence[float] = (0.5, 0.75, 1.0, 1.5, 2.0),
        *,
        steps: int | None = None,
        seed: int = 0,
    ) -> dict[float, float]:
        """Grid search of ``schedule_power`` on held-out pairs: BLEU of one draw per power (the same
        noise for every power: the module's sampling stream tagged ``seed``), keeps the best in
        ``schedule_power`` and returns ``{power: BLEU}``."""
        if len(refs) != src.shape[0] or not powers:
            raise ValueError(f"tune_schedule needs one reference per source and some powers, got {len(refs)}, {powers}")
        scores = {}
        for p in powers:
            g = self.noise_generator(NoiseStream.SAMPLE, seed)
            hyps = self.translate_texts(src, src_mask, steps=steps, schedule_power=p, generator=g)
            scores[float(p)] = corpus_bleu(hyps, list(refs))
        self.schedule_power = max(scores, key=lambda p: scores[p])
        self.hparams["schedule_power"] = self.schedule_power
        return scores


__all__ = ["NeoDiff", "TimePredictor", "poisson_intrinsic_times", "poisson_quantile_times", "time_labels"]
