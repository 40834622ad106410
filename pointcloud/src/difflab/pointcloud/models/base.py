"""Shared helpers of the point-cloud methods."""

from __future__ import annotations

from pathlib import Path

from torch import nn


def load_weights_from(module: nn.Module, ckpt: str | Path | None) -> None:
    """Copy the ``state_dict`` of a Lightning checkpoint into ``module`` (for chained stages such as
    flow -> reflow -> distill)."""
    if not ckpt:
        return
    path = Path(ckpt)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint to initialise from not found")
    from difflab.core.lightning import read_checkpoint

    state = read_checkpoint(path, expected="a checkpoint of an earlier stage", lightning=False)
    sd = state.get("state_dict", state)
    missing, unexpected = module.load_state_dict(sd, strict=False)
    net_missing = [k for k in missing if k.startswith("network.")]
    if net_missing:
        raise ValueError(f"{path}: checkpoint lacks {len(net_missing)} network weights (first: {net_missing[0]})")
