"""core.figures: the Agg backend in one place, and figures saved then closed."""

from __future__ import annotations

import pytest

from difflab.core.figures import pyplot, save_figure

pytest.importorskip("matplotlib")


def test_pyplot_uses_agg_and_save_figure_closes(tmp_path):
    plt = pyplot()
    assert plt.get_backend().lower() == "agg"
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = save_figure(fig, tmp_path / "new" / "folder" / "line.png", dpi=40)
    assert path.stat().st_size > 0
    assert fig.number not in plt.get_fignums()
