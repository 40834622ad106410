"""difflab-text benchmark: sampling speed and quality of masked diffusion, GIDD, DDPD and AR, side by side.

Trains the models of the same size briefly on the KJV (32-token blocks, BPE-1024), then for
each sampler draws the same number of blocks and reports tokens per second, NFE, generative
perplexity under the AR model, distinct-2 and the samples' token entropy, with the ratio of
tokens/s to AR decoding. Row groups (``--groups``): ``mdlm`` (ancestral sampling, with and without
caching), ``gidd`` (with and without self-correction), ``ddpd`` (DDPD against MDLM's ancestral
sampler at equal NFE: MDLM ancestral, MDLM's network in DDPD's order with its exact [MASK]
planner, and the DDPD model, uniform noise with a planner head, adaptive schedule).

    python benchmarks/text.py [--train_steps 800] [--num 32] [--groups mdlm gidd ddpd]

* ``--pretrained``: the shipped default MDLM against its AR baseline and the unigram model, as the
  recipe measured them (``difflab/text/pretrained/mdlm.ckpt``'s record; ``python scripts/pretrain.py
  text`` writes it);
* ``--field N``: ``difflab-text evaluate`` without ``--ckpt`` (the shipped MDLM) on a generated text
  file of ``N`` lines (KJV verses, cycled) in a temporary folder: wall time and peak RSS of the whole
  command (one torch thread, in a fresh process): every block of a tenth of the file (one draw), and
  2000 evenly spaced blocks of all of it (``--max_blocks 2000``; MDLM with the default 8 draws, and AR).
  The file is streamed either way, so the peak memory does not grow with the file.
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import torch

from difflab.core.tables import markdown_header, markdown_row, markdown_table


def pretrained_part() -> None:
    from difflab.core.lightning.pretrained import pretrained_info, shipped_path
    from difflab.text.pretrain import format_evaluation

    path = shipped_path("text", "mdlm")
    info = pretrained_info(path)
    print(
        f"PRETRAINED: {path.name} ({path.stat().st_size / 2**20:.2f} MiB), {info['steps']} steps, "
        f"{info.get('cpu_minutes')} CPU min ({info['wall_minutes']} min wall), sampling {info['sampling']}"
    )
    print(format_evaluation(info["evaluation"]))


def field_part(lines: int, mdlm: str = "mdlm", ar: str = "ar") -> None:
    import os
    import re
    import subprocess
    import sys
    import tempfile

    from difflab.text.data.corpora import corpus_documents

    verses = corpus_documents("kjv")

    def run(path: str, *extra: str) -> tuple[float, float, str]:
        code = (
            "import resource, sys, time, torch; torch.set_num_threads(1); "
            "from difflab.text.cli import main; t = time.perf_counter(); "
            f"rc = main(['evaluate', {path!r}, *{list(extra)!r}]); "
            "print('RESULT', time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        line = [x for x in out.splitlines() if x.startswith("RESULT")][-1].split()
        found = re.search(r"(\d+) tokens of \S+ in (.*)$", [x for x in out.splitlines() if "perplexity" in x][-1])
        score = f"{found.group(1)} tokens in {found.group(2)}" if found else "?"
        return float(line[1]), float(line[2]), score

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for n in (max(lines // 10, 1), lines):
            path = os.path.join(folder, f"field{n}.txt")
            with open(path, "w", encoding="utf-8") as fh:
                fh.writelines(verses[i % len(verses)] + "\n" for i in range(n))
            size = os.path.getsize(path) / 2**20
            if n < lines:
                rows.append((n, size, "mdlm, every block, --draws 1", *run(path, "--ckpt", mdlm, "--draws", "1")))
                continue
            rows.append((n, size, "mdlm, --max_blocks 2000", *run(path, "--ckpt", mdlm, "--max_blocks", "2000")))
            rows.append((n, size, "ar, --max_blocks 2000", *run(path, "--ckpt", ar, "--max_blocks", "2000")))
    print("FIELD: evaluate on a generated file of KJV verses; one torch thread, fresh process each")
    print(markdown_header(["lines", "MiB", "model, options", "wall s", "peak RSS MiB", "result"], "rrlrrl"))
    for row in rows:
        print(markdown_row(row, ["", ".1f", "", ".1f", ".0f", ""]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pretrained", action="store_true", help="the shipped default against AR and unigram")
    p.add_argument("--field", type=int, default=None, help="evaluate a generated N-line file with the default")
    p.add_argument("--mdlm", default="mdlm", help="--field: the MDLM checkpoint (default: the shipped one)")
    p.add_argument("--ar", default="ar", help="--field: the AR checkpoint (default: the shipped one)")
    p.add_argument("--train_steps", type=int, default=800, help="training steps of each diffusion model (AR: half)")
    p.add_argument("--num", type=int, default=32, help="blocks per sampler")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--groups", nargs="+", choices=("mdlm", "gidd", "ddpd"), default=["mdlm", "gidd", "ddpd"])
    p.add_argument("--hyper", action="store_true", help="hyperschedules against MDLM and AR at equal training")
    p.add_argument("--neodiff", action="store_true", help="NeoDiff against DiffuSeq at equal seq2seq training")
    p.add_argument("--s2s_steps", type=int, default=1200, help="--neodiff: training steps of each seq2seq model")
    ns = p.parse_args()
    if ns.pretrained:
        pretrained_part()
    if ns.field:
        field_part(ns.field, ns.mdlm, ns.ar)
    if ns.hyper:
        hyperschedule_part(ns)
    if ns.neodiff:
        neodiff_part(ns)
    if not (ns.pretrained or ns.field or ns.hyper or ns.neodiff):
        sampler_part(ns)


def train_language_models(ns, dm, block: int) -> dict:
    """AR (half the steps) and MDLM, and GIDD / DDPD when their groups are asked for, trained briefly
    with the same size and seed (eval mode), by name."""
    import lightning as L

    from difflab.core.lightning.train import train_briefly
    from difflab.text.models import DDPDLM, GIDDLM, ARLanguageModel, MaskedDiffusionLM

    size = dict(vocab_size=1024, max_len=block, dim=64, depth=2, heads=4)
    models = {}
    wanted = {"ar", "mdlm"} | ({"gidd"} & set(ns.groups)) | ({"ddpd"} & set(ns.groups))
    for name, cls, steps, lr in (
        ("ar", ARLanguageModel, ns.train_steps // 2, 2e-3),
        ("mdlm", MaskedDiffusionLM, ns.train_steps, 1e-3),
        ("gidd", partial(GIDDLM, p_u=0.1), ns.train_steps, 1e-3),
        ("ddpd", DDPDLM, ns.train_steps, 1e-3),
    ):
        if name not in wanted:
            continue
        L.seed_everything(ns.seed, verbose=False)
        m = cls(**size, optimizer=partial(torch.optim.AdamW, lr=lr))
        train_briefly(m, dm, max_steps=steps, seed=ns.seed, gradient_clip_val=1.0)
        models[name] = m.eval()
    return models


def sampler_part(ns) -> None:
    """The sampler table of the module docstring: brief training, then every sampler side by side."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    from difflab.text.data.lm import LMDataModule
    from difflab.text.metrics import distinct_n, generative_perplexity, sample_entropy

    block = 32
    dm = LMDataModule(corpus="kjv", vocab_size=1024, block_size=block, batch_size=32, seed=ns.seed)
    dm.setup()
    models = train_language_models(ns, dm, block)
    scorer = models["ar"].network

    def run(fn):
        g = torch.Generator().manual_seed(ns.seed + 1)
        t0 = time.perf_counter()
        x, nfe = fn(g)
        return x, nfe, time.perf_counter() - t0

    cases = [("AR decoding", lambda g: (models["ar"].generate(ns.num, block, generator=g), block - 1))]
    if "mdlm" in ns.groups:
        cases += mdlm_cases(models["mdlm"], ns.num, block)
    if "gidd" in ns.groups:
        cases += gidd_cases(models["gidd"], ns.num, block)
    if "ddpd" in ns.groups:
        cases += ddpd_cases(models["mdlm"], models["ddpd"], ns.num, block)

    rows = []
    for name, fn in cases:
        x, nfe, sec = run(fn)
        toks = ns.num * (block - 1)
        seqs = x[:, 1:].tolist()
        rows.append(
            (name, nfe, sec, toks / sec, generative_perplexity(scorer, x), distinct_n(seqs, 2), sample_entropy(seqs))
        )
    ar_tps = rows[0][3]
    real = generative_perplexity(scorer, dm.val_set.blocks[: ns.num])
    params = sum(p.numel() for p in models["mdlm"].parameters()) / 1e6
    print(
        f"\n{ns.num} blocks x {block} tokens, KJV BPE-1024, models {params:.2f} M params, "
        f"{torch.get_num_threads()} threads; real held-out text gen-PPL {real:.1f}"
    )
    real_seqs = dm.val_set.blocks[: ns.num, 1:].tolist()
    print(f"real held-out text: distinct-2 {distinct_n(real_seqs, 2):.3f}, entropy {sample_entropy(real_seqs):.2f}")
    cells = [[name, nfe, sec, tps, f"{tps / ar_tps:.2f}x", gp, d2, h] for name, nfe, sec, tps, gp, d2, h in rows]
    head = ["sampler", "NFE", "seconds", "tokens/s", "tokens/s vs AR", "gen-PPL", "distinct-2", "entropy"]
    print(markdown_table(cells, head, ["", "", ".2f", ".0f", "", ".1f", ".3f", ".2f"]))


def hyperschedule_part(ns) -> None:
    """``--hyper``: AR, MDLM and hyperschedule models (8- and 32-token windows; absorbing, and epsilon-hybrid
    noise eps 0.01 sampled with and without ACS) of the same size trained the same ``--train_steps``;
    held-out bound (AR: exact NLL) on 256 blocks (8 draws) and 64-step samples' gen-PPL under the AR
    model, distinct-2 and entropy."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    import lightning as L

    from difflab.core.lightning.train import train_briefly
    from difflab.text.data.lm import LMDataModule
    from difflab.text.metrics import distinct_n, generative_perplexity, perplexity_from_nll, sample_entropy
    from difflab.text.models import ARLanguageModel, HyperscheduleLM, MaskedDiffusionLM

    dm = LMDataModule(corpus="kjv", vocab_size=1024, block_size=32, batch_size=32, seed=ns.seed)
    dm.setup()
    size = dict(vocab_size=1024, max_len=32, dim=64, depth=2, heads=4)
    held = dm.val_set.blocks[:256]
    runs = {
        "AR": (ARLanguageModel, 2e-3),
        "MDLM": (MaskedDiffusionLM, 1e-3),
        "hyperschedule w=8": (partial(HyperscheduleLM, window=8.0), 1e-3),
        "hyperschedule w=32": (partial(HyperscheduleLM, window=32.0), 1e-3),
        "hyperschedule w=32, eps-hybrid 0.01": (partial(HyperscheduleLM, window=32.0, epsilon=0.01), 1e-3),
    }
    models, rows = {}, []
    for name, (cls, lr) in runs.items():
        L.seed_everything(ns.seed, verbose=False)
        m = cls(**size, optimizer=partial(torch.optim.AdamW, lr=lr))
        secs = train_briefly(m, dm, max_steps=ns.train_steps, seed=ns.seed, gradient_clip_val=1.0)
        models[name] = m.eval()
        g = torch.Generator().manual_seed(ns.seed)
        nll = m.exact_nll(held) if name == "AR" else m.elbo_nll(held, n_times=8, generator=g)
        rows.append([name, secs, perplexity_from_nll(*nll)])
    scorer = models["AR"].network
    hybrid = rows[-1]
    cases = [(row, {}) for row in rows] + [([hybrid[0] + ", no ACS", *hybrid[1:]], {"correction": 0.0})]
    out = []
    for row, opts in cases:
        g = torch.Generator().manual_seed(ns.seed + 1)
        m = models[row[0].removesuffix(", no ACS")]
        if isinstance(m, ARLanguageModel):
            x = m.generate(ns.num, 32, generator=g)
        else:
            x = m.generate(ns.num, 32, steps=64, generator=g, **opts).sample
        seqs = x[:, 1:].tolist()
        gen = generative_perplexity(scorer, x)
        out.append([*row, row[2] / rows[1][2], gen, distinct_n(seqs, 2), sample_entropy(seqs)])
    print(f"\n{ns.train_steps} steps each, {ns.num} samples x 32 tokens (64 steps; AR: its own decoding), KJV BPE-1024")
    head = ["model", "train s", "held-out PPL (bound)", "vs MDLM", "gen-PPL", "distinct-2", "entropy"]
    print(markdown_table(out, head, ["", ".0f", ".2f", ".3f", ".1f", ".3f", ".2f"]))


def mdlm_cases(mdlm, num: int, block: int) -> list:
    """MDLM's ancestral sampler at 16, 64 and 256 steps, with and without caching."""
    cases = []
    for steps in (16, 64, 256):
        for cache in (False, True):

            def f(g, steps=steps, cache=cache):
                r = mdlm.generate(num, block, steps=steps, cache=cache, generator=g)
                return r.sample, r.nfe

            cases.append((f"MDLM {steps} steps{' cached' if cache else ''}", f))
    return cases


def gidd_cases(gidd, num: int, block: int) -> list:
    """GIDD's sampler at 64 steps, with and without 32 self-correction steps."""
    cases = []
    for sc in (0, 32):

        def f(g, sc=sc):
            r = gidd.generate(num, block, steps=64, generator=g, self_correction_steps=sc)
            return r.sample, r.nfe

        cases.append((f"GIDD 64 steps{' + self-corr. ' + str(sc) if sc else ''}", f))
    return cases


def ddpd_cases(mdlm, ddpd, num: int, block: int) -> list:
    """At 16 and 64 NFE: MDLM ancestral (no cache), MDLM in DDPD's order (exact [MASK] planner), DDPD."""
    cases = []
    for steps in (16, 64):

        def ancestral(g, steps=steps):
            r = mdlm.generate(num, block, steps=steps, cache=False, generator=g)
            return r.sample, r.nfe

        def planned_mdlm(g, steps=steps):
            x, keep = mdlm.start_tokens(num, block, None, None, None)
            r = mdlm.run_discrete(x, keep, steps, g, None, sampler="ddpd")
            return r.sample, r.nfe

        def planned(g, steps=steps):
            r = ddpd.generate(num, block, steps=steps, generator=g)
            return r.sample, r.nfe

        cases += [
            (f"MDLM {steps} steps, ancestral", ancestral),
            (f"MDLM {steps} steps, DDPD order (exact planner)", planned_mdlm),
            (f"DDPD {steps} steps (uniform noise, planner head)", planned),
        ]
    return cases


def neodiff_part(ns) -> None:
    """``--neodiff``: DiffuSeq and NeoDiff (K = 100) of the learning test's size (dim 64, 2 + 2 blocks,
    16-d embeddings, copy path) trained the same ``--s2s_steps`` (one-cycle lr 6e-3, batch 64) on KJV
    case and punctuation restoration; one draw of 20 steps per test verse: BLEU, ROUGE-L, sampling
    time; the held-out denoising loss (squared error + prior + rounding terms, mean of 4 noise draws)
    under the shared-time process (comparable between the two) and under NeoDiff's Poisson process;
    the time predictor's error against the token-blind predictor; NeoDiff's schedule power tuned on
    the validation verses."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    from difflab.core.lightning.train import train_briefly
    from difflab.text.data.seq2seq import Seq2SeqDataModule
    from difflab.text.metrics import corpus_bleu, rouge_l
    from difflab.text.models import DiffuSeq, NeoDiff

    dm = Seq2SeqDataModule(vocab_size=1024, src_len=32, trg_len=32, batch_size=64, val_size=200, test_size=1000)
    dm.setup()
    lr, steps = 6e-3, ns.s2s_steps
    models, secs = {}, {}
    for name, cls in (("DiffuSeq", DiffuSeq), ("NeoDiff", NeoDiff)):
        torch.manual_seed(ns.seed)
        sched = partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=lr, total_steps=steps, pct_start=0.04)
        size = dict(vocab_size=1024, emb_dim=16, dim=64, max_src_len=32, max_trg_len=32, copy_attention=True)
        m = cls(**size, optimizer=partial(torch.optim.AdamW, lr=lr), lr_scheduler=partial(sched, cycle_momentum=False))
        m.attach_tokenizer(dm.tokenizer)
        secs[name] = train_briefly(m, dm, max_steps=steps, seed=ns.seed, gradient_clip_val=1.0)
        models[name] = m.eval()
    diffuseq, neo = models["DiffuSeq"], models["NeoDiff"]
    src, trg = dm.references("test")
    ts, vs = dm.test_set, dm.val_set
    held = {"x0": ts.trg, "src": ts.src, "src_mask": ts.src_mask}
    shared_loss = {name: _held_out_loss(m, held, ns.seed, shared=True) for name, m in models.items()}
    neo_loss = _held_out_loss(neo, held, ns.seed, shared=False)
    tuned = neo.tune_schedule(vs.src, vs.src_mask, dm.references("val")[1], steps=20, seed=ns.seed)
    cases = [
        ("DiffuSeq, DDPM", diffuseq, {"sampler": "ddpm"}),
        ("NeoDiff's network, shared time (DDPM)", neo, {"sampler": "ddpm"}),
        ("NeoDiff, time predictor, rho 1", neo, {"schedule_power": 1.0}),
        (f"NeoDiff, time predictor, tuned rho {neo.schedule_power:g}", neo, {}),
    ]
    rows = [["copying the source", "", corpus_bleu(src, trg), rouge_l(src, trg), "", "", ""]]
    for name, m, opts in cases:
        t0 = time.perf_counter()
        hyps = m.translate_texts(
            ts.src, ts.src_mask, steps=20, generator=torch.Generator().manual_seed(ns.seed), **opts
        )
        own = neo_loss["loss"] if name.startswith("NeoDiff,") else ""
        model = "NeoDiff" if m is neo else "DiffuSeq"
        cells = [corpus_bleu(hyps, trg), rouge_l(hyps, trg), time.perf_counter() - t0]
        rows.append([name, secs[model], *cells, shared_loss[model]["loss"], own])
    print(f"\n{steps} training steps each, {len(trg)} test verses, one draw of 20 steps; tuned rho (val BLEU): {tuned}")
    head = ["model / sampler", "train s", "BLEU", "ROUGE-L", "sample s", "loss (shared time)", "loss (Poisson time)"]
    print(markdown_table(rows, head, ["", ".0f", ".2f", ".4f", ".1f", ".4f", ".4f"]))
    print(
        f"time predictor on the test pairs: MAE {neo_loss['time_mae']:.4f} in tau, token-blind "
        f"{neo_loss['time_blind_mae']:.4f} (ratio {neo_loss['time_mae'] / neo_loss['time_blind_mae']:.3f})"
    )


def _held_out_loss(model, held: dict, seed: int, shared: bool, draws: int = 4) -> dict[str, float]:
    """Mean over ``draws`` noise draws of DiffuSeq's loss terms (``mse + t_T + rounding`` as ``loss``) on
    ``held``; NeoDiff under its Poisson process, or with every token at the shared time (``shared``)."""
    mode = getattr(model, "time_mode", None)
    if mode is not None:
        model.time_mode = "shared" if shared else "poisson"
    sums: dict[str, float] = {}
    with torch.no_grad():
        for d in range(draws):
            terms = model.loss_terms(held, torch.Generator().manual_seed(seed + d))
            terms = {**terms, "loss": terms["mse"] + terms["t_T"] + terms["rounding"]}
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v) / draws
    if mode is not None:
        model.time_mode = mode
    return sums


if __name__ == "__main__":
    main()
