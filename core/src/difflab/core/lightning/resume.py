"""Resuming ``fit`` safely, and the callbacks every command-line run gets.

* :func:`resolve_ckpt_path`: ``--ckpt_path last`` means the newest ``last.ckpt`` of any earlier run
  under ``--trainer.default_root_dir`` (runs write into their own version folders, where Lightning's
  own ``last`` would only look into the new, empty one and quietly start from scratch). With no such
  file it is a :class:`~difflab.core.errors.UserError` that says where it looked.
* :func:`check_resume_data`: a checkpoint trained on other data (another file, task or data module)
  is not resumed on this data: the error names the differing settings, old and new.
* :func:`run_callbacks`: the progress display (a bar on a terminal, a line every few seconds
  otherwise) and, for ``fit``, the closing line of validation metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from difflab.core.errors import UserError
from difflab.core.lightning.callbacks import MetricsSummary, progress_bar
from difflab.core.lightning.checkpoint import checkpoint_file, find_last_checkpoint, read_checkpoint

LOADER_SETTINGS = frozenset(
    {"batch_size", "eval_batch_size", "num_workers", "pin_memory", "persistent_workers", "prefetch_factor"}
)
"""Data-module settings that change how data is loaded, not what it is: they may differ on resume."""


def resolve_ckpt_path(value: Any, root: str | Path) -> Any:
    """``value`` with ``"last"`` replaced by :func:`find_last_checkpoint` of ``root``."""
    if value != "last":
        return value
    found = find_last_checkpoint(root)
    if found is None:
        raise UserError(
            f"--ckpt_path last: no last.ckpt of an earlier run under {root} (looked for {root}/**/last*.ckpt); "
            "train without --ckpt_path, give a checkpoint file, or set --trainer.default_root_dir to the earlier run's"
        )
    print(f"resuming from {found}", flush=True)
    return str(found)


def resolve_cli_ckpt_path(config: Any) -> Any:
    """Check and resolve the ``ckpt_path`` of a parsed LightningCLI ``config`` in place, before
    anything is built: ``last`` becomes the newest ``last.ckpt`` under the run's ``default_root_dir``,
    a folder its newest ``last.ckpt``; a file must be a readable checkpoint. Returns the value as given."""
    import os

    subcommand = config.get("subcommand") if hasattr(config, "get") else None
    if not subcommand or subcommand not in config:
        return None
    section = config[subcommand]
    given = section.get("ckpt_path")
    if given == "last":
        trainer = section.get("trainer") or {}
        root = trainer.get("default_root_dir") if hasattr(trainer, "get") else None
        section["ckpt_path"] = resolve_ckpt_path("last", root or os.getcwd())
    elif isinstance(given, (str, Path)) and str(given) not in ("best", "hpc", "registry"):
        found = checkpoint_file(given)
        read_checkpoint(found, expected=f"a checkpoint (--ckpt_path {given})")
        section["ckpt_path"] = str(found)
    return given


def checkpoint_globals():
    """Context in which ``torch.load(weights_only=True)`` accepts the types difflab checkpoints hold."""
    import torch

    from difflab.core.lightning.checkpoint import safe_globals

    return torch.serialization.safe_globals(safe_globals())


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def data_differences(saved: dict[str, Any], current: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{name: (saved, current)}`` of the data-module settings that differ (loader settings aside)."""
    out = {}
    for key in sorted(set(saved) & set(current)):
        if key in LOADER_SETTINGS or key.startswith("_instan"):
            continue
        old, new = _plain(saved[key]), _plain(current[key])
        if old != new:
            out[key] = (old, new)
    return out


def check_resume_data(ckpt_path: Any, datamodule: Any, explicit: Any = None) -> None:
    """Raise a :class:`UserError` when the checkpoint at ``ckpt_path`` was trained on other data than
    ``datamodule`` describes (its saved ``datamodule_hyper_parameters`` differ)."""
    if ckpt_path is None or datamodule is None or not isinstance(ckpt_path, (str, Path)):
        return
    option = f"--ckpt_path {explicit}" if explicit not in (None, "last") else "--ckpt_path last"
    checkpoint = read_checkpoint(ckpt_path, expected=f"a checkpoint to resume ({option})")
    saved = checkpoint.get("datamodule_hyper_parameters") or {}
    current = dict(getattr(datamodule, "hparams", {}) or {})
    diffs = data_differences(dict(saved), current)
    if diffs:
        listed = "; ".join(f"data {k}: {old!r} there, {new!r} here" for k, (old, new) in diffs.items())
        raise UserError(
            f"{option}: {ckpt_path} was trained on other data ({listed}); resume it with the same data, "
            "or train on this data in a new run (another --trainer.default_root_dir, without --ckpt_path)"
        )


def run_callbacks(config: dict[str, Any], subcommand: str | None) -> list:
    """Callbacks added to every command-line run: the progress display unless the run switches it off
    or brings its own, and for ``fit`` the closing metrics line."""
    from lightning.pytorch.callbacks import ProgressBar

    given = config.get("callbacks") or []
    given = given if isinstance(given, list) else [given]
    extra: list = []
    if config.get("enable_progress_bar") is not False and not any(isinstance(c, ProgressBar) for c in given):
        extra.append(progress_bar())
    if subcommand == "fit":
        extra.append(MetricsSummary())
    return extra


__all__ = [
    "check_resume_data",
    "checkpoint_globals",
    "resolve_cli_ckpt_path",
    "data_differences",
    "resolve_ckpt_path",
    "run_callbacks",
]
