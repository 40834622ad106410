"""Text figures: sample quality against sampling steps, and seq2seq BLEU against MBR draws."""

from __future__ import annotations

from pathlib import Path

from difflab.core.figures import pyplot, save_figure

REFERENCE_COLOURS = (("real held-out text", "C2"), ("shuffled-token text", "C3"), ("AR samples", "C1"))


def plot_quality_vs_steps(png: Path, rows: list[dict], base: list[dict], title: str) -> Path:
    """Generative perplexity and distinct-2 of the MDLM sample sets against their sampling steps.

    ``rows``: one dict per step count with ``steps``, ``gen_ppl``, ``d2`` and ``sec``; ``base``: the
    reference sets in the order of :data:`REFERENCE_COLOURS` (real text first), drawn as lines.
    """
    plt = pyplot()
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    st = [r["steps"] for r in rows]
    ax[0].plot(st, [r["gen_ppl"] for r in rows], "o-", color="C0", label="MDLM samples")
    for (name, color), b in zip(REFERENCE_COLOURS, base):
        ax[0].axhline(b["gen_ppl"], ls="--", color=color, label=name)
    ax[0].set_xscale("log", base=2)
    ax[0].set_yscale("log")
    ax[0].set_xlabel("sampling steps")
    ax[0].set_ylabel("generative perplexity (AR scorer)")
    ax[0].set_title("sample quality vs steps (lower is better)")
    ax[0].legend(fontsize=8)
    ax[1].plot(st, [r["d2"] for r in rows], "o-", color="C0", label="MDLM distinct-2")
    ax[1].axhline(base[0]["d2"], ls="--", color="C2", label="real text distinct-2")
    ax[1].set_ylim(0.0, 1.05)
    ax[1].set_ylabel("distinct-2")
    sec_ax = ax[1].twinx()
    sec_ax.plot(st, [r["sec"] for r in rows], "s:", color="C4", label="MDLM sampling seconds")
    sec_ax.set_ylabel("seconds")
    ax[1].set_xscale("log", base=2)
    ax[1].set_xlabel("sampling steps")
    ax[1].set_title("diversity and sampling time")
    ax[1].legend(fontsize=8, loc="lower left")
    sec_ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, png, dpi=90)


def plot_bleu_vs_draws(png: Path, bleu_by_draws: dict[int, float], copy: float, other: float, title: str) -> Path:
    """Plot corpus BLEU against the number of MBR draws, with the copy and unrelated-verse lines."""
    plt = pyplot()
    counts, bleu = list(bleu_by_draws), list(bleu_by_draws.values())
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    ax.plot(counts, bleu, "o-", color="C0", label="DiffuSeq, MBR over the draws")
    ax.axhline(copy, color="C3", ls="--", label=f"copying the source ({copy:.1f})")
    ax.axhline(other, color="0.5", ls=":", label=f"an unrelated verse ({other:.1f})")
    for k, b in zip(counts, bleu, strict=True):
        ax.annotate(f"{b:.1f}", (k, b), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xticks(counts, [str(k) for k in counts])
    ax.set_xlabel("draws per source (minimum-Bayes-risk selection)")
    ax.set_ylabel("corpus BLEU")
    ax.set_ylim(-2, 80)
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 0.06))
    fig.tight_layout()
    return save_figure(fig, png, dpi=110)


__all__ = ["plot_bleu_vs_draws", "plot_quality_vs_steps"]
