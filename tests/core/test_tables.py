"""The Markdown table writer shared by every package."""

from __future__ import annotations

import numpy as np
import pytest

from difflab.core.tables import format_cell, markdown_header, markdown_row, markdown_table


def test_header_rule_and_rows_with_default_alignment():
    text = markdown_table([["bicubic", 0, 27.3149], ["ours", 10, None]], ["method", "NFE", "PSNR"])
    assert text.splitlines() == [
        "| method | NFE | PSNR |",
        "|---|---:|---:|",
        "| bicubic | 0 | 27.31 |",
        "| ours | 10 | - |",
    ]


def test_per_column_formats_and_alignment():
    text = markdown_table([["a", 0.5, 1234.5]], ["x", "p", "q"], floatfmt=["", ".2f", ".0f"], align="lcr")
    assert text.splitlines()[1:] == ["|---|:---:|---:|", "| a | 0.50 | 1234 |"]
    assert markdown_table([], ["x", "y"], align="l") == "| x | y |\n|---|---|"


def test_cells_floats_of_numpy_integers_and_strings():
    assert format_cell(np.float32(0.125), ".2f") == "0.12"
    assert format_cell(np.int64(3), ".2f") == "3"
    assert format_cell(True) == "True"
    assert format_cell("1.0 ± 0.1", ".2f") == "1.0 ± 0.1"
    assert format_cell(None, missing="—") == "—"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(rows=[["a"]], headers=["x", "y"]), "row 0 has 1 cells for 2 headers"),
        (dict(rows=[], headers=["x", "y"], floatfmt=[".2f"]), "floatfmt has 1 entries for 2 columns"),
        (dict(rows=[], headers=["x", "y"], align="lq"), "align must use the letters"),
    ],
)
def test_bad_shapes_name_the_problem(kwargs, match):
    with pytest.raises(ValueError, match=match):
        markdown_table(**kwargs)


def test_a_table_printed_row_by_row_equals_the_whole_table():
    rows, head = [["a", 1, 0.5], ["b", 2, None]], ["x", "n", "v"]
    streamed = "\n".join([markdown_header(head, "llr"), *(markdown_row(r, ".2f") for r in rows)])
    assert streamed == markdown_table(rows, head, ".2f", align="llr")
