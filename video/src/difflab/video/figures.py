"""Detection timelines: ground truth against detections, one colour per class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from difflab.core.figures import pyplot, save_figure


def save_timelines(
    path: str | Path,
    videos: list[dict[str, Any]],
    classes: list[str],
    *,
    min_score: float = 0.3,
    title: str | None = None,
) -> Path:
    """One panel per video with a row of ground-truth segments and one row per detector.

    Args:
        videos: ``[{"video_id", "duration", "gt": [{"label", "segment"}], "rows": {name: detections}}]``;
            detections are ActivityNet dicts, drawn when ``score >= min_score`` with opacity = score.
        classes: class names (the colour order).
    """
    from matplotlib.patches import Patch

    plt = pyplot()
    cmap = plt.get_cmap("tab20")
    colour = {c: cmap(i % 20) for i, c in enumerate(classes)}
    n = len(videos)
    row_names = ["ground truth", *videos[0]["rows"].keys()] if videos else ["ground truth"]
    fig, axes = plt.subplots(n, 1, figsize=(11, 0.55 * len(row_names) * n + 1.2), squeeze=False)
    used: set[str] = set()
    for ax, v in zip(axes[:, 0], videos):
        rows = [v["gt"], *v["rows"].values()]
        for r, dets in enumerate(rows):
            y = len(rows) - 1 - r
            ordered = sorted(dets, key=lambda d: d.get("score", 1.0))
            for d in ordered:
                score = float(d.get("score", 1.0))
                if score < min_score:
                    continue
                s, e = d["segment"]
                ax.barh(
                    y,
                    e - s,
                    left=s,
                    height=0.7,
                    color=colour.get(d["label"], "grey"),
                    alpha=min(1.0, 0.25 + 0.75 * score),
                    edgecolor="black",
                    linewidth=0.4,
                )
                used.add(d["label"])
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels(list(reversed(row_names)), fontsize=8)
        ax.set_xlim(0, v["duration"])
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.set_title(v["video_id"], fontsize=9, loc="left")
        ax.tick_params(axis="x", labelsize=8)
    axes[-1, 0].set_xlabel("time (s)")
    handles = [Patch(color=colour[c], label=c) for c in classes if c in used]
    fig.legend(handles=handles, loc="lower center", ncol=min(7, max(1, len(handles))), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.06 + 0.02 * (len(handles) > 7), 1, 1))
    return save_figure(fig, path, dpi=90)


__all__ = ["save_timelines"]
