"""Shipped defaults: a slim float16 checkpoint that the one loader reads back as the trained model."""

import pytest
import torch

from difflab.core.lightning import ToyDataModule, ToyDiffusion, load_checkpoint, train_briefly
from difflab.core.lightning.checkpoint import CheckpointError, read_checkpoint
from difflab.core.lightning.pretrained import (
    checkpoint_or_default,
    pretrained_info,
    recommended_sampling,
    shipped_path,
    write_pretrained,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pre")
    torch.manual_seed(0)
    model = ToyDiffusion(hidden=32, depth=1, embed_dim=16)
    full = tmp / "full.ckpt"
    train_briefly(model, ToyDataModule(n_train=256, batch_size=64), max_steps=20, checkpoint=full, ema_decay=0.9)
    meta = {"command": "python scripts/pretrain.py core", "sampling": {"sampler": "ddim", "steps": 10}}
    slim = write_pretrained(full, model, tmp / "pretrained" / "toy.ckpt", meta=meta)
    return model, full, slim


def test_slim_checkpoint_keeps_only_what_loading_needs(trained):
    model, full, slim = trained
    ck = read_checkpoint(slim)
    assert not {"optimizer_states", "lr_schedulers", "callbacks", "loops"} & set(ck)
    params = dict(model.named_parameters())
    for key, value in ck["state_dict"].items():
        if key in params:
            assert value.dtype == torch.float16, key
        elif value.is_floating_point():
            assert value.dtype != torch.float16, key  # buffers (schedule tables) keep their precision
    assert slim.stat().st_size < 0.6 * full.stat().st_size


def test_loaded_default_is_the_trained_model_up_to_half_rounding(trained):
    model, _, slim = trained
    loaded = load_checkpoint(slim, ToyDiffusion)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    x, t = torch.randn(64, 2), torch.rand(64)
    with torch.no_grad():
        a, b = model.eval().network(x, t), loaded.network(x, t)
    assert (a - b).abs().max() < 2e-2 * a.abs().max()
    for (name, p), q in zip(model.named_parameters(), loaded.parameters()):  # rounding is the only change
        assert torch.equal(p.detach().half().float(), q.detach()), name


def test_metadata_and_recommended_sampling(trained):
    _, full, slim = trained
    assert pretrained_info(slim)["command"].startswith("python scripts/pretrain.py")
    assert recommended_sampling(slim) == {"sampler": "ddim", "steps": 10}
    assert pretrained_info(full) == {} and recommended_sampling(full) == {}


def test_checkpoint_or_default(tmp_path):
    assert checkpoint_or_default(tmp_path / "a.ckpt", "core", "toy") == tmp_path / "a.ckpt"
    assert shipped_path("core", "toy").parts[-2:] == ("pretrained", "toy.ckpt")
    with pytest.raises(CheckpointError, match=r"--ckpt: none given.*python scripts/pretrain.py core"):
        checkpoint_or_default(None, "core", "toy")


def test_train_briefly_prints_progress_lines_when_asked(capsys):
    torch.manual_seed(0)
    model = ToyDiffusion(hidden=16, depth=1, embed_dim=8)
    train_briefly(model, ToyDataModule(n_train=128, batch_size=64), max_steps=4, progress_every=0.0)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("fit: step")]
    assert lines and lines[-1].startswith("fit: step 4/4")


def test_a_network_built_in_python_is_stored_in_the_command_line_form(trained, tmp_path):
    model, full, _ = trained
    network = {"class_path": "difflab.core.lightning.toy.ToyMLP", "init_args": {"dim": 2, "hidden": 8}}
    out = write_pretrained(full, model, tmp_path / "net.ckpt", meta={}, network=network)
    hp = read_checkpoint(out)["hyper_parameters"]
    assert hp["network"] == network and hp["_instantiator"] == "lightning.pytorch.cli.instantiate_module"
