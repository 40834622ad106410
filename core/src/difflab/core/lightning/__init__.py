"""Lightning glue shared by every difflab domain: the ``DiffusionModule`` base, the checkpoint loader,
toy data and model.

The math modules of ``difflab.core`` never import this package; it needs the ``lightning`` extra
(``pip install 'difflab-core[lightning]'``).
"""

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
from difflab.core.lightning.module import DiffusionModule, NoiseStream, cli_given_hparams
from difflab.core.lightning.toy import ToyDiffusion, ToyMLP
from difflab.core.lightning.train import train_briefly

__all__ = [
    "CheckpointError",
    "load_checkpoint",
    "read_checkpoint",
    "WarmupEMA",
    "warmup_decay",
    "DiffusionModule",
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
