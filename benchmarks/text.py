"""difflab-text benchmark: sampling speed and quality of masked diffusion, GIDD and AR, side by side.

Trains the three models of the same size briefly on the KJV (32-token blocks, BPE-1024), then for
each sampler draws the same number of blocks and reports tokens per second, NFE, generative
perplexity under the AR model and distinct-2, with the ratio of tokens/s to AR decoding.

    python benchmarks/text.py [--train_steps 800] [--num 32]
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import torch

from difflab.core.tables import markdown_table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train_steps", type=int, default=800, help="training steps of each diffusion model (AR: half)")
    p.add_argument("--num", type=int, default=32, help="blocks per sampler")
    p.add_argument("--seed", type=int, default=0)
    ns = p.parse_args()
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    import lightning as L

    from difflab.core.lightning.train import train_briefly
    from difflab.text.data.lm import LMDataModule
    from difflab.text.metrics import distinct_n, generative_perplexity
    from difflab.text.models import GIDDLM, ARLanguageModel, MaskedDiffusionLM

    block = 32
    dm = LMDataModule(corpus="kjv", vocab_size=1024, block_size=block, batch_size=32, seed=ns.seed)
    dm.setup()
    size = dict(vocab_size=1024, max_len=block, dim=64, depth=2, heads=4)
    models = {}
    for name, cls, steps, lr in (
        ("ar", ARLanguageModel, ns.train_steps // 2, 2e-3),
        ("mdlm", MaskedDiffusionLM, ns.train_steps, 1e-3),
        ("gidd", partial(GIDDLM, p_u=0.1), ns.train_steps, 1e-3),
    ):
        L.seed_everything(ns.seed, verbose=False)
        m = cls(**size, optimizer=partial(torch.optim.AdamW, lr=lr))
        train_briefly(m, dm, max_steps=steps, seed=ns.seed, gradient_clip_val=1.0)
        models[name] = m.eval()
    scorer = models["ar"].network

    def run(fn):
        g = torch.Generator().manual_seed(ns.seed + 1)
        t0 = time.perf_counter()
        x, nfe = fn(g)
        return x, nfe, time.perf_counter() - t0

    cases = [("AR decoding", lambda g: (models["ar"].generate(ns.num, block, generator=g), block - 1))]
    for steps in (16, 64, 256):
        for cache in (False, True):

            def f(g, steps=steps, cache=cache):
                r = models["mdlm"].generate(ns.num, block, steps=steps, cache=cache, generator=g)
                return r.sample, r.nfe

            cases.append((f"MDLM {steps} steps{' cached' if cache else ''}", f))
    for sc in (0, 32):

        def f(g, sc=sc):
            r = models["gidd"].generate(ns.num, block, steps=64, generator=g, self_correction_steps=sc)
            return r.sample, r.nfe

        cases.append((f"GIDD 64 steps{' + self-corr. ' + str(sc) if sc else ''}", f))

    rows = []
    for name, fn in cases:
        x, nfe, sec = run(fn)
        toks = ns.num * (block - 1)
        rows.append((name, nfe, sec, toks / sec, generative_perplexity(scorer, x), distinct_n(x[:, 1:].tolist(), 2)))
    ar_tps = rows[0][3]
    real = generative_perplexity(scorer, dm.val_set.blocks[: ns.num])
    params = sum(p.numel() for p in models["mdlm"].parameters()) / 1e6
    print(
        f"\n{ns.num} blocks x {block} tokens, KJV BPE-1024, models {params:.2f} M params, "
        f"{torch.get_num_threads()} threads; real held-out text gen-PPL {real:.1f}"
    )
    cells = [[name, nfe, sec, tps, f"{tps / ar_tps:.2f}x", gp, d2] for name, nfe, sec, tps, gp, d2 in rows]
    head = ["sampler", "NFE", "seconds", "tokens/s", "tokens/s vs AR", "gen-PPL", "distinct-2"]
    print(markdown_table(cells, head, ["", "", ".2f", ".0f", "", ".1f", ".3f"]))


if __name__ == "__main__":
    main()
