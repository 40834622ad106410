"""Markdown tables: the one table writer of every difflab package, demo and benchmark.

``markdown_table(rows, headers)`` writes a GitHub-flavoured Markdown table, one line per row::

    | method | NFE | PSNR |
    |---|---:|---:|
    | bicubic | 0 | 27.31 |

Cells are not padded, so the lines stay short and a table pasted into a README diffs cleanly.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence

_RULE = {"l": "---", "r": "---:", "c": ":---:"}


def _per_column(spec: str | Sequence[str], n: int, what: str) -> list[str]:
    """One entry per column: a single string is repeated, a sequence must have ``n`` entries."""
    if isinstance(spec, str):
        return [spec] * n
    spec = list(spec)
    if len(spec) != n:
        raise ValueError(f"{what} has {len(spec)} entries for {n} columns: {spec!r}")
    return spec


def format_cell(value: object, floatfmt: str = ".4g", missing: str = "-") -> str:
    """A cell's text: ``missing`` for None, ``format(value, floatfmt)`` for a real non-integer number
    (Python or NumPy float), ``str(value)`` for anything else (integers, strings, booleans)."""
    if value is None:
        return missing
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return format(value, floatfmt)
    return str(value)


def markdown_header(headers: Sequence[str], align: str | Sequence[str] | None = None) -> str:
    """The first two lines of a table: the titles and the alignment rule (see :func:`markdown_table`),
    for a table printed row by row with :func:`markdown_row` while it is computed."""
    n = len(headers)
    if align is None:
        align = "l" + "r" * (n - 1)
    aligns = _per_column(align if len(align) != n else list(align), n, "align")
    bad = [a for a in aligns if a not in _RULE]
    if bad:
        raise ValueError(f"align must use the letters l, r, c; got {align!r}")
    return "| " + " | ".join(headers) + " |\n|" + "|".join(_RULE[a] for a in aligns) + "|"


def markdown_row(cells: Sequence[object], floatfmt: str | Sequence[str] = ".4g", missing: str = "-") -> str:
    """One table line of ``cells``, each formatted by :func:`format_cell`."""
    fmts = _per_column(floatfmt, len(cells), "floatfmt")
    return "| " + " | ".join(format_cell(v, f, missing) for v, f in zip(cells, fmts)) + " |"


def markdown_table(
    rows: Iterable[Sequence[object]],
    headers: Sequence[str],
    floatfmt: str | Sequence[str] = ".4g",
    align: str | Sequence[str] | None = None,
    missing: str = "-",
) -> str:
    """A Markdown table of ``rows`` under ``headers`` (no trailing newline).

    Args:
        rows: one sequence of cells per row, as many cells as ``headers``; cells are formatted by
            :func:`format_cell` (strings are written as they are, so a caller may pre-format).
        headers: the column titles.
        floatfmt: a format spec for float cells, one for all columns or one per column.
        align: ``"l"``, ``"r"`` or ``"c"`` per column (a string such as ``"lrr"``, or one letter for
            all columns); by default the first column is left-aligned and the others right-aligned.
        missing: the text of a ``None`` cell.
    Raises:
        ValueError: a row, ``floatfmt`` or ``align`` whose length does not match ``headers``, or an
            unknown alignment letter.
    """
    n = len(headers)
    _per_column(floatfmt, n, "floatfmt")
    lines = [markdown_header(headers, align)]
    for i, row in enumerate(rows):
        if len(row) != n:
            raise ValueError(f"row {i} has {len(row)} cells for {n} headers: {list(row)!r}")
        lines.append(markdown_row(row, floatfmt, missing))
    return "\n".join(lines)


__all__ = ["format_cell", "markdown_header", "markdown_row", "markdown_table"]
