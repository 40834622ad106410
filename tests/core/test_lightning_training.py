"""Training through the shared command line: learning, multi-process DDP, kill-and-resume, exact resume.

Every run writes under ``tmp_path`` and uses the CPU.
"""

import copy
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import yaml

from difflab.core.cli import run_cli
from difflab.core.lightning import DiffusionModule, ToyDataModule
from difflab.core.lightning.toy import mixture_metrics

BASE_DATA = ToyDataModule.__mro__[1]  # LightningDataModule: any data module class is accepted


pytestmark = pytest.mark.usefixtures("one_thread")


def write_config(
    root: Path,
    *,
    max_epochs=-1,
    max_steps=-1,
    every_n_train_steps=3,
    logger=False,
    model=None,
    data=None,
    ema_decay=0.9,
    trainer=None,
    seed=0,
) -> str:
    """A complete toy config under ``root``: EMA, last.ckpt every N steps and at every epoch end."""
    root.mkdir(parents=True, exist_ok=True)
    ckpt = str(root / "ckpt")
    config = {
        "seed_everything": seed,
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "max_epochs": max_epochs,
            "max_steps": max_steps,
            "log_every_n_steps": 1,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "default_root_dir": str(root),
            "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(root)}}
            if logger
            else False,
            "callbacks": [
                {"class_path": "lightning.pytorch.callbacks.EMAWeightAveraging", "init_args": {"decay": ema_decay}},
                {
                    "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                    "init_args": {
                        "dirpath": ckpt,
                        "save_last": True,
                        "save_top_k": 0,
                        "every_n_train_steps": every_n_train_steps,
                        "enable_version_counter": False,
                    },
                },
                {
                    "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                    "init_args": {
                        "dirpath": ckpt,
                        "save_last": True,
                        "every_n_epochs": 1,
                        "enable_version_counter": False,
                    },
                },
            ],
            **(trainer or {}),
        },
        "model": {
            "class_path": "difflab.core.lightning.toy.ToyDiffusion",
            "init_args": {
                "hidden": 32,
                "depth": 2,
                "embed_dim": 16,
                "sample_steps": 5,
                "num_val_samples": 32,
                "optimizer": {"class_path": "torch.optim.Adam", "init_args": {"lr": 0.01}},
                "lr_scheduler": {
                    "class_path": "torch.optim.lr_scheduler.StepLR",
                    "init_args": {"step_size": 5, "gamma": 0.7},
                },
                **(model or {}),
            },
        },
        "data": {
            "class_path": "difflab.core.lightning.data.ToyDataModule",
            "init_args": {"n_train": 256, "n_val": 64, "batch_size": 32, **(data or {})},
        },
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def fit(config: str, *extra: str, **cli_kwargs):
    return run_cli(DiffusionModule, BASE_DATA, package="core", args=["fit", "-c", config, *extra], **cli_kwargs)


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def _train_losses(root: Path) -> list[float]:
    import csv

    (metrics,) = root.glob("lightning_logs/version_*/metrics.csv")
    with open(metrics) as f:
        return [float(r["train/loss_step"]) for r in csv.DictReader(f) if r.get("train/loss_step")]


@pytest.mark.slow
def test_cli_training_lands_on_the_modes(tmp_path, test_seed, record_property):
    """3000 steps on the 8-mode ring (std 0.1): the loss falls and ancestral samples sit on the modes.

    Over ``DIFFLAB_TEST_SEED`` 0-4 (one thread; ``python scripts/learning_spread.py
    tests/core/test_lightning_training.py::test_cli_training_lands_on_the_modes --seeds 0-4``; the
    prior's near-mode share is about 0.1):

    | seed | last / first loss | near a mode | mode-weight error |
    |---|---|---|---|
    | 0 | 0.297 | 0.880 | 0.050 |
    | 1 | 0.343 | 0.908 | 0.035 |
    | 2 | 0.456 | 0.900 | 0.024 |
    | 3 | 0.348 | 0.935 | 0.040 |
    | 4 | 0.424 | 0.919 | 0.054 |
    | mean | 0.374 | 0.908 | 0.041 |

    Two threads (seeds 0-1): the same numbers to the last digit. Seeds 5-25 (``--seeds 5-25``,
    2026-12-07): loss ratio 0.309-0.451, near a mode 0.808-0.945 (mean 0.899; seed 17 0.808, seed
    13 0.825), weight error 0.019-0.054.

    Asserted: loss ratio < 0.6, near-mode > 0.7 and 0.5 above the prior's, weight error < 0.1. The
    near-mode bound was 0.8, set from seeds 0-4, until seed 17 came within 0.01 of it."""
    steps = 3000
    config = write_config(
        tmp_path,
        max_epochs=30,
        logger=True,
        ema_decay=0.99,
        every_n_train_steps=1000,
        trainer={"check_val_every_n_epoch": 5, "limit_val_batches": 1},
        model={
            "hidden": 64,
            "depth": 3,
            "embed_dim": 32,
            "sampler": "ddpm",
            "sample_steps": 100,
            "num_val_samples": 1000,
            "optimizer": {"class_path": "torch.optim.Adam", "init_args": {"lr": 0.003}},
            "lr_scheduler": {
                "class_path": "torch.optim.lr_scheduler.CosineAnnealingLR",
                "init_args": {"T_max": steps, "eta_min": 0.00015},
            },
        },
        data={"n_train": 25600, "n_val": 256, "batch_size": 256, "mode_std": 0.1},
        seed=test_seed,
    )
    cli = fit(config)
    assert cli.trainer.global_step == steps
    losses = _train_losses(tmp_path)
    first, last = sum(losses[:10]) / 10, sum(losses[-100:]) / 100
    metrics = {k: float(v) for k, v in cli.trainer.callback_metrics.items()}
    prior = torch.randn(1000, 2, generator=torch.Generator().manual_seed(0))
    baseline = mixture_metrics(cli.datamodule.mixture, prior)
    print(f"\ntrain loss {first:.3f} -> {last:.3f}; samples {metrics}; prior {baseline}")
    for k in ("near_mode", "mode_weight_error"):
        record_property(k, metrics[f"val/{k}"])
    record_property("loss_ratio", last / first)
    assert last < 0.6 * first
    assert metrics["val/near_mode"] > 0.7 and metrics["val/near_mode"] > baseline["near_mode"] + 0.5
    assert metrics["val/mode_weight_error"] < 0.1


@pytest.mark.slow
def test_ddp_two_cpu_processes_train(tmp_path):
    """``--trainer.strategy ddp --trainer.devices 2`` on CPU (gloo): both ranks train, rank 0 checkpoints."""
    config = write_config(tmp_path, max_steps=30, logger=True, every_n_train_steps=10)
    cmd = [
        sys.executable,
        "-m",
        "difflab.core.cli",
        "fit",
        "-c",
        config,
        "--trainer.strategy",
        "ddp",
        "--trainer.devices",
        "2",
        "--trainer.accelerator",
        "cpu",
    ]
    out = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    ckpt = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 30
    losses = _train_losses(tmp_path)
    assert len(losses) == 30 and sum(losses[-5:]) < sum(losses[:5])
    # each rank draws batches of 32 from its own half of the 256 points: 4 batches per epoch
    assert ckpt["epoch"] == 30 // 4


def _wait_for_checkpoint(path: Path, proc: subprocess.Popen, min_step: int, timeout: float) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"training ended early: {proc.communicate()[1][-3000:]}")
        if path.is_file():
            try:
                step = torch.load(path, weights_only=False)["global_step"]
            except Exception:  # being written
                step = -1
            if step >= min_step:
                return step
        time.sleep(0.2)
    raise AssertionError("no checkpoint in time")


class _Probe(pl.Callback):
    """Records the restored training state when training (re)starts."""

    def on_train_start(self, trainer, pl_module):
        ema = next(cb for cb in trainer.callbacks if isinstance(cb, pl.callbacks.EMAWeightAveraging))
        self.state = {
            "global_step": trainer.global_step,
            "model": {k: v.clone() for k, v in pl_module.state_dict().items()},
            "ema": {k: v.clone() for k, v in ema._average_model.module.state_dict().items()},
            "n_averaged": int(ema._average_model.n_averaged),
            "optimizer": copy.deepcopy(trainer.optimizers[0].state_dict()),
            "scheduler": copy.deepcopy(trainer.lr_scheduler_configs[0].scheduler.state_dict()),
        }


@pytest.mark.slow
def test_killed_run_resumes_with_everything_restored(tmp_path):
    """SIGKILL a training process after a checkpoint; ``--ckpt_path last`` restores model, EMA, optimiser,
    LR scheduler and step, and the continued run equals a run that was never killed."""
    run_dir = tmp_path / "killed"
    config = write_config(run_dir, max_steps=100_000, every_n_train_steps=5)
    cmd = [sys.executable, "-m", "difflab.core.cli", "fit", "-c", config]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_checkpoint(run_dir / "ckpt" / "last.ckpt", proc, min_step=12, timeout=240)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    ckpt = torch.load(run_dir / "ckpt" / "last.ckpt", weights_only=False)
    step = ckpt["global_step"]
    assert step % 5 == 0 or step % 8 == 0  # a step checkpoint or an epoch-end one (8 batches per epoch)

    probe = _Probe()
    resumed = fit(
        config, "--ckpt_path", "last", "--trainer.max_steps", str(step + 7), trainer_defaults={"callbacks": [probe]}
    )
    got = probe.state
    assert got["global_step"] == step and resumed.trainer.global_step == step + 7
    for key, value in ckpt["current_model_state"].items():  # online weights
        assert torch.equal(got["model"][key], value), key
    for key, value in ckpt["state_dict"].items():  # EMA weights
        assert torch.equal(got["ema"][key], value), key
    assert got["n_averaged"] == int(ckpt["averaging_state"]["n_averaged"]) == step
    saved_opt = ckpt["optimizer_states"][0]
    assert got["optimizer"]["state"][0]["step"] == saved_opt["state"][0]["step"] == step
    for i, s in saved_opt["state"].items():
        assert torch.equal(got["optimizer"]["state"][i]["exp_avg_sq"], s["exp_avg_sq"])
    assert got["scheduler"] == ckpt["lr_schedulers"][0] and got["scheduler"]["last_epoch"] == step
    assert ckpt["difflab_noise_seed"] == 0

    reference = fit(write_config(tmp_path / "reference", max_steps=step + 7, every_n_train_steps=5))
    ref_state, res_state = reference.model.state_dict(), resumed.model.state_dict()
    for key in ref_state:
        assert torch.allclose(ref_state[key], res_state[key], atol=1e-6), key


class _Crash(pl.Callback):
    def __init__(self, at_step: int):
        self.at_step = at_step

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.at_step:
            raise KeyboardInterrupt  # Lightning stops the process's training as for Ctrl-C


@pytest.mark.parametrize("stop", ["epoch_boundary", "mid_epoch"])
def test_resume_reaches_the_uninterrupted_weights(tmp_path, stop):
    """Stopped after 2 of 4 epochs (or crashed inside epoch 2) and resumed with ``--ckpt_path last``:
    online weights, EMA weights, optimiser and LR scheduler equal those of an uninterrupted 4-epoch run."""
    reference = fit(write_config(tmp_path / "reference", max_epochs=4))
    run = tmp_path / "resumed"
    if stop == "epoch_boundary":
        first = fit(write_config(run, max_epochs=2))
        assert first.trainer.global_step == 16
    else:
        with pytest.raises(SystemExit):
            fit(write_config(run, max_epochs=4), trainer_defaults={"callbacks": [_Crash(14)]})
        assert torch.load(run / "ckpt" / "last.ckpt", weights_only=False)["global_step"] == 12
    resumed = fit(write_config(run, max_epochs=4), "--ckpt_path", "last")
    assert resumed.trainer.global_step == reference.trainer.global_step == 32

    ref_final, res_final = reference.model.state_dict(), resumed.model.state_dict()  # EMA weights after fit
    assert all(torch.equal(ref_final[k], res_final[k]) for k in ref_final)
    ref_ckpt = torch.load(tmp_path / "reference" / "ckpt" / "last.ckpt", weights_only=False)
    res_ckpt = torch.load(run / "ckpt" / "last.ckpt", weights_only=False)
    for key, value in ref_ckpt["current_model_state"].items():
        assert torch.equal(value, res_ckpt["current_model_state"][key]), key
    ref_opt, res_opt = ref_ckpt["optimizer_states"][0]["state"], res_ckpt["optimizer_states"][0]["state"]
    for a, b in zip(ref_opt.values(), res_opt.values()):
        assert torch.equal(a["exp_avg"], b["exp_avg"])
    assert ref_ckpt["lr_schedulers"] == res_ckpt["lr_schedulers"]
    assert math.isclose(
        float(reference.trainer.callback_metrics["val/loss"]), float(resumed.trainer.callback_metrics["val/loss"])
    )
