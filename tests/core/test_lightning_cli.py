"""The shared command line: config names, --help, --print_config, seeds, verbs, smoke runs of every verb."""

import os

import pytest
import torch

from difflab.core.cli import builtin_configs, main, resolve_config, rewrite_config_args, run_cli
from difflab.core.lightning import DiffusionModule, ToyDataModule, ToyDiffusion

pytestmark = pytest.mark.usefixtures("one_thread")


def test_builtin_configs_ship_with_the_package():
    names = builtin_configs("core")
    assert {"toy_mixture", "smoke_toy"} <= set(names)


def test_config_name_resolution(tmp_path, monkeypatch):
    path = resolve_config("toy_mixture", "core")
    assert path.endswith("configs/toy_mixture.yaml") and os.path.isfile(path)
    assert resolve_config("toy_mixture.yaml", "core") == path
    assert resolve_config("toy", "core") == path  # unique prefix
    own = tmp_path / "mine.yaml"
    own.write_text("seed_everything: 1\n")
    assert resolve_config(str(own), "core") == str(own)  # an existing file wins
    with pytest.raises(ValueError, match="available: .*toy_mixture"):
        resolve_config("no_such_config", "core")
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", "no_such_config"])
    assert exit_info.value.code == 2
    assert rewrite_config_args(["fit", "-c", "toy", "--config=smoke_toy", "--x", "toy"], "core") == [
        "fit",
        "-c",
        path,
        "--config=" + resolve_config("smoke_toy", "core"),
        "--x",
        "toy",
    ]
    (tmp_path / "a_one.yaml").write_text("{}")
    (tmp_path / "a_two.yaml").write_text("{}")
    monkeypatch.setattr("difflab.core.cli.config_dir", lambda package: tmp_path)
    with pytest.raises(ValueError, match="ambiguous.*a_one, a_two"):
        resolve_config("a_", "core")


def test_help_lists_lightning_and_domain_verbs(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for word in ("fit", "validate", "test", "predict", "demo", "toy_mixture", "--config"):
        assert word in out, word
    assert main([]) == 0
    assert "demo" in capsys.readouterr().out


def test_extra_commands_dispatch_before_lightning(capsys):
    seen = []

    def hello(argv):
        """say hello"""
        seen.append(argv)
        return 3

    result = run_cli(
        DiffusionModule, ToyDataModule, package="core", args=["hello", "--n", "2"], extra_commands={"hello": hello}
    )
    assert result == 3 and seen == [["--n", "2"]]
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--help"])
    assert exit_info.value.code == 0
    assert "--max_steps" in capsys.readouterr().out


def test_print_config_resolves_a_builtin_name(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", "toy_mixture", "--model.init_args.sample_steps", "7", "--print_config"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "class_path: difflab.core.lightning.toy.ToyDiffusion" in out
    assert "class_path: lightning.pytorch.callbacks.EMAWeightAveraging" in out
    assert "sample_steps: 7" in out and "n_train: 32768" in out


def test_default_classes_and_seed_everything():
    cli = run_cli(
        DiffusionModule,
        ToyDataModule.__mro__[1],
        package="core",
        run=False,
        args=["--seed_everything", "5", "--trainer.accelerator", "cpu", "--trainer.logger", "false"],
        model_default=ToyDiffusion,
        datamodule_default=ToyDataModule,
    )
    assert type(cli.model) is ToyDiffusion and type(cli.datamodule) is ToyDataModule
    assert os.environ["PL_GLOBAL_SEED"] == "5" and torch.initial_seed() == 5


def test_smoke_fit_then_validate_test_predict_and_reload(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    quiet = ["--trainer.enable_progress_bar", "false"]
    assert main(["fit", "-c", "smoke_toy", *quiet]) == 0
    last = tmp_path / "outputs/core/smoke_toy/lightning_logs/version_0/checkpoints/last.ckpt"
    ckpt = torch.load(last, weights_only=False)
    assert ckpt["global_step"] == 8 and "current_model_state" in ckpt  # 2 epochs x 4 batches; EMA saved
    assert (tmp_path / "outputs/core/smoke_toy/lightning_logs/version_0/config.yaml").is_file()
    for verb in ("validate", "test", "predict"):
        cli = run_cli(
            DiffusionModule,
            ToyDataModule.__mro__[1],
            package="core",
            args=[verb, "-c", "smoke_toy", "--ckpt_path", str(last), *quiet],
        )
        assert type(cli.model) is ToyDiffusion
    preds = cli.trainer.predict_loop.predictions
    assert torch.cat(preds).shape == (64, 2) and torch.isfinite(torch.cat(preds)).all()
    # the checkpoint rebuilds the subclass from the base class, with the EMA weights
    model = DiffusionModule.load_from_checkpoint(last)
    assert type(model) is ToyDiffusion and model.network.inp.out_features == 32
    for key, value in ckpt["state_dict"].items():
        assert torch.equal(model.state_dict()[key], value)
