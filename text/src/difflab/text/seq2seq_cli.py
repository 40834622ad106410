"""Placeholder replaced by the seq2seq verb implementation."""


def seq2seq_command(argv: list[str]) -> int:
    raise SystemExit("difflab-text seq2seq: the DiffuSeq-style seq2seq model is not built yet")
