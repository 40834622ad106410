"""``difflab-text demo``: masked diffusion against the AR baseline on the King James Bible, on CPU.

1. Train a byte-level BPE (1,024 tokens) on the KJV training verses and pack them into blocks.
2. Train the AR baseline (the gen-PPL scorer) and the masked diffusion LM of the same size briefly.
3. Report held-out perplexities: MDLM's ELBO bound, the AR's exact value and the unigram baseline.
4. Sample with the cached masked sampler at several step counts; score each set by generative
   perplexity under the AR model, distinct-2 and repetition, next to real held-out text,
   shuffled-token text and AR samples; plot quality against steps.
5. Train the DiffuSeq-style seq2seq model briefly on KJV case and punctuation restoration and
   report its test BLEU / ROUGE-L (one draw, and MBR over several draws) next to copying the
   source and to an unrelated verse.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import torch

from difflab.core.lightning.train import train_briefly
from difflab.core.progress import artifact
from difflab.core.tables import markdown_table
from difflab.core.verbs import VerbParser, seed_option

STEP_COUNTS = (4, 16, 64, 256)


def _fit(model, dm, steps: int, seed: int) -> float:
    return train_briefly(model, dm, max_steps=steps, seed=seed, gradient_clip_val=1.0)


def _quiet() -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)


def _train_pair(dm, block: int, vocab: int, mdlm_steps: int, ar_steps: int, seed: int, mdlm_lr: float):
    """The AR baseline and the masked diffusion LM of the same size, trained briefly."""
    from difflab.text.models import ARLanguageModel, MaskedDiffusionLM

    size = dict(vocab_size=vocab, max_len=block, dim=64, depth=2, heads=4)
    torch.manual_seed(seed)  # the networks' initialisation (train_briefly seeds only the training)
    ar = ARLanguageModel(**size, optimizer=partial(torch.optim.AdamW, lr=2e-3))
    mdlm = MaskedDiffusionLM(**size, optimizer=partial(torch.optim.AdamW, lr=mdlm_lr))
    t_ar = _fit(ar, dm, ar_steps, seed)
    t_md = _fit(mdlm, dm, mdlm_steps, seed)
    print(f"trained AR for {ar_steps} steps ({t_ar:.0f} s) and MDLM for {mdlm_steps} steps ({t_md:.0f} s)")
    return ar, mdlm


def _perplexities(dm, ar, mdlm, held, vocab: int, seed: int) -> tuple[float, float, float]:
    """Held-out ``(MDLM ELBO bound, AR exact, unigram)`` perplexities, printed as a table."""
    from difflab.text.metrics import perplexity_from_nll, unigram_perplexity

    tok = dm.tokenizer
    elbo_ppl = perplexity_from_nll(*mdlm.elbo_nll(held, n_times=8, generator=torch.Generator().manual_seed(seed)))
    ar_ppl = perplexity_from_nll(*ar.exact_nll(held))
    uni_ppl = unigram_perplexity(dm.train_set.blocks[:, 1:], held[:, 1:], vocab, exclude=(tok.pad_id, tok.mask_id))
    print("\nheld-out perplexity (KJV, BPE-1024, tokens 2..32 of each block)")
    rows = [["unigram", uni_ppl], ["MDLM (ELBO bound)", elbo_ppl], ["AR (exact)", ar_ppl]]
    print(markdown_table(rows, ["model", "PPL"], ".1f"))
    return elbo_ppl, ar_ppl, uni_ppl


def _score_row(scorer, name: str, x: torch.Tensor, steps: int | None, nfe: int, sec: float) -> dict:
    """Generative perplexity, distinct-2 and repetition of the token blocks ``x`` (B, L)."""
    from difflab.text.metrics import distinct_n, generative_perplexity, repetition_rate

    toks = x[:, 1:].tolist()
    gen_ppl = generative_perplexity(scorer, x)
    return dict(
        name=name, steps=steps, nfe=nfe, sec=sec, gen_ppl=gen_ppl, d2=distinct_n(toks, 2), rep=repetition_rate(toks, 4)
    )


def _sample_and_score(ar, mdlm, real, block: int, num_samples: int, seed: int):
    """MDLM samples at every :data:`STEP_COUNTS` and the reference sets (real, shuffled, AR samples),
    scored by the AR model: ``(rows, base, samples {steps: (B, L)}, references {name: (B, L)})``."""
    from difflab.text.metrics import shuffle_tokens

    scorer = ar.network.eval()
    g = torch.Generator().manual_seed(seed + 1)
    refs = {
        "real held-out text": real,
        "shuffled-token text": shuffle_tokens(real, torch.Generator().manual_seed(seed)),
    }
    t0 = time.time()
    refs["AR samples"] = ar.generate(num_samples, block, generator=g)
    ar_time = time.time() - t0
    rows, samples = [], {}
    for steps in STEP_COUNTS:
        t0 = time.time()
        r = mdlm.generate(num_samples, block, steps=steps, generator=g)
        dt = time.time() - t0
        samples[steps] = r.sample
        rows.append(_score_row(scorer, f"MDLM {steps} steps", r.sample, steps, r.nfe, dt))
    base = []
    for name, x in refs.items():
        is_ar = name == "AR samples"
        base.append(_score_row(scorer, name, x, None, block - 1 if is_ar else 0, ar_time if is_ar else 0.0))
    print(f"\nsamples ({num_samples} x {block} tokens), scored by the AR baseline")
    keys, head = (
        ("name", "nfe", "sec", "gen_ppl", "d2", "rep"),
        ["source", "NFE", "sec", "gen-PPL", "distinct-2", "rep-4"],
    )
    print(markdown_table([[r_[k] for k in keys] for r_ in rows + base], head, ["", "", ".2f", ".1f", ".3f", ".3f"]))
    return rows, base, samples, refs


def _write_samples(txt: Path, tok, samples: dict, refs: dict) -> None:
    """Print one decoded MDLM sample per step count; write eight of each set to ``txt``."""
    decode = lambda s: tok.decode(s).replace("\n", " / ")  # noqa: E731
    print()
    lines = []
    for steps in STEP_COUNTS:
        print(f"[MDLM {steps:>3} steps] {decode(samples[steps][0])}")
        lines.append(f"## MDLM, {steps} steps\n" + "\n\n".join(decode(s) for s in samples[steps][:8]))
    lines.append("## AR baseline\n" + "\n\n".join(decode(s) for s in refs["AR samples"][:8]))
    lines.append("## real held-out blocks\n" + "\n\n".join(decode(s) for s in refs["real held-out text"][:8]))
    txt.write_text("\n\n".join(lines) + "\n")


def run_demo(out: Path, mdlm_steps: int, ar_steps: int, num_samples: int, seed: int, mdlm_lr: float = 1e-3) -> dict:
    """Steps 1-4 of the module docstring; returns the perplexities and the scored sample sets."""
    from difflab.text.data.lm import LMDataModule
    from difflab.text.figures import plot_quality_vs_steps

    _quiet()
    out.mkdir(parents=True, exist_ok=True)
    block, vocab = 32, 1024
    dm = LMDataModule(corpus="kjv", vocab_size=vocab, block_size=block, batch_size=32, seed=seed)
    dm.setup()
    ar, mdlm = _train_pair(dm, block, vocab, mdlm_steps, ar_steps, seed, mdlm_lr)
    held = dm.val_set.blocks[:512]
    elbo_ppl, ar_ppl, uni_ppl = _perplexities(dm, ar, mdlm, held, vocab, seed)
    rows, base, samples, refs = _sample_and_score(ar, mdlm, held[:num_samples], block, num_samples, seed)
    txt = out / "samples.md"
    _write_samples(txt, dm.tokenizer, samples, refs)
    title = f"KJV, BPE-1024, {block}-token blocks; MDLM ELBO PPL {elbo_ppl:.0f}, AR PPL {ar_ppl:.0f}"
    png = plot_quality_vs_steps(out / "quality_vs_steps.png", rows, base, f"{title}, unigram {uni_ppl:.0f}")
    artifact(
        png,
        "generative perplexity and distinct-2 of MDLM samples against sampling steps, "
        "with real, shuffled and AR reference lines",
    )
    steps = ", ".join(map(str, STEP_COUNTS))
    artifact(txt, f"decoded MDLM samples at {steps} steps, AR samples and real verses")
    return dict(elbo_ppl=elbo_ppl, ar_ppl=ar_ppl, unigram_ppl=uni_ppl, rows=rows, base=base)


def brief_diffuseq(steps: int, vocab_size: int = 1024, max_len: int = 32, lr: float = 6e-3, seed: int = 0):
    """The CPU-sized DiffuSeq of the demo and the learning test, with its schedule for ``steps`` steps.

    0.4 M parameters (dim 64, 2 + 2 blocks, 16-d embeddings) with the copy path, initialised from
    ``seed``; AdamW with a one-cycle schedule: 4 % warm-up to ``lr``, then cosine annealing to zero
    at ``steps``.
    """
    from difflab.text.models import DiffuSeq

    torch.manual_seed(seed)
    return DiffuSeq(
        vocab_size=vocab_size,
        emb_dim=16,
        dim=64,
        max_src_len=max_len,
        max_trg_len=max_len,
        copy_attention=True,
        optimizer=partial(torch.optim.AdamW, lr=lr),
        lr_scheduler=partial(
            torch.optim.lr_scheduler.OneCycleLR,
            max_lr=lr,
            total_steps=steps,
            pct_start=0.04,
            cycle_momentum=False,
        ),
    )


def run_seq2seq(
    out: Path, steps: int, seed: int, num_test: int = 1000, draws: int = 20, sample_steps: int = 20
) -> dict:
    """Train DiffuSeq on KJV restoration for ``steps`` steps; BLEU against copying the source."""
    from difflab.text.data.seq2seq import Seq2SeqDataModule
    from difflab.text.figures import plot_bleu_vs_draws
    from difflab.text.metrics import corpus_bleu, mbr_select, rouge_l

    dm = Seq2SeqDataModule(
        vocab_size=1024, src_len=32, trg_len=32, batch_size=64, val_size=200, test_size=num_test, seed=seed
    )
    dm.setup()
    model = brief_diffuseq(steps, seed=seed)
    model.attach_tokenizer(dm.tokenizer)
    secs = _fit(model, dm, steps, seed)
    src, trg = dm.references("test")
    ts = dm.test_set
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    draws_texts = [model.translate_texts(ts.src, ts.src_mask, steps=sample_steps, generator=g) for _ in range(draws)]
    mbr_secs = time.perf_counter() - t0
    one, mbr = draws_texts[0], mbr_select(draws_texts)
    counts = sorted({k for k in (1, 2, 3, 5, 10, 20, draws) if k <= draws})
    by_k = [corpus_bleu(mbr_select(draws_texts[:k]), trg) for k in counts]
    rows = {
        f"DiffuSeq, one draw ({steps} training steps)": one,
        f"DiffuSeq, MBR over {draws} draws": mbr,
        "copying the source": src,
        "another verse (ignores the source)": trg[1:] + trg[:1],
    }
    print(
        f"\nseq2seq: KJV case and punctuation restoration, {len(trg)} test verses "
        f"(DiffuSeq trained {secs:.0f} s; {sample_steps} DDPM steps per draw; MBR {mbr_secs:.0f} s)"
    )
    scores = {name: (corpus_bleu(h, trg), rouge_l(h, trg)) for name, h in rows.items()}
    print(markdown_table([[k, *v] for k, v in scores.items()], ["system", "BLEU", "ROUGE-L"], ["", ".1f", ".3f"]))
    md = out / "seq2seq_samples.md"
    md.write_text(
        "# KJV case and punctuation restoration (DiffuSeq, MBR)\n\n"
        + "\n\n".join(f"- src: {s_}\n- hyp: {h}\n- trg: {t}" for s_, h, t in list(zip(src, mbr, trg))[:16])
        + "\n"
    )
    artifact(md, "DiffuSeq (MBR) restorations of 16 test verses next to their sources and references")
    png = plot_bleu_vs_draws(
        out / "seq2seq_bleu_vs_draws.png",
        dict(zip(counts, by_k, strict=True)),
        scores["copying the source"][0],
        scores["another verse (ignores the source)"][0],
        f"KJV case and punctuation restoration, {len(trg)} test verses, DiffuSeq {steps} training steps",
    )
    artifact(png, "test BLEU of DiffuSeq against the number of MBR draws, with the copy baseline")
    return {**scores, "bleu_by_draws": dict(zip(counts, by_k, strict=True))}


def main(argv: list[str] | None = None) -> int:
    p = VerbParser(prog="difflab-text demo", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("outputs/demo/text"), help="output folder")
    p.add_argument("--mdlm_steps", type=int, default=1200, help="training steps of masked diffusion (MDLM)")
    p.add_argument("--ar_steps", type=int, default=400, help="training steps of the autoregressive baseline")
    p.add_argument("--num_samples", type=int, default=32, help="samples per sampling-step count")
    seed_option(p, "the training and the sampling")
    p.add_argument("--mdlm_lr", type=float, default=1e-3, help="peak learning rate of MDLM")
    p.add_argument("--seq2seq_steps", type=int, default=1600, help="DiffuSeq training steps (0: skip seq2seq)")
    p.add_argument("--seq2seq_draws", type=int, default=20, help="DiffuSeq draws per source for MBR decoding")
    ns = p.parse_args(argv)
    run_demo(ns.out, ns.mdlm_steps, ns.ar_steps, ns.num_samples, ns.seed, ns.mdlm_lr)
    if ns.seq2seq_steps > 0:
        run_seq2seq(ns.out, ns.seq2seq_steps, ns.seed, draws=ns.seq2seq_draws)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
