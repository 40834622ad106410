"""Rollout figures: end-effector paths seen from above, one panel per sampler."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from difflab.core.figures import pyplot, save_figure


def plot_rollouts(results: list, path: str | Path, title: str = "") -> Path:
    """Top view (x, y) of each episode's end-effector path: green = success, red = failure.

    Circles mark the start, stars the goal (when the environment exposes it), dots the final position.
    """
    plt = pyplot()
    n = len(results)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.4), squeeze=False)
    pts = [p[:, :2] for r in results for p in r.paths] + [
        g[None, :2] for r in results for g in r.goals if np.all(np.isfinite(g))
    ]
    allp = np.concatenate(pts) if pts else np.zeros((1, 2))
    lo, hi = allp.min(0), allp.max(0)
    mid, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2, 1e-3) * 1.08
    for ax, res in zip(axes[0], results):
        for p, g, ok in zip(res.paths, res.goals, res.success):
            color = "tab:green" if ok else "tab:red"
            ax.plot(p[:, 0], p[:, 1], color=color, lw=1.0, alpha=0.8)
            ax.plot(p[0, 0], p[0, 1], "o", color="k", ms=3)
            ax.plot(p[-1, 0], p[-1, 1], ".", color=color, ms=6)
            if np.all(np.isfinite(g)):
                ax.plot(g[0], g[1], "*", color=color, ms=8, mec="k", mew=0.4)
        s = res.summary()
        ax.set_title(f"{res.name}\nsuccess {s['success_rate']:.2f}, {s['latency_ms']:.1f} ms/step", fontsize=9)
        ax.set_xlabel("x (m)")
        ax.set_xlim(mid[0] - half, mid[0] + half)
        ax.set_ylim(mid[1] - half, mid[1] + half)
        ax.set_aspect("equal", adjustable="box")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("y (m)")
    if title:
        fig.suptitle(title, fontsize=10, y=1.03)
    fig.tight_layout()
    return save_figure(fig, path, dpi=90, bbox_inches="tight")


__all__ = ["plot_rollouts"]
