"""DiffuSeq's token-level bound through its probability-flow ODE (difflab.text.likelihood, ``evaluate``).

Oracle: a DiffuSeq whose denoiser is the exact posterior mean of a Gaussian "data" distribution
``x_start ~ N(mu, tau^2 I)`` per target coordinate, so the PF-ODE marginal at ``t`` is
``N(a(t) mu, (a(t)^2 tau^2 + s(t)^2) I)`` in closed form, and the token probability
``P(w) = prod_i int N(x_i; a_1 mu_i, v I) softmax(x_i E^T + b)_{w_i} dx_i`` is a 2-D integral per
position (Gauss-Hermite quadrature; vocabulary 3, length 2: every sequence enumerated).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from difflab.core.testing import user_error_line
from difflab.text.cli import main
from difflab.text.likelihood import dequantised_bound, ode_grid, pf_ode_log_density
from difflab.text.models import DiffuSeq
from difflab.text.networks.seq2seq import EncoderDecoderDenoiser

V, D, LT, T = 3, 2, 2, 200
EMB = torch.tensor([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
TARGET = torch.tensor([0, 1])


class GaussianOracle(EncoderDecoderDenoiser):
    """``x0_hat = E[x_start | x_t]`` for ``x_start ~ N(mu, tau^2 I)``; refuses a self-conditioning input."""

    def __init__(self, process, mu: torch.Tensor, tau: float, emb: torch.Tensor) -> None:
        super().__init__(V, D, dim=8, enc_depth=1, dec_depth=0, heads=1, max_src_len=4, max_trg_len=LT)
        self.process, self.mu, self.tau = process, mu, tau
        with torch.no_grad():
            self.embedding.weight.copy_(emb)

    def decode(self, x_t, t, memory, src_mask, self_cond=None, src=None):
        assert self_cond is None, "the PF-ODE must run with the self-conditioning input zero"
        a, _, s = self.process.coefficients_like(t, x_t)
        return self.mu + a * self.tau**2 / (a**2 * self.tau**2 + s**2) * (x_t - a * self.mu)


def oracle(scale: float = 1.0, tau: float = 0.5) -> DiffuSeq:
    torch.manual_seed(0)
    m = DiffuSeq(V, D, dim=8, enc_depth=1, dec_depth=1, heads=1, max_src_len=4, max_trg_len=LT, num_steps=T)
    emb = EMB * scale
    m.network = GaussianOracle(m.process, emb[TARGET], tau * scale, emb)
    return m


def batch_of(w: torch.Tensor) -> dict[str, torch.Tensor]:
    src = torch.ones(w.shape[0], 4, dtype=torch.long)
    return {"x0": w, "src": src, "src_mask": torch.ones_like(src)}


def model_marginal(m: DiffuSeq) -> tuple[torch.Tensor, float]:
    """Mean (LT, D) and variance of the oracle's PF-ODE marginal at ``t_1 = 1 / T``."""
    a1, _, s1 = (float(c) for c in m.process.coefficients(torch.tensor([1.0 / T])))
    net = m.network
    return a1 * net.mu, a1**2 * net.tau**2 + s1**2


def exact_log_prob(m: DiffuSeq) -> dict[tuple[int, ...], float]:
    """``log P(w)`` of every sequence, by Gauss-Hermite quadrature of each position's 2-D integral."""
    mean, var = model_marginal(m)
    z, wq = np.polynomial.hermite_e.hermegauss(60)
    zz = np.stack(np.meshgrid(z, z, indexing="ij"), -1).reshape(-1, 2)
    ww = np.outer(wq, wq).reshape(-1) / (2 * math.pi)
    e = m.network.embedding.weight.detach().double().numpy()
    per_pos = []
    for i in range(LT):
        x = mean[i].double().numpy() + math.sqrt(var) * zz
        logits = x @ e.T
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        per_pos.append(ww @ p)  # P(w_i = v), (V,)
    seqs = [(a, b) for a in range(V) for b in range(V)]
    return {s: float(sum(math.log(per_pos[i][s[i]]) for i in range(LT))) for s in seqs}


def test_the_terms_add_up_against_closed_forms():
    """density = the closed-form Gaussian NLL (and core's PF-ODE on a fine uniform grid); rounding =
    the head's log-softmax; dequantisation = log N(x; E(w), s_1^2 I); total = their sum."""
    m = oracle()
    w = TARGET.repeat(4, 1)
    terms = m.token_nll_bound(batch_of(w), steps=16, divergence="exact", generator=torch.Generator().manual_seed(3))
    eps = torch.randn((4, LT, D), generator=torch.Generator().manual_seed(3))
    _, _, s1 = m.process.coefficients(torch.tensor([1.0 / T]))
    x = EMB[w] + float(s1) * eps
    mean, var = model_marginal(m)
    closed = -torch.distributions.Normal(mean, math.sqrt(var)).log_prob(x).sum((1, 2))
    assert torch.allclose(terms.density, closed, atol=0.05 * LT), (terms.density, closed)
    core = -m.log_likelihood({**batch_of(w), "x0": x, "clamp": False, "self_condition": False}, steps=256,
                             divergence="exact", t_start=1.0 / T)  # fmt: skip
    assert torch.allclose(core, closed, atol=0.1 * LT), (core, closed)
    rounding = -torch.log_softmax(x @ EMB.t(), -1).gather(-1, w[..., None]).sum((1, 2))
    assert torch.allclose(terms.rounding, rounding, atol=1e-5)
    log_q = torch.distributions.Normal(EMB[w], float(s1)).log_prob(x).sum((1, 2))
    assert torch.allclose(terms.dequantisation, log_q, atol=1e-4)
    assert torch.allclose(terms.total, terms.density + terms.rounding + terms.dequantisation)
    # the oracle's velocity has Jacobian c(t) I, so one Rademacher probe is already the exact trace
    hutch = m.token_nll_bound(batch_of(w), steps=16, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(hutch.density, terms.density, atol=1e-4)


@pytest.mark.parametrize("tau", [0.25, 1.0])
def test_the_ode_grid_is_accurate_where_a_uniform_one_is_not(tau):
    """16 RK4 steps on :func:`ode_grid` (whole steps, dense at both ends) against the closed form, and
    against 16 uniform steps (which cross the chain's steep first and last steps in one RK4 step)."""
    m = oracle(tau=tau)
    mean, var = model_marginal(m)
    x = (mean + math.sqrt(var) * torch.randn((6, LT, D), generator=torch.Generator().manual_seed(0))).contiguous()
    closed = torch.distributions.Normal(mean, math.sqrt(var)).log_prob(x).sum((1, 2))
    b = {**batch_of(TARGET.repeat(6, 1)), "x0": x, "clamp": False, "self_condition": False}
    ours = pf_ode_log_density(m, b, ode_grid(T, 16), divergence="exact")
    uniform = pf_ode_log_density(m, b, torch.linspace(1.0 / T, 1.0, 17, dtype=torch.float64), divergence="exact")
    err, err_uniform = float((ours - closed).abs().max()), float((uniform - closed).abs().max())
    assert err < 0.025 * LT * D and err_uniform > 4 * err, (err, err_uniform)


@pytest.mark.parametrize("scale", [1.0, 0.1])
def test_the_bound_is_above_the_exact_nll_of_every_sequence(scale):
    """Bound >= -log P(w) for all 9 sequences (quadrature), and tight for the sequence the model
    favours; also with the embeddings (and the oracle's data) shrunk 10x below the noise level."""
    m = oracle(scale)
    exact = exact_log_prob(m)
    assert abs(sum(math.exp(v) for v in exact.values()) - 1) < 1e-6
    seqs = torch.tensor(list(exact))
    draws = 48
    w = seqs.repeat_interleave(draws, 0)
    terms = m.token_nll_bound(batch_of(w), steps=16, divergence="exact", generator=torch.Generator().manual_seed(0))
    total = terms.total.view(len(seqs), draws)
    mean, se = total.mean(1), total.std(1) / math.sqrt(draws)
    for k, s in enumerate(exact):
        nll = -exact[s]
        assert float(mean[k]) > nll - 3 * float(se[k]) - 0.05 * LT, (s, float(mean[k]), nll)
    best = max(exact, key=exact.__getitem__)  # the sequence q(x | w) fits best: a tight bound
    assert float(mean.min()) == float(mean[list(exact).index(best)]) < -exact[best] + 1.0 * LT
    assert float(mean.min()) > 0


def test_the_bound_is_invariant_to_a_change_of_scale_of_the_embedding_space():
    """Rescaling the embedding space by c for the whole model (density, q, rounding head) leaves every
    draw of the bound unchanged, while the density term alone moves by D_total log c."""
    m = oracle()
    w = TARGET.repeat(3, 1)
    emb = EMB[w]
    _, _, s1 = m.process.coefficients(torch.tensor([1.0 / T]))
    grid = ode_grid(T, 16)

    def log_density(x):
        return pf_ode_log_density(m, {**batch_of(w), "x0": x, "self_condition": False}, grid, divergence="exact")

    def rounding(x):
        return torch.log_softmax(x @ EMB.t(), -1).gather(-1, w[..., None]).sum((1, 2))

    base = dequantised_bound(emb, float(s1), log_density, rounding, torch.Generator().manual_seed(5))
    dims = LT * D
    for c in (0.01, 7.0):
        scaled = dequantised_bound(
            c * emb,
            c * float(s1),
            lambda y, c=c: log_density(y / c) - dims * math.log(c),
            lambda y, c=c: rounding(y / c),
            torch.Generator().manual_seed(5),
        )
        assert torch.allclose(scaled.total, base.total, atol=1e-3), (c, scaled.total, base.total)
        assert torch.allclose(scaled.density - base.density, torch.full((3,), dims * math.log(c)), atol=1e-3)


def test_the_bound_falls_with_training_on_a_tiny_corpus():
    torch.manual_seed(0)
    m = DiffuSeq(vocab_size=16, emb_dim=4, dim=32, enc_depth=1, dec_depth=1, heads=2, max_src_len=6,
                 max_trg_len=6, num_steps=100, copy_attention=True)  # fmt: skip
    g = torch.Generator().manual_seed(0)
    src = torch.randint(4, 16, (8, 6), generator=g)
    b = {"x0": src.flip(1), "src": src, "src_mask": torch.ones_like(src)}

    def bound() -> float:
        terms = m.token_nll_bound(b, steps=8, generator=torch.Generator().manual_seed(1))
        return float(terms.total.mean()) / 6

    before = bound()
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    for step in range(60):
        opt.zero_grad()
        m.loss_terms(b, torch.Generator().manual_seed(step))["loss"].backward()
        opt.step()
    after = bound()
    assert math.isfinite(before) and after < before / 2, (before, after)  # measured: 31.5 -> 3.6 nats/token


# ---------------------------------------------------------------------------------------- command line
PAIRS = [
    ("and god said let there be light", "And God said, Let there be light:"),
    ("in the beginning", "In the beginning"),
    ("and there was light", "and there was light."),
]


@pytest.fixture(scope="module")
def diffuseq_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("diffuseq")
    args = ["fit", "--config", "smoke_diffuseq", f"--trainer.default_root_dir={tmp}"]
    args += ["--trainer.enable_progress_bar=false", "--trainer.max_steps=2", "--data.init_args.max_train_pairs=400"]
    assert main(args) == 0
    return tmp


def test_evaluate_reports_the_bound_of_a_diffuseq_checkpoint(diffuseq_run, tmp_path, capsys):
    from difflab.text.inference import load_text_model

    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"src": s, "trg": t}) + "\n" for s, t in PAIRS))
    argv = ["evaluate", "--ckpt", str(diffuseq_run), str(data), "--draws", "2", "--steps", "4"]
    assert main(argv) == 0
    out = capsys.readouterr()
    model = load_text_model(diffuseq_run)
    assert model.data_trg_len == 32  # the data's target length travels in the checkpoint
    tokens = sum(len(ids) + 1 for ids in model.tokenizer.encode_batch([t for _, t in PAIRS]))
    line = out.out.strip()
    assert line.startswith("DiffuSeq: perplexity <= ") and "NELBO bound" in line and "mean of 2 draws" in line
    assert line.endswith(f"{tokens} target tokens of {data} in 3 pairs (targets of 32)"), line
    assert "evaluate pairs.jsonl" in out.err  # progress
    nll = float(line.split("NELBO bound ")[1].split()[0])
    assert math.isfinite(nll) and nll > 0
    assert main(argv) == 0 and capsys.readouterr().out.strip() == line  # --seed fixes the draws


def test_evaluate_diffuseq_input_errors_are_one_line(diffuseq_run, tmp_path, capsys):
    plain = tmp_path / "plain.txt"
    plain.write_text("In the beginning God created the heaven and the earth.\n")
    err = user_error_line(main, capsys, ["evaluate", "--ckpt", str(diffuseq_run), str(plain)])
    assert "plain.txt: text documents" in err and '{"src": ..., "trg": ...}' in err
    texts = tmp_path / "texts.jsonl"
    texts.write_text(json.dumps({"text": "In the beginning"}) + "\n")
    err = user_error_line(main, capsys, ["evaluate", "--ckpt", str(diffuseq_run), str(texts)])
    assert "texts.jsonl: text documents" in err
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"src": "in the beginning", "trg": "In the beginning"}) + "\n")
    err = user_error_line(main, capsys, ["evaluate", "--ckpt", str(diffuseq_run), str(pairs), "--block_size", "40"])
    assert "--block_size 40" in err and "at most 32" in err
    long = tmp_path / "long.jsonl"
    long.write_text(json.dumps({"src": "and " * 80, "trg": "And"}) + "\n")
    err = user_error_line(main, capsys, ["evaluate", "--ckpt", str(diffuseq_run), str(long)])
    assert "long.jsonl:1: src is" in err and "--block_size sets the targets' length" in err
    assert "--data.init_args" not in err  # the verb's options, not training's
    half = tmp_path / "half.jsonl"
    half.write_text(json.dumps({"src": "in the beginning"}) + "\n")
    err = user_error_line(main, capsys, ["evaluate", "--ckpt", str(diffuseq_run), str(half)])
    assert "half.jsonl:1: missing key 'trg'" in err


def test_pairs_given_to_a_language_model_are_one_line(small_tokenizer, tmp_path, monkeypatch, capsys):
    import difflab.text.inference as inference
    from difflab.text.models import MaskedDiffusionLM

    lm = MaskedDiffusionLM(vocab_size=small_tokenizer.vocab_size, dim=32, depth=1, heads=2, max_len=16)
    lm.attach_tokenizer(small_tokenizer)
    monkeypatch.setattr(inference, "load_text_model", lambda *a, **k: lm)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"src": "in the beginning", "trg": "In the beginning"}) + "\n")
    err = user_error_line(main, capsys, ["evaluate", "--ckpt", "any.ckpt", str(pairs)])
    assert 'pairs.jsonl: source / target pairs {"src", "trg"}' in err and "MaskedDiffusionLM" in err
