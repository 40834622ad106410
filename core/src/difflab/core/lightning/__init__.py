"""Lightning glue shared by every difflab domain: the ``TrainedModule`` and ``DiffusionModule`` bases,
the checkpoint loader, toy data and model.

The math modules of ``difflab.core`` never import this package; it needs the ``lightning`` extra
(``pip install 'difflab-core[lightning]'``).
"""

from difflab.core.lightning.base import NoiseStream, TrainedModule, cli_given_hparams, eval_mode
from difflab.core.lightning.callbacks import LineProgressBar, MetricsSummary, ResumableCheckpoint
from difflab.core.lightning.checkpoint import CheckpointError, load_checkpoint, read_checkpoint
from difflab.core.lightning.data import (
    EpochShuffleSampler,
    ResumableLoader,
    SplitDataModule,
    ToyDataModule,
    fit_position,
    resumable_train_loader,
)
from difflab.core.lightning.ema import WarmupEMA, warmup_decay
from difflab.core.lightning.module import DiffusionModule
from difflab.core.lightning.toy import ToyDiffusion, ToyMLP
from difflab.core.lightning.train import train_briefly

__all__ = [
    "LineProgressBar",
    "MetricsSummary",
    "ResumableCheckpoint",
    "CheckpointError",
    "load_checkpoint",
    "read_checkpoint",
    "WarmupEMA",
    "warmup_decay",
    "DiffusionModule",
    "TrainedModule",
    "eval_mode",
    "cli_given_hparams",
    "NoiseStream",
    "ToyDataModule",
    "EpochShuffleSampler",
    "ResumableLoader",
    "SplitDataModule",
    "fit_position",
    "resumable_train_loader",
    "ToyDiffusion",
    "ToyMLP",
    "train_briefly",
]
