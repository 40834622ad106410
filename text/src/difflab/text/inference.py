"""Loading a trained text model and the domain verbs ``generate`` and ``seq2seq``.

Checkpoints are read by core's one loader (:func:`difflab.core.lightning.load_checkpoint`, with
``weights_only=True``); the tokenizer travels inside the checkpoint. The command line in
:mod:`difflab.text.cli` only parses arguments.

* ``generate``: sample text with a masked diffusion LM, GIDD, DDPD or the AR baseline (``--sampler
  ddpd`` also runs DDPD's sampler on an MDLM checkpoint, whose planner is exact: a position is noise
  iff it is [MASK]);
* ``seq2seq IN.jsonl OUT.jsonl``: read ``{"src": ...}`` per line (other keys are kept; a ``trg`` key
  is the reference for BLEU / ROUGE-L), generate the target with a :class:`~difflab.text.models.DiffuSeq`
  checkpoint and write ``{"src", "hyp"[, "trg"]}`` lines.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from difflab.core.errors import UserError
from difflab.core.progress import StepProgress

GENERATE_SAMPLERS = ("auto", "masked", "masked_nocache", "gidd", "gidd_sc", "ddpd", "ar")
"""``generate --sampler``: masked (cached ancestral), masked_nocache, gidd, gidd_sc (self-correction),
ddpd (planned denoising: DDPD checkpoints, or MDLM with its exact [MASK] planner), ar."""


SHIPPED = ("mdlm", "ar")
"""Names of the shipped pretrained models (``--ckpt mdlm``, ``--ckpt ar``); ``mdlm`` is the default."""


def resolve_checkpoint(ckpt: str | Path | None) -> Path:
    """The checkpoint a verb reads: ``ckpt`` as given, the shipped model of that name (``mdlm``, ``ar``)
    when no such file or folder exists, or the shipped ``mdlm`` when ``ckpt`` is None (a one-line
    error when it is not installed)."""
    from difflab.core.lightning.pretrained import checkpoint_or_default

    if ckpt is not None and str(ckpt) in SHIPPED and not Path(ckpt).exists():
        return checkpoint_or_default(None, "text", str(ckpt))
    return checkpoint_or_default(ckpt, "text", "mdlm")


def sampling_of(path: Path) -> dict:
    """The sampler settings recorded with a shipped model (``{"sampler", "steps"}``), ``{}`` for others."""
    from difflab.core.lightning.pretrained import recommended_sampling

    return recommended_sampling(path) if Path(path).is_file() else {}


def load_text_model(path: str | Path, map_location: str = "cpu", expected_base: type | tuple[type, ...] | None = None):
    """The model of a difflab.text checkpoint (any text method, or ``expected_base``) with its tokenizer."""
    from difflab.core.lightning import CheckpointError, load_checkpoint
    from difflab.text.models import DDPDLM, GIDDLM, ARLanguageModel, DiffuSeq, MaskedDiffusionLM

    base = expected_base or (MaskedDiffusionLM, GIDDLM, DDPDLM, ARLanguageModel, DiffuSeq)
    model = load_checkpoint(path, base, map_location=map_location)
    if getattr(model, "tokenizer", None) is None:
        raise CheckpointError(f"{path}: the checkpoint carries no tokenizer (expected one written by difflab-text fit)")
    return model


def _sample(model, kind: str, num: int, length: int, steps: int, prefix, generator, self_correction_steps: int):
    """``(token ids (num, length), NFE)`` with the sampler ``kind`` (diffusion samplers show progress per step)."""
    from difflab.text.models import DDPDLM, GIDDLM, ARLanguageModel

    if kind == "auto":
        kinds = ((ARLanguageModel, "ar"), (GIDDLM, "gidd"), (DDPDLM, "ddpd"))
        kind = next((k for cls, k in kinds if isinstance(model, cls)), "masked")
    bar = StepProgress(f"generate ({kind})", steps) if kind != "ar" else None
    result = _run_sampler(model, kind, num, length, steps, prefix, generator, self_correction_steps, bar)
    if bar is not None:  # closed (its last line printed) only when sampling ran: an error stays one line
        bar.close()
    return result


def _run_ddpd(model, num, length, steps, prefix, generator, callback):
    """DDPD's sampler: a DDPD checkpoint's own planner, or an MDLM's exact [MASK] planner."""
    from difflab.text.models import DDPDLM, GIDDLM, MaskedDiffusionLM

    if isinstance(model, DDPDLM):
        r = model.generate(num, length, steps=steps, prefix=prefix, generator=generator, callback=callback)
        return r.sample, r.nfe
    if not isinstance(model, MaskedDiffusionLM) or isinstance(model, GIDDLM):
        raise UserError(
            f"--sampler ddpd needs a DDPDLM or MaskedDiffusionLM checkpoint, got {type(model).__name__} "
            "(GIDD's mixed noise has no exact planner and no planner head)"
        )
    x, keep = model.start_tokens(num, length, prefix, None, None)
    with torch.no_grad():
        r = model.run_discrete(x, keep, steps, generator, callback, sampler="ddpd")
    return r.sample, r.nfe


def _run_sampler(model, kind, num, length, steps, prefix, generator, self_correction_steps, callback):
    from difflab.text.models import DDPDLM, GIDDLM, ARLanguageModel

    if kind == "ddpd":
        return _run_ddpd(model, num, length, steps, prefix, generator, callback)
    if kind == "ar":
        if not isinstance(model, ARLanguageModel):
            raise UserError(f"--sampler ar needs an ARLanguageModel checkpoint, got {type(model).__name__}")
        return model.generate(num, length, prefix=prefix, generator=generator), length - 1
    if kind in ("gidd", "gidd_sc"):
        if not isinstance(model, GIDDLM):
            raise UserError(f"--sampler {kind} needs a GIDDLM checkpoint, got {type(model).__name__}")
        r = model.generate(
            num,
            length,
            steps=steps,
            prefix=prefix,
            generator=generator,
            self_correction_steps=self_correction_steps if kind == "gidd_sc" else 0,
            callback=callback,
        )
        return r.sample, r.nfe
    if isinstance(model, (ARLanguageModel, GIDDLM, DDPDLM)):
        raise UserError(f"--sampler {kind} needs a MaskedDiffusionLM checkpoint, got {type(model).__name__}")
    r = model.generate(
        num, length, steps=steps, prefix=prefix, generator=generator, cache=kind == "masked", callback=callback
    )
    return r.sample, r.nfe


def _prompt_ids(model, prefix: str | None, length: int) -> torch.Tensor | None:
    """The token ids of ``prefix`` after checking ``length`` against the model and the prompt."""
    max_len = int(model.network.max_len)
    length = length or int(model.data_block_size or max_len)
    if length > max_len:
        raise UserError(f"--length {length}: the model was trained for blocks of at most {max_len} tokens")
    if not prefix:
        return None
    ids = model.tokenizer.encode(prefix)
    if len(ids) + 1 >= length:
        raise UserError(
            f"--prefix: the prompt is {len(ids)} tokens (+[BOS]), leaving nothing to generate in --length {length}; "
            f"give a shorter prompt or a longer --length (at most {max_len})"
        )
    return torch.tensor(ids, dtype=torch.long)


def generate(
    ckpt: str | Path,
    *,
    num: int = 8,
    length: int | None = None,
    steps: int | None = None,
    prefix: str | None = None,
    sampler: str = "auto",
    self_correction_steps: int = 128,
    seed: int = 0,
    out: Path | None = None,
) -> int:
    """Print ``num`` samples of ``length`` tokens (default: the training blocks' length) and write them to
    ``out`` as JSON lines ``{"text"}``. ``ckpt`` None: the shipped MDLM; ``steps`` None and ``sampler``
    ``auto``: the shipped model's recorded sampling (else 64 steps and the model's own sampler)."""
    ckpt = resolve_checkpoint(ckpt)
    recorded = sampling_of(ckpt)
    steps = steps or int(recorded.get("steps", 64))
    if sampler == "auto" and recorded.get("sampler") in GENERATE_SAMPLERS:
        sampler = str(recorded["sampler"])
    model = load_text_model(ckpt)
    tok = model.tokenizer
    g = torch.Generator().manual_seed(seed)
    ids = _prompt_ids(model, prefix, length)
    length = length or int(model.data_block_size or model.network.max_len)
    samples, nfe = _sample(model, sampler, num, length, steps, ids, g, self_correction_steps)
    texts = tok.decode_batch(samples.tolist())
    for i, t in enumerate(texts):
        print(f"--- sample {i} ---\n{t}")
    print(f"nfe: {nfe}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
        print(f"wrote {out}")
    return 0


def _read_sources(path: Path, encoding: str = "utf-8") -> list[dict]:
    from difflab.text.data.text import _json_lines

    return [obj for _, obj in _json_lines(path, ("src",), encoding)]


def _write_translations(output: Path, rows: list[dict], hyps: list[str]) -> None:
    """One JSON line per input line: its fields as given (``src``, ``trg``, an ``id`` ...) and ``hyp``,
    the translation; UTF-8, not escaped."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8") as fh:
        for row, h in zip(rows, hyps, strict=True):
            fh.write(json.dumps({**row, "hyp": h}, ensure_ascii=False) + "\n")


def translate_file(
    input: Path,
    output: Path,
    ckpt: str | Path,
    *,
    sampler: str | None = None,
    steps: int | None = None,
    draws: int = 1,
    batch_size: int = 64,
    truncate: bool = False,
    encoding: str = "utf-8",
    seed: int = 0,
) -> int:
    """Translate the ``{"src"}`` lines of ``input`` into ``output``; prints BLEU / ROUGE-L when every
    line has a ``trg``."""
    from difflab.text.data.seq2seq import collate_sources
    from difflab.text.metrics import corpus_bleu, rouge_l
    from difflab.text.models import DiffuSeq

    model = load_text_model(ckpt, expected_base=DiffuSeq)
    rows = _read_sources(input, encoding)
    src, mask = collate_sources(
        model.tokenizer, [r["src"] for r in rows], model.network.max_src_len, str(input), truncate=truncate
    )
    g = torch.Generator().manual_seed(seed)
    hyps = model.translate_texts(
        src, mask, draws=draws, batch_size=batch_size, sampler=sampler, steps=steps, generator=g
    )
    _write_translations(output, rows, hyps)
    steps = steps or model.sample_steps
    print(f"wrote {len(hyps)} lines to {output} ({draws} draw(s) of {steps} sampler steps per source)")
    refs = [r.get("trg") for r in rows]
    if all(isinstance(x, str) for x in refs):
        print(
            f"BLEU {corpus_bleu(hyps, refs):.2f}  ROUGE-L {rouge_l(hyps, refs):.4f}  "
            f"(copying the source: BLEU {corpus_bleu([r['src'] for r in rows], refs):.2f})"
        )
    return 0


__all__ = [
    "GENERATE_SAMPLERS",
    "SHIPPED",
    "generate",
    "load_text_model",
    "resolve_checkpoint",
    "sampling_of",
    "translate_file",
]
