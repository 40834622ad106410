"""One loader for the checkpoints of every difflab package.

:func:`load_checkpoint` rebuilds the model of a Lightning checkpoint written by ``difflab-<pkg> fit``
(or a demo) for a domain verb::

    from difflab.core.lightning import load_checkpoint
    import difflab.audio.models  # the classes a checkpoint may name must be imported
    model = load_checkpoint("last.ckpt", SpeechEnhancer)

* The file is read with ``torch.load(weights_only=True)``: only tensors, containers, numbers,
  strings and the few types in :func:`safe_globals` are unpickled, never code.
* The class is the one the checkpoint records (``hyper_parameters["_class_path"]``, written by
  LightningCLI, or a ``difflab_class`` entry), looked up only among the already imported subclasses
  of ``expected_base``; a class is never imported because a file names it.
* Every failure (no such file, not a checkpoint, no Lightning keys, a model of another package or
  method) raises :class:`CheckpointError`, a ``ValueError`` whose message is one line naming the file
  and what was expected.
"""

from __future__ import annotations

import os
import pathlib
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from difflab.core.errors import UserError

LIGHTNING_KEYS = ("state_dict", "pytorch-lightning_version")
"""Keys every checkpoint written by a Lightning ``Trainer`` holds."""

CLASS_KEYS = ("_class_path", "difflab_class")
"""Where a checkpoint records its model class: in ``hyper_parameters`` (LightningCLI), or at the top."""


class CheckpointError(UserError, ValueError):
    """A file that is not a loadable checkpoint of the expected kind; the message is one line."""


def safe_globals() -> list[Any]:
    """Types besides tensors and containers that difflab checkpoints hold (paths in hyperparameters,
    the hyperparameter container of Lightning); registered for ``torch.load(weights_only=True)``."""
    from lightning.fabric.utilities.data import AttributeDict

    types: list[Any] = [pathlib.PurePosixPath, pathlib.PosixPath, pathlib.PureWindowsPath, AttributeDict]
    try:
        from jsonargparse import Namespace

        types.append(Namespace)
    except ImportError:  # pragma: no cover - jsonargparse comes with the lightning extra
        pass
    return types


def _expected_text(expected_base: type | tuple[type, ...]) -> str:
    bases = expected_base if isinstance(expected_base, tuple) else (expected_base,)
    return " or ".join(f"{b.__module__}.{b.__qualname__}" for b in bases)


def _unsupported(err: Exception) -> str:
    """What torch's weights-only unpickler refused, without its advice on turning the check off."""
    text = str(err)
    marker = "Unsupported global: GLOBAL "
    if marker in text:
        name = text.split(marker, 1)[1].split()[0]
        return f"it holds an object of type {name}, which a weights-only load does not accept"
    for reason in ("WeightsUnpickler error:", "invalid load key", "failed finding central directory"):
        if reason in text:
            detail = text.split(reason, 1)[1].strip().splitlines()[0] if reason.endswith(":") else reason
            return f"torch cannot read it ({detail.strip() or 'unknown format'})"
    lines = [line for line in text.strip().splitlines() if "weights_only" not in line]
    first = lines[0] if lines else type(err).__name__
    return f"torch cannot read it ({type(err).__name__}: {first[:120]})"


def read_checkpoint(
    path: str | os.PathLike, map_location: Any = "cpu", *, expected: str = "a checkpoint", lightning: bool = True
) -> dict:
    """The dictionary of a Lightning checkpoint, read with ``weights_only=True``.

    ``lightning=False`` also accepts a plain dictionary such as a bare ``state_dict``.

    Raises:
        CheckpointError: ``path`` is missing, not a file torch reads safely, or (with ``lightning``)
            lacks the Lightning keys.
    """
    path = Path(path)
    if not path.is_file():
        problem = "is a folder" if path.is_dir() else "no such file"
        raise CheckpointError(f"{path}: {problem} (expected {expected})")
    try:
        with torch.serialization.safe_globals(safe_globals()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for foreign bytes: report them as one
        raise CheckpointError(f"{path}: not a checkpoint: {_unsupported(err)} (expected {expected})") from None
    if not isinstance(checkpoint, dict) or (lightning and any(key not in checkpoint for key in LIGHTNING_KEYS)):
        held = f"a {type(checkpoint).__name__}" if not isinstance(checkpoint, dict) else "a dictionary without"
        missing = ", ".join(k for k in LIGHTNING_KEYS if not isinstance(checkpoint, dict) or k not in checkpoint)
        what = held if not isinstance(checkpoint, dict) else f"{held} {missing}"
        raise CheckpointError(f"{path}: not a Lightning checkpoint ({what}) (expected {expected})")
    return checkpoint


def recorded_class(checkpoint: dict) -> str | None:
    """The dotted class path a checkpoint records for its model, or ``None``."""
    hparams = checkpoint.get("hyper_parameters") or {}
    for found in (hparams.get(CLASS_KEYS[0]), checkpoint.get(CLASS_KEYS[1])):
        if isinstance(found, str) and found:
            return found
    return None


def _subclasses(bases: tuple[type, ...]) -> Iterator[type]:
    seen: set[type] = set()
    stack = list(bases)
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        yield cls
        stack.extend(cls.__subclasses__())


def resolve_class(class_path: str, expected_base: type | tuple[type, ...]) -> type | None:
    """The imported subclass of ``expected_base`` that ``class_path`` names (its defining module or a
    module re-exporting it), or ``None``. Nothing is imported."""
    bases = expected_base if isinstance(expected_base, tuple) else (expected_base,)
    module_name, _, name = class_path.rpartition(".")
    exported = getattr(sys.modules.get(module_name), name, None)
    for cls in _subclasses(bases):
        if cls.__qualname__ == name and (cls.__module__ == module_name or exported is cls):
            return cls
    return None


def find_last_checkpoint(root: str | os.PathLike) -> Path | None:
    """The most recently written ``last.ckpt`` (or ``last-vN.ckpt``) in or below the folder ``root``
    (a run folder such as ``outputs/audio/sgmse_denoise``), or ``None``."""
    root = Path(root)
    if not root.is_dir():
        return None
    found = [p for p in root.glob("**/last*.ckpt") if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def checkpoint_file(path: str | os.PathLike) -> Path:
    """``path`` itself, or for a folder (a run folder) its newest ``last.ckpt``.

    Raises:
        CheckpointError: a folder without any ``last.ckpt``.
    """
    path = Path(path)
    if not path.is_dir():
        return path
    found = find_last_checkpoint(path)
    if found is None:
        raise CheckpointError(
            f"{path}: a folder with no last.ckpt in it or below it (expected a checkpoint or a run folder)"
        )
    return found


def load_checkpoint(
    path: str | os.PathLike,
    expected_base: type | tuple[type, ...],
    map_location: Any = "cpu",
    *,
    strict: bool | None = None,
):
    """The model of the Lightning checkpoint ``path``, in eval mode.

    Args:
        path: a checkpoint written by a Lightning ``Trainer`` (``fit``, ``train_briefly``, a demo), or a
            run folder (``--trainer.default_root_dir`` of a ``fit``): its newest ``last.ckpt``.
        expected_base: the class (or classes) the model must derive from, such as the package's base
            method class. The class the checkpoint records is looked up among the imported subclasses
            of it; import the package's models first. A checkpoint that records no class is loaded as
            ``expected_base`` itself when that is one class.
        map_location: passed to ``torch.load`` (``"cpu"``, ``"cuda"``, a device).
        strict: passed to ``load_from_checkpoint`` (``None``: Lightning's default, strict).

    Raises:
        CheckpointError: the file is missing, is not a checkpoint, has no Lightning keys, or holds a
            model that is not a subclass of ``expected_base`` (another package or method).
    """
    expected = f"a checkpoint of a {_expected_text(expected_base)}"
    path = checkpoint_file(path)
    checkpoint = read_checkpoint(path, map_location, expected=expected)
    class_path = recorded_class(checkpoint)
    if class_path is None:
        if isinstance(expected_base, tuple):
            raise CheckpointError(f"{path}: the checkpoint records no model class (expected {expected})")
        cls = expected_base
    else:
        cls = resolve_class(class_path, expected_base)
        if cls is None:
            raise CheckpointError(f"{path}: a checkpoint of {class_path} (expected {expected})")
    with torch.serialization.safe_globals(safe_globals()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is an instance of `nn.Module`.*")
        model = cls.load_from_checkpoint(path, map_location=map_location, strict=strict, weights_only=True)
    return model.eval()


__all__ = [
    "CheckpointError",
    "checkpoint_file",
    "find_last_checkpoint",
    "load_checkpoint",
    "read_checkpoint",
    "recorded_class",
    "resolve_class",
    "safe_globals",
]
