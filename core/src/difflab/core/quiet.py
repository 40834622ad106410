"""Third-party messages that say nothing to a difflab user, filtered once for every command line.

Lightning's advertising tips, its note that TensorBoard is not installed (difflab logs to CSV by
default), deprecations inside Lightning's own code (its calls of older jsonargparse functions), its
advice on ``log_every_n_steps`` for short epochs, its note that ``validate`` / ``test`` of a
checkpoint in a new run folder does not take over the old folder's best-model records (nothing is
lost), and its note that the EMA callback's state is not restored outside ``fit`` (the checkpoint's
weights are the averaged ones) are dropped; every other warning is shown, once per place (Python's
default).
"""

from __future__ import annotations

import logging
import warnings

HARMLESS_WARNINGS = (
    r".*`tensorboardX` has been removed as a dependency.*",
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
    r"The number of training batches \(\d+\) is smaller than the logging interval.*",
    r"The dirpath has changed from .* won't be reloaded.*",
    r"\s*(``[\w.]+``|\w+ parameter) was deprecated in v4\.\d+\.\d+ and will be removed in v5",
    r"\s*By default only one JsonargparseDeprecationWarning per type is shown",
    r"You're using the WeightAveraging callback, but loading a checkpoint outside the 'fit' stage.*",
)
"""Message patterns of warnings that are known to be harmless here."""


class _NoTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip:" not in str(record.getMessage())[:16]


def quiet_third_party() -> None:
    """Install the filters (idempotent)."""
    for pattern in HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoTips) for f in logger.filters):
            logger.addFilter(_NoTips())


__all__ = ["HARMLESS_WARNINGS", "quiet_third_party"]
