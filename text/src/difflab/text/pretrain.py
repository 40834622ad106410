r"""The shipped default language models: ``python scripts/pretrain.py text`` trains them and writes
``difflab/text/pretrained/mdlm.ckpt`` (which ``generate`` and ``evaluate`` use when they get no
``--ckpt``) and ``difflab/text/pretrained/ar.ckpt`` (the autoregressive baseline of the same size,
by name: ``--ckpt ar``).

Recipe (:data:`RECIPE`; seeded, CPU, one torch thread):

* **data**: the offline King James Bible (``corpus: kjv``, 31,102 verses), the seeded 95 / 5 split of
  :class:`~difflab.text.data.LMDataModule`; a byte-level BPE of 1024 tokens trained on the training
  verses (stored in both checkpoints); blocks of 64 tokens (``[BOS]`` + 62 + ``[EOS]``, verses joined
  with ``[EOS]``), batch 64. The held-out 5 % is cut in two: the first :data:`VALIDATION_DOCS`
  verses choose the sampler's step count, the rest is the test split;
* **models**: :class:`~difflab.text.models.MaskedDiffusionLM` (MDLM: log-linear schedule, no time
  conditioning, cached ancestral sampler) and :class:`~difflab.text.models.ARLanguageModel`, the
  same transformer (width :data:`RECIPE` ``dim``, ``depth`` blocks, ``heads`` heads, learned positions);
* **training**: AdamW (``lr``, ``weight_decay``), linear warm-up then a cosine decay to 5 % over the
  budget (:class:`TimeCosine`), gradient clipping 1, EMA of the weights; MDLM for ``mdlm_minutes``
  and AR for ``ar_minutes`` of CPU time (:class:`CpuBudget`; one torch thread, so minutes of one
  core), each stopped earlier if it runs :data:`WALL_FACTOR` times as long in wall time (a shared
  machine); AR learns faster per step;
* **evaluation** (:func:`finish`): on the KJV test verses and on two corpora the models never
  saw (gensim's Wikipedia excerpt and ABC news, scored with the KJV tokenizer; :data:`UNSEEN_BLOCKS`
  evenly spaced blocks of each), the MDLM NELBO bound
  per token (mean of :data:`BOUND_DRAWS` stratified draws, standard error) and ``exp`` of it, the AR
  model's exact perplexity and the add-one unigram model's (counts of the training blocks); then
  samples: generative perplexity under the AR model and distinct-n of :data:`NUM_SAMPLES` samples of
  64 tokens of MDLM (its recommended steps), AR (ancestral) and the unigram model, and of real test
  blocks for reference. MDLM's step count is chosen on the validation verses (:func:`choose_steps`).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from difflab.core.tables import markdown_header, markdown_row

MDLM_NAME, AR_NAME = "mdlm", "ar"
"""File names (without ``.ckpt``) of the shipped models."""

RECIPE: dict[str, Any] = {
    "corpus": "kjv",
    "vocab_size": 1024,
    "block_size": 64,
    "batch_size": 64,
    "dim": 128,
    "depth": 4,
    "heads": 4,
    "lr": 2e-3,
    "weight_decay": 0.01,
    "warmup": 300,
    "ema_decay": 0.999,
    "mdlm_minutes": 45.0,
    "ar_minutes": 15.0,
}
"""The training recipe of the shipped models (module docstring)."""

SECONDS_PER_STEP = {"mdlm": 0.4, "ar": 0.35}
"""About the fastest seconds per step measured for each model at :data:`RECIPE` on one free core: the
step cap is ``minutes * 60 / seconds``, so the time budget ends training (the cap only bounds the
progress line's estimate of the time left)."""
VALIDATION_DOCS = 400
"""Held-out verses that choose the sampler's steps; the other held-out verses are the test split."""
BOUND_DRAWS = 8
UNSEEN_BLOCKS = 256
"""Evenly spaced blocks scored of each unseen corpus (the Wikipedia excerpt alone is 22,000 blocks in the
KJV tokenizer); the KJV test split is scored whole."""
NUM_SAMPLES = 64
VALIDATION_SAMPLES = 32
"""Samples per step count when the steps are chosen (:func:`choose_steps`)."""
STEP_CANDIDATES = (16, 32, 64, 128)
"""Sampler steps compared on validation (about one network call per step: the cache is batch-wide)."""
UNSEEN = ("wiki", "news")
WALL_FACTOR = 1.4
"""Training stops at ``WALL_FACTOR`` times the CPU budget of wall time even if the budget is not spent."""


def warmup_cosine(step: int, warmup: int, fraction: float, floor: float = 0.05) -> float:
    """Learning-rate factor: ``(step + 1) / warmup`` during the first ``warmup`` steps, then
    ``floor + (1 - floor) (1 + cos(pi f)) / 2`` with ``f`` = ``fraction`` of the budget spent (in [0, 1])."""
    if step < warmup:
        return (step + 1) / warmup
    f = min(max(fraction, 0.0), 1.0)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * f))


class TimeCosine:
    """``LambdaLR`` factor of :func:`warmup_cosine` whose decay follows the spent share of the budget,
    ``max(CPU time / cpu_seconds, wall time / wall_seconds)`` from the first call (the scheduler's
    construction at the start of ``fit``): the learning rate reaches its floor when the first of the two
    limits ends training, however many steps a shared machine allows (the step count is not known in
    advance)."""

    def __init__(self, warmup: int, cpu_seconds: float, wall_seconds: float, floor: float = 0.05) -> None:
        self.warmup, self.cpu_seconds, self.wall_seconds, self.floor = warmup, cpu_seconds, wall_seconds, floor
        self.start: tuple[float, float] | None = None

    def __call__(self, step: int) -> float:
        now = (time.process_time(), time.perf_counter())
        self.start = now if self.start is None else self.start
        spent = max((now[0] - self.start[0]) / self.cpu_seconds, (now[1] - self.start[1]) / self.wall_seconds)
        return warmup_cosine(step, self.warmup, spent, self.floor)


class CpuBudget(pl.Callback):
    """Stops ``fit`` once the process has used ``seconds`` of CPU time since training started (with one
    torch thread: minutes of one core, the budget's unit whatever else runs on the machine)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = time.process_time()

    def on_train_start(self, trainer, pl_module) -> None:
        self.start = time.process_time()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if time.process_time() - self.start >= self.seconds:
            trainer.should_stop = True


def build_data(seed: int = 0, recipe: dict[str, Any] = RECIPE):
    """The KJV :class:`~difflab.text.data.LMDataModule` of the recipe (set up: tokenizer trained)."""
    from difflab.text.data.lm import LMDataModule

    dm = LMDataModule(
        corpus=recipe["corpus"],
        vocab_size=recipe["vocab_size"],
        block_size=recipe["block_size"],
        batch_size=recipe["batch_size"],
        seed=seed,
    )
    dm.setup("fit")
    return dm


def build_model(
    kind: str, vocab_size: int, seconds: float, wall_seconds: float, seed: int = 0, recipe: dict[str, Any] = RECIPE
):
    """An untrained ``mdlm`` or ``ar`` model of the recipe, its learning rate decaying over ``seconds`` of
    CPU time or ``wall_seconds``, whichever ends first (:class:`TimeCosine`)."""
    from difflab.text.models import ARLanguageModel, MaskedDiffusionLM

    torch.manual_seed(seed)
    lr, wd, warm = recipe["lr"], recipe["weight_decay"], recipe["warmup"]
    kw = dict(
        vocab_size=vocab_size,
        max_len=recipe["block_size"],
        dim=recipe["dim"],
        depth=recipe["depth"],
        heads=recipe["heads"],
        optimizer=lambda p: torch.optim.AdamW(p, lr=lr, weight_decay=wd, betas=(0.9, 0.98)),
        lr_scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, TimeCosine(warm, seconds, wall_seconds)),
    )
    if kind == "mdlm":
        return MaskedDiffusionLM(**kw, sample_steps=128)
    if kind == "ar":
        return ARLanguageModel(**kw)
    raise ValueError(f"kind must be 'mdlm' or 'ar', got {kind!r}")


def train_model(
    kind: str,
    full: Path,
    *,
    seed: int = 0,
    minutes: float | None = None,
    wall_minutes: float | None = None,
    dm=None,
):
    """Train the recipe's ``kind`` model for ``minutes`` of CPU time (default the recipe's) or
    ``wall_minutes`` of wall time (default :data:`WALL_FACTOR` times ``minutes``), whichever ends first,
    and write its full checkpoint to ``full``; returns ``(model, wall seconds, CPU seconds)``."""
    from difflab.core.lightning.train import train_briefly

    torch.set_num_threads(1)
    minutes = RECIPE[f"{kind}_minutes"] if minutes is None else minutes
    dm = build_data(seed) if dm is None else dm
    wall_minutes = minutes * WALL_FACTOR if wall_minutes is None else wall_minutes
    model = build_model(kind, dm.tokenizer.vocab_size, minutes * 60, wall_minutes * 60, seed)
    cpu = time.process_time()
    wall = train_briefly(
        model,
        dm,
        max_steps=max(1, int(minutes * 60 / SECONDS_PER_STEP[kind])),  # the budget ends it first
        max_time_s=wall_minutes * 60,
        seed=seed,
        checkpoint=full,
        ema_decay=RECIPE["ema_decay"],
        ema_warmup=True,
        gradient_clip_val=1.0,
        progress_every=20.0,
        callbacks=[CpuBudget(minutes * 60)],
    )
    cpu = time.process_time() - cpu
    print(
        f"{kind}: trained {int(model.global_step)} steps, {cpu / 60:.1f} CPU min, {wall / 60:.1f} min wall", flush=True
    )
    return model, wall, cpu


# ---------------------------------------------------------------------------------------------------- evaluation
def held_out(dm) -> dict[str, list]:
    """Held-out documents: ``validation`` (the first :data:`VALIDATION_DOCS` held-out verses), ``kjv test``
    (the other held-out verses) and the corpora of :data:`UNSEEN` (never trained on)."""
    from difflab.text.data.corpora import corpus_documents
    from difflab.text.data.text import Document

    sets = {"validation": dm.val_documents[:VALIDATION_DOCS], "kjv test": dm.val_documents[VALIDATION_DOCS:]}
    for name in UNSEEN:
        sets[name] = [Document(t, f"corpus:{name}", i + 1) for i, t in enumerate(corpus_documents(name))]
    return sets


def unigram_counts(dm) -> torch.Tensor:
    """Add-one smoothed unigram probabilities (V,) of the scored tokens of the training blocks (after
    [BOS]; [PAD] and [MASK] get no mass)."""
    tok = dm.tokenizer
    x, m = dm.train_set.blocks[:, 1:], dm.train_set.mask[:, 1:]
    counts = torch.bincount(x[m.bool()], minlength=tok.vocab_size).double() + 1.0
    counts[[tok.pad_id, tok.mask_id]] = 0.0
    return counts / counts.sum()


def unigram_nll(probs: torch.Tensor, docs, tok, block_size: int, max_blocks: int | None = None) -> tuple[float, int]:
    """``(NLL per token, tokens)`` of the documents' scored tokens (as :func:`~difflab.text.evaluate.
    evaluate_model` packs and, with ``max_blocks``, picks them) under the unigram ``probs``."""
    from difflab.text.evaluate import evaluation_blocks, stratum

    blocks, mask, _ = evaluation_blocks(docs, tok, block_size)
    m = blocks.shape[0]
    rows = [i for i in range(m) if stratum(i, m, min(m, max_blocks or m)) is not None]
    blocks, mask = blocks[rows], mask[rows]
    scored = blocks[:, 1:][mask[:, 1:].bool()]
    return float(-probs.log()[scored].mean()), int(scored.numel())


def likelihood_table(mdlm, ar, probs, sets: dict[str, list], seed: int = 0) -> dict[str, dict[str, Any]]:
    """``{set: {"tokens", "mdlm_bound", "mdlm_stderr", "ar_nll", "unigram_nll"}}`` (nats per token) on
    the held-out sets (not ``validation``)."""
    from difflab.text.evaluate import evaluate_model

    out: dict[str, dict[str, Any]] = {}
    size = int(RECIPE["block_size"])
    for name, docs in sets.items():
        if name == "validation":
            continue
        cap = UNSEEN_BLOCKS if name in UNSEEN else None
        kw = dict(batch_size=64, block_size=size, seed=seed, desc=f"score {name}", max_blocks=cap)
        bound = evaluate_model(mdlm, docs, draws=BOUND_DRAWS, **kw)
        exact = evaluate_model(ar, docs, draws=1, **kw)
        uni, tokens = unigram_nll(probs, docs, mdlm.tokenizer, size, cap)
        assert tokens == bound.tokens == exact.tokens
        out[name] = {
            "tokens": tokens,
            "blocks": f"{bound.blocks} of {bound.of}",
            "mdlm_bound": bound.nll,
            "mdlm_stderr": bound.stderr,
            "ar_nll": exact.nll,
            "unigram_nll": uni,
        }
        print(
            f"{name}: MDLM <= {bound.nll:.4f} +- {bound.stderr:.4f}, AR {exact.nll:.4f}, unigram {uni:.4f}", flush=True
        )
    return out


def real_blocks(docs, tok, n: int) -> torch.Tensor:
    """The first ``n`` whole blocks of the documents (the reference text for the sample metrics)."""
    from difflab.text.evaluate import evaluation_blocks

    blocks, mask, _ = evaluation_blocks(docs, tok, int(RECIPE["block_size"]))
    return blocks[mask.all(1)][:n]


def sample_scores(ar, samples: torch.Tensor, seconds: float = float("nan"), nfe: int = 0) -> dict[str, float]:
    """Generative perplexity under ``ar``, distinct-2 / 3, repetition (seq-rep-4) and token entropy of
    ``samples`` (B, L) (tokens after [BOS])."""
    from difflab.text.metrics import distinct_n, generative_perplexity, repetition_rate, sample_entropy

    rows = samples[:, 1:].tolist()
    with torch.no_grad():
        gen = generative_perplexity(ar, samples)
    return {
        "gen_ppl": gen,
        "distinct_2": distinct_n(rows, 2),
        "distinct_3": distinct_n(rows, 3),
        "rep_4": repetition_rate(rows, 4),
        "entropy": sample_entropy(rows),
        "nfe": nfe,
        "seconds": seconds,
    }


def mdlm_samples(mdlm, steps: int, seed: int, num: int = NUM_SAMPLES) -> tuple[torch.Tensor, int, float]:
    """``(samples (num, block), NFE, seconds)`` of the cached ancestral sampler with ``steps`` steps."""
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    r = mdlm.generate(num, int(RECIPE["block_size"]), steps=steps, generator=g)
    return r.sample, int(r.nfe), time.perf_counter() - t0


def choose_steps(mdlm, ar, reference: torch.Tensor, seed: int) -> tuple[int, dict[str, dict[str, float]]]:
    """The step count of :data:`STEP_CANDIDATES` whose samples' generative perplexity (under ``ar``) is
    closest in log to that of the ``reference`` (validation) blocks: as likely as real text, not more
    (lower would mean repetitive text) and not less. Returns it and every candidate's scores."""
    target = sample_scores(ar, reference)["gen_ppl"]
    scores = {}
    for steps in STEP_CANDIDATES:
        samples, nfe, sec = mdlm_samples(mdlm, steps, seed + 1, VALIDATION_SAMPLES)
        scores[str(steps)] = sample_scores(ar, samples, sec, nfe)
        print(f"validation: {steps} steps, gen-PPL {scores[str(steps)]['gen_ppl']:.1f} (text {target:.1f})", flush=True)
    best = min(STEP_CANDIDATES, key=lambda s: abs(math.log(scores[str(s)]["gen_ppl"] / target)))
    scores["validation text"] = sample_scores(ar, reference)
    return best, scores


def unigram_samples(probs: torch.Tensor, bos_id: int, num: int, length: int, seed: int) -> torch.Tensor:
    """``num`` blocks of ``[BOS]`` and ``length - 1`` tokens drawn independently from ``probs``."""
    g = torch.Generator().manual_seed(seed)
    body = torch.multinomial(probs.float(), num * (length - 1), replacement=True, generator=g)
    return torch.cat([torch.full((num, 1), bos_id), body.view(num, length - 1)], 1)


def sample_table(mdlm, ar, probs, test_docs, steps: int, seed: int) -> tuple[dict[str, dict[str, float]], dict]:
    """Sample metrics (:func:`sample_scores`) of MDLM (``steps``), AR, the unigram model and the test
    text, and a few decoded samples of each model."""
    tok, size = mdlm.tokenizer, int(RECIPE["block_size"])
    m, nfe, sec = mdlm_samples(mdlm, steps, seed + 2)
    g = torch.Generator().manual_seed(seed + 3)
    t0 = time.perf_counter()
    with torch.no_grad():
        a = ar.generate(NUM_SAMPLES, size, generator=g)
    a_sec = time.perf_counter() - t0
    u = unigram_samples(probs, tok.bos_id, NUM_SAMPLES, size, seed + 4)
    table = {
        f"MDLM ({steps} steps)": sample_scores(ar, m, sec, nfe),
        "AR (ancestral)": sample_scores(ar, a, a_sec, size - 1),
        "unigram": sample_scores(ar, u),
        "test text": sample_scores(ar, real_blocks(test_docs, tok, NUM_SAMPLES)),
    }
    texts = {"mdlm": tok.decode_batch(m[:4].tolist()), "ar": tok.decode_batch(a[:2].tolist())}
    return table, texts


def format_evaluation(result: dict[str, Any]) -> str:
    """Markdown tables of an evaluation (:func:`finish`'s ``evaluation`` entry): perplexities per held-out
    set, then the sample metrics."""
    held_out = ["held-out text", "tokens", "MDLM bound (nats/token)", "MDLM PPL <=", "AR PPL", "unigram PPL"]
    lines = [markdown_header(held_out)]
    for name, r in result["likelihood"].items():
        bound = f"{r['mdlm_bound']:.3f} ± {r['mdlm_stderr']:.3f}"
        ppls = (f"{math.exp(r[k]):.1f}" for k in ("mdlm_bound", "ar_nll", "unigram_nll"))
        lines.append(markdown_row([name, r["tokens"], bound, *ppls]))
    samples = ["samples (64 x 64 tokens)", "gen-PPL (AR)", "distinct-2", "distinct-3", "seq-rep-4", "entropy", "NFE"]
    lines += ["", markdown_header([*samples, "seconds"])]
    for name, r in result["samples"].items():
        sec = "—" if math.isnan(r["seconds"]) else f"{r['seconds']:.1f}"
        cells = [f"{r['gen_ppl']:.1f}", *(f"{r[k]:.3f}" for k in ("distinct_2", "distinct_3", "rep_4"))]
        lines.append(markdown_row([name, *cells, f"{r['entropy']:.2f}", r["nfe"] or "—", sec]))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- recipe
def finish(mdlm, ar, dm, full: dict[str, Path], out_dir: Path, meta: dict[str, Any]) -> list[Path]:
    """Choose MDLM's steps on validation, evaluate both models against the unigram model and write
    ``out_dir/mdlm.ckpt`` and ``out_dir/ar.ckpt`` from their full checkpoints ``full`` with ``meta``
    (``{"mdlm": {...}, "ar": {...}}``: command, seed, steps, minutes) completed by data, evaluation and sampling."""
    from difflab.core.lightning.pretrained import write_pretrained

    seed = int(meta["mdlm"].get("seed", 0))
    mdlm, ar = mdlm.eval(), ar.eval()
    sets = held_out(dm)
    probs = unigram_counts(dm)
    reference = real_blocks(sets["validation"], dm.tokenizer, VALIDATION_SAMPLES)
    steps, validation = choose_steps(mdlm, ar, reference, seed)
    samples, texts = sample_table(mdlm, ar, probs, sets["kjv test"], steps, seed)
    evaluation = {"likelihood": likelihood_table(mdlm, ar, probs, sets, seed), "samples": samples}
    print(format_evaluation(evaluation), flush=True)
    data = {
        "corpus": "kjv (Debian bible-kjv, 31,102 verses)",
        "split": f"seeded 95/5 split of LMDataModule(seed={seed}); held-out verses: first {VALIDATION_DOCS} "
        f"validation ({len(sets['validation'])}), the rest test ({len(sets['kjv test'])})",
        "unseen": list(UNSEEN),
        "tokenizer": dm.tokenizer.source,
        "blocks": f"{RECIPE['block_size']} tokens, verses joined with [EOS]",
        "training_blocks": len(dm.train_set),
    }
    common = {"data": data, "evaluation": evaluation, "recipe": dict(RECIPE)}
    sampling = {"sampler": "masked", "steps": steps}
    mdlm_meta = {**meta["mdlm"], **common, "validation_by_steps": validation, "samples": texts, "sampling": sampling}
    ar_meta = {**meta["ar"], **common, "sampling": {"sampler": "ar", "steps": int(RECIPE["block_size"]) - 1}}
    out_dir = Path(out_dir)
    return [
        write_pretrained(full["mdlm"], mdlm, out_dir / f"{MDLM_NAME}.ckpt", meta=mdlm_meta),
        write_pretrained(full["ar"], ar, out_dir / f"{AR_NAME}.ckpt", meta=ar_meta),
    ]


def run_meta(kind: str, seed: int, minutes: float | None, model, wall: float, cpu: float) -> dict[str, Any]:
    """The provenance entry of one trained model."""
    default = minutes is None or minutes == RECIPE["mdlm_minutes"]
    command = f"python scripts/pretrain.py text --seed {seed}" + ("" if default else f" --minutes {minutes:g}")
    return {
        "command": command,
        "model": kind,
        "seed": seed,
        "steps": int(model.global_step),
        "wall_minutes": round(wall / 60, 2),
        "cpu_minutes": round(cpu / 60, 2),
    }


def pretrain(out_dir: Path, *, seed: int = 0, minutes: float | None = None) -> list[Path]:
    """Train MDLM for ``minutes`` CPU minutes (default :data:`RECIPE` ``mdlm_minutes``) and the AR baseline
    for a third of it, evaluate them and write ``out_dir/mdlm.ckpt`` and ``out_dir/ar.ckpt``; returns the paths."""
    import tempfile

    torch.set_num_threads(1)
    m_min = RECIPE["mdlm_minutes"] if minutes is None else minutes
    a_min = RECIPE["ar_minutes"] * m_min / RECIPE["mdlm_minutes"]
    dm = build_data(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        full = {"mdlm": Path(tmp) / "mdlm_full.ckpt", "ar": Path(tmp) / "ar_full.ckpt"}
        mdlm, m_wall, m_cpu = train_model("mdlm", full["mdlm"], seed=seed, minutes=m_min, dm=dm)
        ar, a_wall, a_cpu = train_model("ar", full["ar"], seed=seed, minutes=a_min, dm=dm)
        meta = {
            "mdlm": run_meta("mdlm", seed, minutes, mdlm, m_wall, m_cpu),
            "ar": run_meta("ar", seed, minutes, ar, a_wall, a_cpu),
        }
        return finish(mdlm, ar, dm, full, out_dir, meta)


__all__ = [
    "AR_NAME",
    "MDLM_NAME",
    "RECIPE",
    "CpuBudget",
    "TimeCosine",
    "build_data",
    "build_model",
    "choose_steps",
    "finish",
    "format_evaluation",
    "likelihood_table",
    "pretrain",
    "sample_table",
    "train_model",
    "unigram_counts",
    "warmup_cosine",
]
