"""Pretrained defaults shipped inside a package: written once by ``scripts/pretrain.py <pkg>``, used by a
domain verb when it gets no ``--ckpt``.

A shipped default is an ordinary Lightning checkpoint, loaded by the one loader
(:func:`~difflab.core.lightning.checkpoint.load_checkpoint`), stored slim:

* only what loading needs: the model's ``state_dict`` (the EMA weights where the run averaged them,
  as Lightning swaps them in at the end of ``fit``), its hyperparameters and class, the data module's
  hyperparameters and whatever the module's ``on_save_checkpoint`` adds (a tokenizer, say); no
  optimiser, scheduler, callback or loop state;
* the floating-point *parameters* in float16 (half the bytes; buffers such as noise-schedule tables
  keep their precision). Loading copies them into the float32 model, so a shipped model runs in
  float32 and differs from its training run only by the rounding of its weights;
* a ``difflab_pretrained`` entry: the training command, seed, wall time, data and the evaluation
  summary, plus ``sampling`` (the sampler and step count that worked best, for verbs whose
  ``--sampler`` is not given).

Files live at ``difflab/<package>/pretrained/<name>.ckpt`` (package data, installed with the wheel).
"""

from __future__ import annotations

import os
import tempfile
from importlib.resources import files
from pathlib import Path
from typing import Any

import torch

from difflab.core.lightning.checkpoint import CheckpointError, read_checkpoint

META_KEY = "difflab_pretrained"
"""The checkpoint entry holding a shipped default's provenance and recommended sampling."""

DROPPED_KEYS = ("loops", "callbacks", "optimizer_states", "lr_schedulers", "current_model_state")
"""Training state a shipped default does not carry."""


def shipped_path(package: str, name: str) -> Path:
    """Where package ``difflab.<package>`` keeps its pretrained default ``name`` (it may not exist)."""
    return Path(str(files(f"difflab.{package}"))) / "pretrained" / f"{name}.ckpt"


def checkpoint_or_default(ckpt: str | os.PathLike | None, package: str, name: str) -> Path:
    """``ckpt`` when given, otherwise the shipped default ``name`` of ``package``.

    Raises:
        CheckpointError: no ``ckpt`` and no shipped default (one line saying how to get one).
    """
    if ckpt is not None and str(ckpt) != "":
        return Path(ckpt)
    path = shipped_path(package, name)
    if not path.is_file():
        raise CheckpointError(
            f"--ckpt: none given and difflab-{package} ships no pretrained '{name}' model; "
            f"pass a checkpoint of fit, or train the default with: python scripts/pretrain.py {package}"
        )
    return path


def pretrained_info(path: str | os.PathLike) -> dict[str, Any]:
    """The ``difflab_pretrained`` entry of checkpoint ``path`` (empty for an ordinary checkpoint)."""
    info = read_checkpoint(path).get(META_KEY)
    return dict(info) if isinstance(info, dict) else {}


def recommended_sampling(path: str | os.PathLike) -> dict[str, Any]:
    """The sampler settings recorded with a shipped default (``{"sampler": ..., "steps": ...}``), or ``{}``."""
    sampling = pretrained_info(path).get("sampling")
    return dict(sampling) if isinstance(sampling, dict) else {}


def slim_checkpoint(checkpoint: dict, parameter_names: set[str], *, half: bool = True) -> dict:
    """``checkpoint`` without training state, its floating parameters in float16 when ``half``."""
    out = {k: v for k, v in checkpoint.items() if k not in DROPPED_KEYS}
    state = {}
    for key, value in checkpoint["state_dict"].items():
        if half and key in parameter_names and torch.is_tensor(value) and value.is_floating_point():
            value = value.detach().to(torch.float16)
        state[key] = value
    out["state_dict"] = state
    return out


def write_pretrained(
    source: str | os.PathLike,
    model: torch.nn.Module,
    out: str | os.PathLike,
    *,
    meta: dict[str, Any],
    half: bool = True,
    network: dict[str, Any] | None = None,
) -> Path:
    """Write the full Lightning checkpoint ``source`` of ``model`` as a shipped default at ``out``.

    Args:
        source: a checkpoint written by the ``Trainer`` that trained ``model`` (``train_briefly``'s
            ``checkpoint``, ``trainer.save_checkpoint``): an EMA callback has put its averaged weights
            in its ``state_dict``, and the data module's hyperparameters and the module's own
            ``on_save_checkpoint`` entries are in it.
        model: the trained module (its parameter names decide what is stored in float16).
        out: the ``.ckpt`` file to write (replaced atomically).
        meta: provenance and evaluation (JSON-like), stored under ``difflab_pretrained``; a
            ``sampling`` entry (``{"sampler": name, "steps": n}``) is what verbs use by default.
        half: store the floating parameters in float16.
        network: for a module built in Python (a pretraining recipe) rather than by the command line,
            its network as the command line records it, ``{"class_path": ..., "init_args": {...}}``:
            it replaces the network object in the stored hyperparameters, so the one loader rebuilds
            the model (the optimiser and scheduler are not recorded).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = torch.load(source, map_location="cpu", weights_only=False)
    if network is not None:
        hp = dict(checkpoint["hyper_parameters"])
        hp["network"] = {"class_path": network["class_path"], "init_args": dict(network["init_args"])}
        hp["_instantiator"] = "lightning.pytorch.cli.instantiate_module"
        checkpoint["hyper_parameters"] = hp
    slim = slim_checkpoint(checkpoint, {n for n, _ in model.named_parameters()}, half=half)
    cls = type(model)
    slim.setdefault("difflab_class", f"{cls.__module__}.{cls.__qualname__}")
    slim[META_KEY] = dict(meta)
    with tempfile.NamedTemporaryFile(dir=out.parent, suffix=".part", delete=False) as part:
        torch.save(slim, part)
    os.chmod(part.name, 0o644)  # package data: readable by every user of an installation
    os.replace(part.name, out)
    return out


def export_pretrained(
    trainer: Any, model: torch.nn.Module, out: str | os.PathLike, *, meta: dict[str, Any], half: bool = True
) -> Path:
    """:func:`write_pretrained` of the model a ``trainer`` has just fitted (it writes the full checkpoint)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        full = Path(tmp) / "full.ckpt"
        trainer.save_checkpoint(full)
        return write_pretrained(full, model, out, meta=meta, half=half)


__all__ = [
    "META_KEY",
    "checkpoint_or_default",
    "export_pretrained",
    "pretrained_info",
    "recommended_sampling",
    "shipped_path",
    "slim_checkpoint",
    "write_pretrained",
]
