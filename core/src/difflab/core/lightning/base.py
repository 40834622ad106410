r"""``TrainedModule``: the LightningModule every trained difflab model derives from.

Diffusion methods derive from :class:`~difflab.core.lightning.module.DiffusionModule`, which derives
from this class; the baselines they are measured against (an autoregressive language model,
behaviour cloning, a deterministic detector, a point filter) derive from it directly. It holds what
every trained model needs, once:

* **optimiser and scheduler**: injected as callables (``OptimizerCallable``; in YAML a
  ``class_path`` with ``init_args``), the scheduler stepped every ``lr_interval``;
  :meth:`TrainedModule.configure_optimizers` builds both over :meth:`trainable_parameters`.
* **randomness**: :meth:`TrainedModule.noise_generator` gives every batch of every stage its own
  generator, seeded by ``(noise seed, stream, *tags, rank)``. The noise seed is
  ``PL_GLOBAL_SEED`` (``--seed_everything``) and is stored in the checkpoint, so a resumed run draws
  exactly the noise of the uninterrupted one and validation noise is the same every epoch.
* **hyper-parameters**: :meth:`TrainedModule.save_init_hyperparameters`. Under LightningCLI the
  saved hyper-parameters are the parsed configuration (class paths and init args), from which
  ``load_from_checkpoint`` rebuilds injected objects (the network, the optimiser); called from
  Python, injected objects are left out (they live in the state dict or in code).
* **figures**: :meth:`TrainedModule.log_figure` sends a matplotlib figure to every logger that takes
  pictures, else writes it under :meth:`TrainedModule.artifact_dir`.
* **loading from a base class**: ``TrainedModule.load_from_checkpoint(path)`` rebuilds the
  (already imported) subclass a checkpoint names; classes are never imported from a checkpoint.

:func:`eval_mode` is the one way to evaluate a module in eval mode and restore its mode afterwards.
"""

from __future__ import annotations

import copy
import inspect
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn

from difflab.core.errors import UserError
from difflab.core.lightning.checkpoint import CheckpointError, read_checkpoint, recorded_class, resolve_class


class NoiseStream(IntEnum):
    """Independent random streams of :meth:`TrainedModule.noise_generator` (first word of its seed)."""

    TRAIN = 0
    VAL = 1
    TEST = 2
    PREDICT = 3
    SAMPLE = 4


def cli_given_hparams() -> bool:
    """True while LightningCLI instantiates the module (it then supplies the hyperparameters itself)."""
    try:
        from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters
    except ImportError:  # pragma: no cover - other Lightning versions
        return False
    return _given_hyperparameters.get() is not None


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put ``module`` in eval mode for the ``with`` block, then back in the mode it was in (also on error)."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def _checkpoint_class(path: Any, base: type) -> type | None:
    """The already imported subclass of ``base`` that a checkpoint records, or ``None`` (also for a
    file that is not a readable checkpoint: Lightning's loader then reports it)."""
    if not isinstance(path, (str, os.PathLike)):
        return None
    try:
        checkpoint = read_checkpoint(path)
    except CheckpointError:
        return None
    class_path = recorded_class(checkpoint)
    return resolve_class(class_path, base) if class_path else None


class TrainedModule(LightningModule):
    """Base LightningModule of every trained difflab model (see the module docstring).

    ``DATA_SETTINGS`` names hyper-parameters that the data decides (``{"sample_rate": "the model
    works at {} Hz"}``: the text describes the model's value in an error). In :meth:`setup` a model
    that starts training takes each from the data module's attribute of the same name (and keeps it
    in its checkpoint); a trained model whose value differs gets a one-line error naming both
    values and the options (:meth:`take_from_data`).

    Args:
        optimizer: optimiser factory ``params -> Optimizer`` (default ``torch.optim.Adam``, lr 1e-3).
        lr_scheduler: optional scheduler factory ``optimizer -> LRScheduler``.
        lr_interval: step the scheduler every optimiser ``step`` or every ``epoch``.
    """

    DATA_SETTINGS: dict[str, str] = {}

    def __init__(
        self,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        lr_interval: Literal["step", "epoch"] = "step",
    ) -> None:
        super().__init__()
        if lr_interval not in ("step", "epoch"):
            raise ValueError(f"{type(self).__name__}: lr_interval must be 'step' or 'epoch', got {lr_interval!r}")
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        self.lr_interval = lr_interval
        self.noise_seed: int | None = None

    def save_init_hyperparameters(self, objects: Sequence[str] = ("optimizer", "lr_scheduler")) -> None:
        """Save the calling ``__init__``'s arguments as hyper-parameters, leaving out the injected
        ``objects`` unless LightningCLI supplies the parsed configuration (which rebuilds them)."""
        frame = inspect.currentframe()
        caller = frame.f_back if frame is not None else None
        self.save_hyperparameters(ignore=None if cli_given_hparams() else list(objects), frame=caller)

    def __deepcopy__(self, memo: dict) -> TrainedModule:
        """Deep copy (as ``EMAWeightAveraging`` makes) that shares the optimiser / scheduler factories.

        Under LightningCLI those factories keep a reference to the command line object, and with it to
        the trainer; copying them would copy the whole trainer and fails once it holds
        multi-process state (DDP).
        """
        for factory in (self.optimizer_factory, self.lr_scheduler_factory):
            if factory is not None:
                memo[id(factory)] = factory
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        new.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        return new

    # ------------------------------------------------------------------ randomness
    def setup(self, stage: str) -> None:
        if self.noise_seed is None:
            self.noise_seed = int(os.environ.get("PL_GLOBAL_SEED", torch.initial_seed()))
        if self.DATA_SETTINGS and self._trainer is not None:
            data = getattr(self._trainer, "datamodule", None)
            fresh = stage == "fit" and getattr(self._trainer, "ckpt_path", None) is None
            for name in self.DATA_SETTINGS:
                self.take_from_data(name, getattr(data, name, None), fresh)

    def take_from_data(self, name: str, value: Any, fresh: bool) -> None:
        """The data decides ``name``: a model that starts training (``fresh``) takes ``value`` (and
        records it in its hyper-parameters); a trained one must already have it, else a
        :class:`~difflab.core.errors.UserError` naming both values and the options."""
        current = getattr(self, name)
        if value is None or value == current:
            return
        if fresh:
            setattr(self, name, value)
            self.hparams[name] = value
            if getattr(self, "_hparams_initial", None) is not None:  # what the loggers record
                self._hparams_initial[name] = value
            return
        described = self.DATA_SETTINGS.get(name, "the model has {}").format(current)
        raise UserError(
            f"--data.init_args.{name} {value}: {described} (--model.init_args.{name}); "
            f"pass --data.init_args.{name} {current}"
        )

    def noise_generator(self, stream: NoiseStream | int, *tags: int) -> torch.Generator:
        """A generator on the module's device seeded by ``(noise seed, stream, *tags, rank)``.

        ``stream`` is a :class:`NoiseStream` (training noise, validation, test, prediction,
        validation samples); ``tags`` are integers such as the step and batch index, so every batch
        of every stage has its own reproducible noise, also after a resume.
        """
        base = self.noise_seed if self.noise_seed is not None else int(os.environ.get("PL_GLOBAL_SEED", 0))
        rank = self.trainer.global_rank if self._trainer is not None else 0
        words = np.random.SeedSequence([base % 2**63, int(stream), *tags, rank]).generate_state(2, dtype=np.uint32)
        g = torch.Generator(device=self.device)
        g.manual_seed(int(words[0]) << 31 ^ int(words[1]))
        return g

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["difflab_noise_seed"] = self.noise_seed

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if checkpoint.get("difflab_noise_seed") is not None:
            self.noise_seed = int(checkpoint["difflab_noise_seed"])

    # ------------------------------------------------------------------ artifacts
    def artifact_dir(self) -> Path:
        """Folder for files that the logger cannot take: ``<log_dir>/samples``."""
        log_dir = getattr(self.logger, "log_dir", None) if self._trainer is not None and self.logger else None
        if log_dir is None and self._trainer is not None:
            log_dir = self.trainer.default_root_dir
        return Path(log_dir or ".") / "samples"

    def log_figure(self, name: str, figure: Any) -> Path | None:
        """Send a matplotlib figure to every logger that takes pictures (TensorBoard, MLflow, W&B).

        If none does (CSV logger), the figure is written to
        ``artifact_dir() / f"{name}_step{global_step}.png"`` and that path is returned. Without any
        logger (``logger: false``) nothing is written.
        """
        step = self.global_step
        taken = False
        for logger in self.loggers if self._trainer is not None else []:
            experiment = getattr(logger, "experiment", None)
            kind = type(logger).__name__
            if kind == "TensorBoardLogger" and hasattr(experiment, "add_figure"):
                experiment.add_figure(name, figure, global_step=step, close=False)
                taken = True
            elif kind == "MLFlowLogger" and hasattr(experiment, "log_figure"):
                experiment.log_figure(logger.run_id, figure, f"{name}_step{step:07d}.png")
                taken = True
            elif kind == "WandbLogger" and hasattr(logger, "log_image"):
                logger.log_image(key=name, images=[figure], step=step)
                taken = True
        if taken or self._trainer is None or not self.loggers:  # logging switched off: nothing is written
            return None
        path = self.artifact_dir() / f"{name.replace('/', '_')}_step{step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=100)
        return path

    # ------------------------------------------------------------------ loading
    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, map_location=None, hparams_file=None, strict=None, **kwargs):
        """Lightning's ``load_from_checkpoint``, also from a base class: a checkpoint written under
        LightningCLI names its class (``_class_path``), and an already imported subclass of ``cls``
        of that name is rebuilt (``DiffusionModule.load_from_checkpoint(path)`` returns a
        ``ToyDiffusion`` for a ``ToyDiffusion`` checkpoint). Classes are never imported from a checkpoint.
        """
        target = _checkpoint_class(checkpoint_path, cls)
        if target is not None and target is not cls:
            return target.load_from_checkpoint(checkpoint_path, map_location, hparams_file, strict, **kwargs)
        return super().load_from_checkpoint(checkpoint_path, map_location, hparams_file, strict, **kwargs)

    # ------------------------------------------------------------------ optimisation
    def trainable_parameters(self) -> Iterable[nn.Parameter]:
        """The parameters the optimiser updates (all of them; a model with a frozen part overrides this)."""
        return self.parameters()

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.trainable_parameters())
        if self.lr_scheduler_factory is None:
            return optimizer
        scheduler = self.lr_scheduler_factory(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": self.lr_interval}}


__all__ = ["NoiseStream", "TrainedModule", "cli_given_hparams", "eval_mode"]
