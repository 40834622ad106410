"""Fan charts: the context, the truth and the forecast's central 50 % / 90 % intervals and median."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from difflab.core.figures import pyplot, save_figure


def fan_chart(ax, context_t, context_y, future_t, samples, truth=None, *, title: str = "", color: str = "C0") -> None:
    """Draw one fan chart on ``ax``: ``samples`` ``(S, H)``; ``truth`` ``(H,)`` or None (NaN = missing)."""
    q = np.nanquantile(samples, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
    ax.plot(context_t, context_y, color="0.25", lw=1.0, label="context")
    ax.fill_between(future_t, q[0], q[4], color=color, alpha=0.2, lw=0, label="90% interval")
    ax.fill_between(future_t, q[1], q[3], color=color, alpha=0.4, lw=0, label="50% interval")
    ax.plot(future_t, q[2], color=color, lw=1.2, label="median")
    if truth is not None:
        ax.plot(future_t, truth, color="k", lw=1.0, ls="--", label="truth")
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)


def save_fan_charts(path: str | Path, panels: list[dict], *, ncols: int = 2, suptitle: str = "") -> Path:
    """A grid of fan charts; each panel is a dict of :func:`fan_chart` keyword arguments."""
    plt = pyplot()
    n = len(panels)
    ncols = min(ncols, n)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 2.6 * nrows), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        fan_chart(ax, **panel)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="upper left")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.autofmt_xdate()
    fig.tight_layout()
    return save_figure(fig, path, dpi=80)


__all__ = ["fan_chart", "save_fan_charts"]
