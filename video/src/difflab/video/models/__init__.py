"""Temporal action detectors: DiffTAD and its deterministic (learned-query) baseline."""

from difflab.video.models.detr_baseline import DeterministicTAD
from difflab.video.models.difftad import DiffTAD

__all__ = ["DeterministicTAD", "DiffTAD"]
