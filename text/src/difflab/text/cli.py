"""``difflab-text``: the command line of difflab.text.

Lightning verbs (``fit``, ``validate``, ``test``, ``predict``) through :func:`difflab.core.cli.run_cli`;
``--config NAME`` picks a shipped config (``mdlm_kjv``, ``gidd_kjv``, ``ar_kjv``, ``smoke_mdlm``, ...).
Domain verbs:

* ``train-tokenizer``: train a byte-level BPE with [PAD] [MASK] [BOS] [EOS] and save ``tokenizer.json``;
* ``generate``: sample text from a trained checkpoint (masked diffusion, GIDD or the AR baseline);
* ``evaluate``: a checkpoint's perplexity (AR) or NELBO bound and its perplexity (MDLM, GIDD) on a text file,
  or DiffuSeq's token bound on a JSON-lines file of ``{"src", "trg"}`` pairs;
* ``seq2seq``: translate a JSON-lines file of ``{"src"}`` with a trained DiffuSeq or NeoDiff checkpoint;
* ``make-seq2seq-data``: write the default seq2seq task (KJV case and punctuation restoration) as JSON lines;
* ``demo``: train briefly on the King James Bible and compare samples across step counts.

The data decides the vocabulary: the data module's tokenizer size is linked into the model's
``vocab_size`` (:data:`LINKS`), so a shipped config trains on any tokenizer.

This module parses arguments only; loading and the verbs live in :mod:`difflab.text.inference` and
:mod:`difflab.text.evaluate`.
"""

from __future__ import annotations

import argparse
import codecs
from pathlib import Path

from difflab.core.cli import PackageCLI
from difflab.core.verbs import VerbParser, check_output, count, existing_file, sampler_option, seed_option

DESCRIPTION = (
    "difflab-text: text diffusion (masked diffusion LM, GIDD, DiffuSeq-style and NeoDiff seq2seq) with HF "
    "tokenizers, on the King James Bible and gensim's Wikipedia / news test corpora offline."
)


LINKS = [("data.tokenizer_vocab_size", "model.init_args.vocab_size")]
"""What the data decides: the vocabulary size is the data module's tokenizer's (every text model has
``vocab_size``). The special-token ids are taken from the tokenizer when the model is set up
(:class:`~difflab.text.models.base.TokenizerMixin`); both are kept in the checkpoint."""


def text_encoding(text: str) -> str:
    """Argument type: the name of a text encoding Python knows (``utf-8``, ``latin-1``, ``cp1252``)."""
    try:
        codecs.lookup(text)
    except LookupError:
        raise argparse.ArgumentTypeError(f"{text!r}: unknown text encoding (e.g. utf-8, latin-1, cp1252)") from None
    return text


CKPT_HELP = (
    "checkpoint (or run folder) of {kinds}, or the name of a shipped model, 'mdlm' or 'ar' "
    "(default: the shipped pretrained masked diffusion LM 'mdlm', trained on the King James Bible; "
    "python scripts/pretrain.py text writes it)"
)
"""``--ckpt`` of ``generate`` and ``evaluate``."""


def train_tokenizer_main(argv: list[str]) -> int:
    """train a byte-level BPE tokenizer with [PAD] [MASK] [BOS] [EOS] and save tokenizer.json"""
    from difflab.text.data.corpora import CORPORA
    from difflab.text.data.lm import documents_for
    from difflab.text.tokenizer import train_bpe

    p = VerbParser(prog="difflab-text train-tokenizer", description=train_tokenizer_main.__doc__)
    p.add_argument(
        "files", nargs="*", type=existing_file, help='text files (one document per line) or JSON lines {"text"}'
    )
    p.add_argument("--corpus", choices=CORPORA, default="kjv", help="default corpus when no files are given")
    p.add_argument("--vocab_size", type=count(5), default=1024, help="BPE size, with the four special tokens")
    p.add_argument(
        "--min_frequency", type=count(1), default=2, help="a pair of tokens is merged only if it occurs this often"
    )
    p.add_argument("--encoding", type=text_encoding, default="utf-8", help="text encoding of the files (e.g. latin-1)")
    p.add_argument("--out", type=Path, default=Path("tokenizer.json"), help="tokenizer file to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    ns = p.parse_args(argv)
    check_output(ns.out, ns.overwrite)
    docs = documents_for(ns.corpus, [str(f) for f in ns.files] or None, encoding=ns.encoding)
    tok = train_bpe((d.text for d in docs), ns.vocab_size, ns.min_frequency)
    path = tok.save(ns.out)
    print(f"trained BPE: {tok.vocab_size} tokens on {len(docs)} documents -> {path}")
    return 0


def generate_main(argv: list[str]) -> int:
    """sample text from a trained checkpoint (masked diffusion, GIDD or the AR baseline)"""
    from difflab.text.inference import GENERATE_SAMPLERS, generate

    p = VerbParser(prog="difflab-text generate", description=generate_main.__doc__)
    p.add_argument(
        "--ckpt", default=None, help=CKPT_HELP.format(kinds="MaskedDiffusionLM, HyperscheduleLM, GIDDLM, DDPDLM or AR")
    )
    p.add_argument("--num", type=count(1), default=8, help="samples to draw")
    p.add_argument(
        "--length",
        type=count(2),
        default=None,
        help="tokens per sample including [BOS] (default: the training blocks'; at most the model's max_len)",
    )
    p.add_argument(
        "--steps",
        type=count(1),
        default=None,
        help="sampler steps (default: the shipped model's recommended steps, recorded with it; 64 for others)",
    )
    p.add_argument("--prefix", default=None, help="prompt text kept fixed after [BOS]")
    p.add_argument(
        "--sampler",
        choices=GENERATE_SAMPLERS,
        default="auto",
        help="auto (default: the model's own), masked (cached ancestral), masked_nocache, gidd, gidd_sc (with "
        "self-correction), ddpd (planner and denoiser), ar",
    )
    p.add_argument(
        "--self_correction_steps",
        type=count(0),
        default=128,
        help="gidd_sc: at most this many self-correction iterations after sampling (GIDD Sec. 5; each "
        "replaces the one token the model most prefers to change; a sequence stops when none would change)",
    )
    seed_option(p, "the sampler's noise")
    p.add_argument("--out", type=Path, default=None, help='also write the samples as JSON lines {"text"}')
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    ns = p.parse_args(argv)
    if ns.out is not None:
        check_output(ns.out, ns.overwrite)
    options = {k: v for k, v in vars(ns).items() if k not in ("overwrite", "debug")}
    return generate(options.pop("ckpt"), **options)


def evaluate_main(argv: list[str]) -> int:
    """perplexity (AR) or NELBO bound per token and its perplexity (MDLM, GIDD) of a checkpoint on a text
    file; for DiffuSeq the token bound on JSON lines {"src", "trg"}

    DiffuSeq's bound is that of its probability-flow ODE."""
    from difflab.text.evaluate import evaluate

    p = VerbParser(prog="difflab-text evaluate", description=evaluate_main.__doc__)
    p.add_argument(
        "file",
        type=existing_file,
        help='text file (one document per line) or JSON lines {"text"}; for DiffuSeq JSON lines {"src", "trg"}',
    )
    p.add_argument(
        "--ckpt",
        default=None,
        help=CKPT_HELP.format(kinds="MaskedDiffusionLM, HyperscheduleLM, GIDDLM, AR or DiffuSeq"),
    )
    p.add_argument("--encoding", type=text_encoding, default="utf-8", help="text encoding of the file (e.g. latin-1)")
    p.add_argument(
        "--draws", type=count(1), default=8, help="noise draws of the bound, averaged (diffusion models; AR is exact)"
    )
    p.add_argument("--batch_size", type=count(1), default=32, help="blocks per network evaluation")
    p.add_argument(
        "--block_size",
        type=count(3),
        default=None,
        help="tokens per block (DiffuSeq: per padded target) (default: the training data's)",
    )
    seed_option(p, "the bound's draws (times and noise)")
    p.add_argument(
        "--steps",
        type=count(1),
        default=16,
        help="DiffuSeq: RK4 steps of the probability-flow ODE; per batch and draw the cost is 4 * steps decoder "
        "evaluations with one backward pass per probe (64 at the defaults)",
    )
    p.add_argument("--probes", type=count(1), default=1, help="DiffuSeq: Hutchinson probes of the divergence")
    p.add_argument(
        "--max_blocks",
        type=count(1),
        default=None,
        help="score only this many evenly spaced blocks of a long text file (an estimate of the whole file's "
        "value; the file is still read and tokenized once to place them). Default: every block",
    )
    ns = p.parse_args(argv)
    options = {k: v for k, v in vars(ns).items() if k != "debug"}
    return evaluate(options.pop("file"), options.pop("ckpt"), **options)


def seq2seq_main(argv: list[str]) -> int:
    """translate the {"src"} lines of a JSON-lines file with a trained seq2seq checkpoint"""
    from difflab.text.inference import translate_file

    p = VerbParser(prog="difflab-text seq2seq", description=seq2seq_main.__doc__)
    p.add_argument("input", type=existing_file, help='JSON lines with a "src" key (and optionally "trg")')
    p.add_argument("output", type=Path, help='JSON lines written here: each input line, its translation added as "hyp"')
    p.add_argument(
        "--ckpt",
        required=True,
        help="checkpoint of a DiffuSeq or NeoDiff model (NeoDiff: its time predictor unless --sampler is given)",
    )
    sampler_option(p, "the model's, ddpm")
    p.add_argument("--steps", type=count(1), default=None, help="sampler steps (default: the model's)")
    p.add_argument("--draws", type=count(1), default=1, help="draws per source; > 1: DiffuSeq's MBR decoding")
    p.add_argument("--batch_size", type=count(1), default=64, help="sources translated per network evaluation")
    p.add_argument("--truncate", action="store_true", help="cut sources longer than the model's max_src_len")
    p.add_argument("--encoding", type=text_encoding, default="utf-8", help="text encoding of the input (e.g. latin-1)")
    seed_option(p, "the sampling noise")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    ns = p.parse_args(argv)
    check_output(ns.output, ns.overwrite)
    options = {k: v for k, v in vars(ns).items() if k not in ("overwrite", "debug")}
    return translate_file(options.pop("input"), options.pop("output"), options.pop("ckpt"), **options)


def make_seq2seq_data_main(argv: list[str]) -> int:
    """write the default seq2seq task (KJV case and punctuation restoration) as DiffuSeq JSON lines"""
    from difflab.text.data.seq2seq import TASKS, task_splits, write_pairs

    p = VerbParser(prog="difflab-text make-seq2seq-data", description=make_seq2seq_data_main.__doc__)
    p.add_argument("--task", choices=TASKS, default="kjv_restore", help="the task to write")
    p.add_output("output folder", Path("data/kjv_restore"))
    p.add_argument("--val_size", type=count(1), default=1000, help="validation pairs")
    p.add_argument("--test_size", type=count(1), default=1000, help="test pairs (the rest are training pairs)")
    seed_option(p, "the choice of the validation and test verses")
    p.add_argument("--overwrite", action="store_true", help="replace the files of a non-empty --out")
    ns = p.parse_args(argv)
    check_output(ns.out, ns.overwrite)
    for split, pairs in task_splits(ns.task, ns.seed, ns.val_size, ns.test_size).items():
        path = write_pairs(ns.out / f"{split}.jsonl", pairs)
        print(f"{split}: {len(pairs)} pairs -> {path}")
    return 0


VERBS = {
    "train-tokenizer": train_tokenizer_main,
    "generate": generate_main,
    "evaluate": evaluate_main,
    "seq2seq": seq2seq_main,
    "make-seq2seq-data": make_seq2seq_data_main,
}

main = PackageCLI(
    "text",
    DESCRIPTION,
    VERBS,
    "train masked diffusion and the AR baseline briefly on the KJV; samples and gen-PPL against steps",
    model_default="difflab.text.models.mdlm:MaskedDiffusionLM",
    datamodule_default="difflab.text.data.lm:LMDataModule",
    links=LINKS,
).main
"""``difflab-text``: the package's command line (Lightning verbs and the domain verbs)."""


if __name__ == "__main__":
    raise SystemExit(main())
