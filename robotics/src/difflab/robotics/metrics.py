"""Rollout metrics and the comparison table.

For every sampler: success rate (fraction of episodes with ``info["success"]`` at any step before
the step limit; Meta-World's criterion, e.g. hand within 5 cm of the goal for reach), mean return
(sum of Meta-World's shaped reward until success or the limit), latency per control step (ms:
the controller's wall time averaged over all environment steps, so a chunk computed every ``Ta``
steps is spread over them), latency per inference call (ms: the steps that ran the network; for
RTI-DP mostly the short warm-started calls), the longest single call (ms, for RTI-DP the full first
call of an episode), NFE per control step and, for
ParaDiGMS, sequential network rounds per control step (its latency on parallel hardware).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from difflab.core.tables import markdown_table

COLUMNS = (
    ("success_rate", "success", "{:.2f}"),
    ("mean_return", "return", "{:.0f}"),
    ("latency_ms", "ms/step", "{:.2f}"),
    ("ms_per_call", "ms/call", "{:.1f}"),
    ("max_call_ms", "max call ms", "{:.0f}"),
    ("nfe_per_step", "NFE/step", "{:.2f}"),
    ("rounds_per_step", "rounds/step", "{:.2f}"),
)


def success_rate(success: Sequence[bool]) -> float:
    return float(np.mean(np.asarray(success, dtype=float))) if len(success) else 0.0


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a success rate ``k / n`` (95 % by default)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return float(mid - half), float(mid + half)


def format_table(rows: dict[str, dict[str, float]]) -> str:
    """A markdown table, one row per sampler name, columns of :data:`COLUMNS`."""
    cells = [[name, *(fmt.format(s[key]) if key in s else "-" for key, _, fmt in COLUMNS)] for name, s in rows.items()]
    return markdown_table(cells, ["sampler", *(c[1] for c in COLUMNS)])


__all__ = ["COLUMNS", "success_rate", "wilson_interval", "format_table"]
