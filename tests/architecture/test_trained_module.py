"""Every trained model of every package derives from core's ``TrainedModule``: one optimiser and scheduler
construction, one seeded noise stream, one hyper-parameter policy, one figure logger, one loader."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from functools import partial

import pytest
import torch
from lightning.pytorch import LightningModule

from difflab.core.lightning import DiffusionModule, NoiseStream, TrainedModule

PACKAGES = ["audio", "vision", "text", "video", "pointcloud", "timeseries", "robotics"]


def _model_classes() -> list[type]:
    found = []
    for pkg in PACKAGES:
        models = importlib.import_module(f"difflab.{pkg}.models")
        for info in pkgutil.iter_modules(models.__path__):
            module = importlib.import_module(f"{models.__name__}.{info.name}")
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if cls.__module__ == module.__name__ and issubclass(cls, LightningModule):
                    found.append(cls)
    return found


def test_every_lightning_module_of_every_package_is_a_trained_module():
    classes = _model_classes()
    assert len(classes) >= 20, [c.__name__ for c in classes]
    outside = [f"{c.__module__}.{c.__qualname__}" for c in classes if not issubclass(c, TrainedModule)]
    assert not outside, f"not derived from TrainedModule: {outside}"
    baselines = {c.__name__ for c in classes if not issubclass(c, DiffusionModule)}
    assert {"ARLanguageModel", "BCPolicy", "DeterministicTAD", "IterativePFN"} <= baselines


def test_no_model_builds_its_own_optimiser_or_seeds_its_own_generator():
    for cls in _model_classes():
        source = inspect.getsource(cls)
        assert "def configure_optimizers" not in source, cls.__qualname__
        assert ".manual_seed(" not in source, cls.__qualname__


class _Captured(Exception):
    pass


@pytest.mark.parametrize("pkg", PACKAGES)
def test_every_command_line_takes_a_trained_module(pkg, monkeypatch):
    import difflab.core.cli

    def capture(model_class, *args, **kwargs):
        raise _Captured(model_class)

    cli = importlib.import_module(f"difflab.{pkg}.cli")
    monkeypatch.setattr(difflab.core.cli, "run_cli", capture)
    if hasattr(cli, "run_cli"):
        monkeypatch.setattr(cli, "run_cli", capture)
    with pytest.raises(_Captured) as caught:
        cli.main(["fit", "--help"])
    base = caught.value.args[0]
    assert isinstance(base, type) and issubclass(base, TrainedModule), (pkg, base)


class _Tiny(TrainedModule):
    def __init__(self, width: int = 3, network: torch.nn.Module | None = None, optimizer=torch.optim.SGD, **kw):
        super().__init__(optimizer, **kw)
        self.save_init_hyperparameters(("network", "optimizer", "lr_scheduler"))
        self.network = network or torch.nn.Linear(width, 1)


def test_optimiser_and_scheduler_are_built_once_for_every_model():
    model = _Tiny(
        optimizer=partial(torch.optim.SGD, lr=0.5),
        lr_scheduler=partial(torch.optim.lr_scheduler.StepLR, step_size=2),
        lr_interval="epoch",
    )
    config = model.configure_optimizers()
    assert isinstance(config["optimizer"], torch.optim.SGD) and config["optimizer"].param_groups[0]["lr"] == 0.5
    assert config["lr_scheduler"]["interval"] == "epoch"
    assert isinstance(_Tiny().configure_optimizers(), torch.optim.SGD)
    with pytest.raises(ValueError, match="lr_interval"):
        _Tiny(lr_interval="batch")


def test_hyperparameters_keep_plain_values_and_leave_injected_objects_out_in_python():
    model = _Tiny(width=5, network=torch.nn.Linear(5, 1))
    assert model.hparams["width"] == 5
    assert "network" not in model.hparams and "optimizer" not in model.hparams


def test_noise_generator_is_one_seeded_stream_per_stage_and_step():
    model = _Tiny()
    model.noise_seed = 7
    a = torch.rand(3, generator=model.noise_generator(NoiseStream.TRAIN, 4, 0))
    b = torch.rand(3, generator=model.noise_generator(NoiseStream.TRAIN, 4, 0))
    c = torch.rand(3, generator=model.noise_generator(NoiseStream.VAL, 4, 0))
    assert torch.equal(a, b) and not torch.equal(a, c)
    model.noise_seed = 8
    assert not torch.equal(a, torch.rand(3, generator=model.noise_generator(NoiseStream.TRAIN, 4, 0)))


class _PartlyFrozen(_Tiny):
    def __init__(self):
        super().__init__()
        self.teacher = torch.nn.Linear(3, 3).requires_grad_(False)

    def trainable_parameters(self):
        return self.network.parameters()


def test_a_frozen_part_stays_out_of_the_optimiser():
    model = _PartlyFrozen()
    optimised = {id(p) for group in model.configure_optimizers().param_groups for p in group["params"]}
    assert optimised == {id(p) for p in model.network.parameters()}
