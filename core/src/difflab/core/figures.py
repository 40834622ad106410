"""Figures: the one place where difflab selects matplotlib's backend.

Every package's ``figures.py`` draws through :func:`pyplot`, which selects the non-interactive Agg
backend (figures are written to files, never shown, and no display is needed), and writes with
:func:`save_figure`, which closes the figure so that long runs do not accumulate open figures.
matplotlib is imported only when a figure is drawn (``pip install matplotlib``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend."""
    try:
        import matplotlib
    except ImportError as err:  # pragma: no cover - matplotlib ships with difflab-core[lightning]
        raise ImportError("figures need matplotlib: pip install matplotlib") from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, **savefig_kwargs: Any) -> Path:
    """Write ``fig`` to ``path`` (its folder is created; ``savefig_kwargs`` go to ``Figure.savefig``),
    close it and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, **savefig_kwargs)
    pyplot().close(fig)
    return path


__all__ = ["pyplot", "save_figure"]
