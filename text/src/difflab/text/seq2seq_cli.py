"""``difflab-text seq2seq`` and ``difflab-text make-seq2seq-data``.

* ``seq2seq --ckpt CKPT IN.jsonl OUT.jsonl [--draws K]``: read ``{"src": ...}`` per line (other keys are kept;
  a ``trg`` key is used as the reference for BLEU / ROUGE-L), generate the target with a
  :class:`~difflab.text.models.DiffuSeq` checkpoint and write ``{"src", "hyp"[, "trg"]}`` lines.
* ``make-seq2seq-data --out DIR``: write the default task's ``train.jsonl``, ``val.jsonl`` and
  ``test.jsonl`` (DiffuSeq's format; see :mod:`difflab.text.data.seq2seq`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _read_sources(path: Path) -> list[dict]:
    from difflab.text.data.text import _json_lines

    return [obj for _, obj in _json_lines(path, ("src",))]


def seq2seq_command(argv: list[str]) -> int:
    """translate the {"src"} lines of a JSON-lines file with a trained DiffuSeq checkpoint"""
    import torch

    from difflab.text.cli import load_text_model
    from difflab.text.data.seq2seq import collate_sources
    from difflab.text.metrics import corpus_bleu, rouge_l
    from difflab.text.models import DiffuSeq

    p = argparse.ArgumentParser(prog="difflab-text seq2seq", description=seq2seq_command.__doc__)
    p.add_argument("input", type=Path, help='JSON lines with a "src" key (and optionally "trg")')
    p.add_argument("output", type=Path, help='JSON lines {"src", "hyp"[, "trg"]} written here')
    p.add_argument("--ckpt", required=True, help="checkpoint of a DiffuSeq model")
    p.add_argument("--sampler", default=None, help="core sampler name (default: the model's, ddpm)")
    p.add_argument("--steps", type=int, default=None, help="sampler steps (default: the model's)")
    p.add_argument("--draws", type=int, default=1, help="draws per source; > 1: DiffuSeq's MBR decoding")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--truncate", action="store_true", help="cut sources longer than the model's max_src_len")
    p.add_argument("--seed", type=int, default=0)
    ns = p.parse_args(argv)
    model = load_text_model(ns.ckpt)
    if not isinstance(model, DiffuSeq):
        raise SystemExit(f"{ns.ckpt}: seq2seq needs a DiffuSeq checkpoint, got {type(model).__name__}")
    rows = _read_sources(ns.input)
    tok = model.tokenizer
    src, mask = collate_sources(
        tok, [r["src"] for r in rows], model.network.max_src_len, str(ns.input), truncate=ns.truncate
    )
    g = torch.Generator().manual_seed(ns.seed)
    hyps = model.translate_texts(
        src, mask, draws=ns.draws, batch_size=ns.batch_size, sampler=ns.sampler, steps=ns.steps, generator=g
    )
    steps = ns.steps or model.sample_steps
    ns.output.parent.mkdir(parents=True, exist_ok=True)
    with ns.output.open("w", encoding="utf-8") as fh:
        for row, h in zip(rows, hyps, strict=True):
            out = {"src": row["src"], "hyp": h}
            if isinstance(row.get("trg"), str):
                out["trg"] = row["trg"]
            fh.write(json.dumps(out) + "\n")
    print(f"wrote {len(hyps)} lines to {ns.output} ({ns.draws} draw(s) of {steps} sampler steps per source)")
    refs = [r.get("trg") for r in rows]
    if all(isinstance(x, str) for x in refs):
        print(
            f"BLEU {corpus_bleu(hyps, refs):.2f}  ROUGE-L {rouge_l(hyps, refs):.4f}  "
            f"(copying the source: BLEU {corpus_bleu([r['src'] for r in rows], refs):.2f})"
        )
    return 0


def make_data_command(argv: list[str]) -> int:
    """write the default seq2seq task (KJV case and punctuation restoration) as DiffuSeq JSON lines"""
    from difflab.text.data.seq2seq import TASKS, task_splits, write_pairs

    p = argparse.ArgumentParser(prog="difflab-text make-seq2seq-data", description=make_data_command.__doc__)
    p.add_argument("--task", choices=TASKS, default="kjv_restore")
    p.add_argument("--out", type=Path, default=Path("data/kjv_restore"))
    p.add_argument("--val_size", type=int, default=1000)
    p.add_argument("--test_size", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    ns = p.parse_args(argv)
    for split, pairs in task_splits(ns.task, ns.seed, ns.val_size, ns.test_size).items():
        path = write_pairs(ns.out / f"{split}.jsonl", pairs)
        print(f"{split}: {len(pairs)} pairs -> {path}")
    return 0


__all__ = ["seq2seq_command", "make_data_command"]
