"""``difflab-text``: the command line of difflab.text.

Lightning verbs (``fit``, ``validate``, ``test``, ``predict``) through :func:`difflab.core.cli.run_cli`;
``--config NAME`` picks a shipped config (``mdlm_kjv``, ``gidd_kjv``, ``ar_kjv``, ``smoke_mdlm``, ...).
Domain verbs:

* ``train-tokenizer``: train a byte-level BPE with [PAD] [MASK] [BOS] [EOS] and save ``tokenizer.json``;
* ``generate``: sample text from a trained checkpoint (masked diffusion, GIDD or the AR baseline);
* ``seq2seq``: translate a JSON-lines file of ``{"src"}`` with a trained DiffuSeq checkpoint;
* ``make-seq2seq-data``: write the default seq2seq task (KJV case and punctuation restoration) as JSON lines;
* ``demo``: train briefly on the King James Bible and compare samples across step counts.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

DESCRIPTION = (
    "difflab-text: text diffusion (masked diffusion LM, GIDD, DiffuSeq-style seq2seq) with HF tokenizers, "
    "on the King James Bible and gensim's Wikipedia / news test corpora offline."
)


def train_tokenizer_main(argv: list[str]) -> int:
    """train a byte-level BPE tokenizer with [PAD] [MASK] [BOS] [EOS] and save tokenizer.json"""
    from difflab.text.data.corpora import CORPORA
    from difflab.text.data.lm import documents_for
    from difflab.text.tokenizer import train_bpe

    p = argparse.ArgumentParser(prog="difflab-text train-tokenizer", description=train_tokenizer_main.__doc__)
    p.add_argument("files", nargs="*", help='text files (one document per line) or JSON lines {"text"}')
    p.add_argument("--corpus", choices=CORPORA, default="kjv", help="default corpus when no files are given")
    p.add_argument("--vocab_size", type=int, default=1024)
    p.add_argument("--min_frequency", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("tokenizer.json"))
    ns = p.parse_args(argv)
    docs = documents_for(ns.corpus, ns.files or None)
    tok = train_bpe((d.text for d in docs), ns.vocab_size, ns.min_frequency)
    path = tok.save(ns.out)
    print(f"trained BPE: {tok.vocab_size} tokens on {len(docs)} documents -> {path}")
    return 0


def load_text_model(path: str | Path, map_location: str = "cpu"):
    """Rebuild the model of a difflab.text checkpoint (its class is stored in the checkpoint)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    name = ckpt.get("difflab_class")
    if name is None:
        raise ValueError(f"{path}: not a difflab.text checkpoint (no 'difflab_class' entry)")
    module, _, cls = name.rpartition(".")
    model_cls = getattr(importlib.import_module(module), cls)
    import inspect

    accepted = set(inspect.signature(model_cls.__init__).parameters) - {"self", "optimizer", "lr_scheduler"}
    hp = {k: v for k, v in ckpt.get("hyper_parameters", {}).items() if k in accepted}
    model = model_cls(**hp)
    model.load_state_dict(ckpt["state_dict"])
    model.on_load_checkpoint(ckpt)
    model.eval()
    if getattr(model, "tokenizer", None) is None:
        raise ValueError(f"{path}: the checkpoint carries no tokenizer")
    return model


def generate_main(argv: list[str]) -> int:
    """sample text from a trained checkpoint (masked diffusion, GIDD or the AR baseline)"""
    import torch

    p = argparse.ArgumentParser(prog="difflab-text generate", description=generate_main.__doc__)
    p.add_argument("--ckpt", required=True, help="checkpoint of MaskedDiffusionLM, GIDDLM or ARLanguageModel")
    p.add_argument("--num", type=int, default=8)
    p.add_argument("--length", type=int, default=64, help="tokens per sample including [BOS]")
    p.add_argument("--steps", type=int, default=64)
    p.add_argument("--prefix", default=None, help="prompt text kept fixed after [BOS]")
    p.add_argument(
        "--sampler",
        choices=("auto", "masked", "masked_nocache", "gidd", "gidd_sc", "ar"),
        default="auto",
        help="masked (cached ancestral), masked_nocache, gidd, gidd_sc (with self-correction), ar",
    )
    p.add_argument("--self_correction_steps", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help='also write the samples as JSON lines {"text"}')
    ns = p.parse_args(argv)
    from difflab.text.models import GIDDLM, ARLanguageModel

    model = load_text_model(ns.ckpt)
    tok = model.tokenizer
    g = torch.Generator().manual_seed(ns.seed)
    prefix = torch.tensor(tok.encode(ns.prefix), dtype=torch.long) if ns.prefix else None
    kind = ns.sampler
    if kind == "auto":
        kind = "ar" if isinstance(model, ARLanguageModel) else "gidd" if isinstance(model, GIDDLM) else "masked"
    if kind == "ar":
        if not isinstance(model, ARLanguageModel):
            raise SystemExit(f"--sampler ar needs an ARLanguageModel checkpoint, got {type(model).__name__}")
        samples, nfe = model.generate(ns.num, ns.length, prefix=prefix, generator=g), ns.length - 1
    elif kind in ("gidd", "gidd_sc"):
        if not isinstance(model, GIDDLM):
            raise SystemExit(f"--sampler {kind} needs a GIDDLM checkpoint, got {type(model).__name__}")
        r = model.generate(
            ns.num,
            ns.length,
            steps=ns.steps,
            prefix=prefix,
            generator=g,
            self_correction_steps=ns.self_correction_steps if kind == "gidd_sc" else 0,
        )
        samples, nfe = r.sample, r.nfe
    else:
        if isinstance(model, (ARLanguageModel, GIDDLM)):
            raise SystemExit(f"--sampler {kind} needs a MaskedDiffusionLM checkpoint, got {type(model).__name__}")
        r = model.generate(ns.num, ns.length, steps=ns.steps, prefix=prefix, generator=g, cache=kind == "masked")
        samples, nfe = r.sample, r.nfe
    texts = tok.decode_batch(samples.tolist())
    for i, t in enumerate(texts):
        print(f"--- sample {i} ---\n{t}")
    print(f"nfe: {nfe}")
    if ns.out is not None:
        ns.out.parent.mkdir(parents=True, exist_ok=True)
        ns.out.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
        print(f"wrote {ns.out}")
    return 0


def seq2seq_main(argv: list[str]) -> int:
    """translate the {"src"} lines of a JSON-lines file with a trained seq2seq checkpoint"""
    from difflab.text.seq2seq_cli import seq2seq_command

    return seq2seq_command(argv)


def make_seq2seq_data_main(argv: list[str]) -> int:
    """write the default seq2seq task (KJV case and punctuation restoration) as DiffuSeq JSON lines"""
    from difflab.text.seq2seq_cli import make_data_command

    return make_data_command(argv)


def demo_main(argv: list[str]) -> int:
    """train masked diffusion and the AR baseline briefly on the KJV; samples and gen-PPL against steps"""
    from difflab.text.demo import main as demo

    return demo(argv)


def main(args: Sequence[str] | None = None) -> int:
    from lightning.pytorch import LightningDataModule, LightningModule

    from difflab.core.cli import exit_code, run_cli
    from difflab.text.data.lm import LMDataModule
    from difflab.text.models.mdlm import MaskedDiffusionLM

    result = run_cli(
        LightningModule,
        LightningDataModule,
        package="text",
        args=args,
        extra_commands={
            "train-tokenizer": train_tokenizer_main,
            "generate": generate_main,
            "seq2seq": seq2seq_main,
            "make-seq2seq-data": make_seq2seq_data_main,
            "demo": demo_main,
        },
        model_default=MaskedDiffusionLM,
        datamodule_default=LMDataModule,
        description=DESCRIPTION,
    )
    return exit_code(result)


if __name__ == "__main__":
    sys.exit(main())
