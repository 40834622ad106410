"""The one checkpoint loader: a round trip, and one ``CheckpointError`` line for every bad file."""

from __future__ import annotations

import pytest
import torch

from difflab.core.lightning import (
    CheckpointError,
    DiffusionModule,
    ToyDataModule,
    ToyDiffusion,
    load_checkpoint,
    read_checkpoint,
    train_briefly,
)

pytestmark = pytest.mark.usefixtures("one_thread")


class OtherMethod(DiffusionModule):
    """A method of another package: a subclass of the same core base, not of ToyDiffusion."""


@pytest.fixture(scope="module")
def toy_ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "toy.ckpt"
    torch.manual_seed(0)
    model = ToyDiffusion(hidden=16, depth=1, embed_dim=8)
    train_briefly(model, ToyDataModule(n_train=64, n_val=16, batch_size=16), max_steps=2, checkpoint=path)
    return path


def _with(path, out, **changes):
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    for key, value in changes.items():
        if value is None:
            checkpoint.pop(key, None)
        else:
            checkpoint[key] = value
    torch.save(checkpoint, out)
    return out


def _one_line(err: pytest.ExceptionInfo, path) -> str:
    text = str(err.value)
    assert "\n" not in text and str(path) in text
    assert "weights_only=False" not in text
    return text


def test_round_trip_gives_the_same_weights(toy_ckpt):
    model = load_checkpoint(toy_ckpt, ToyDiffusion)
    assert type(model) is ToyDiffusion and not model.training
    saved = read_checkpoint(toy_ckpt)["state_dict"]
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, saved[key], rtol=0, atol=0)


def test_recorded_class_is_found_among_subclasses_of_the_base(toy_ckpt, tmp_path):
    hparams = dict(read_checkpoint(toy_ckpt)["hyper_parameters"], _class_path="difflab.core.lightning.ToyDiffusion")
    path = _with(toy_ckpt, tmp_path / "named.ckpt", hyper_parameters=hparams)
    assert type(load_checkpoint(path, DiffusionModule)) is ToyDiffusion
    assert type(load_checkpoint(path, (OtherMethod, ToyDiffusion))) is ToyDiffusion


def test_missing_file(tmp_path):
    path = tmp_path / "nothing.ckpt"
    with pytest.raises(CheckpointError, match="no such file") as err:
        load_checkpoint(path, ToyDiffusion)
    assert "ToyDiffusion" in _one_line(err, path)
    with pytest.raises(CheckpointError, match="no last.ckpt"):
        load_checkpoint(tmp_path, ToyDiffusion)


@pytest.mark.parametrize(
    "content",
    [bytes(range(256)) * 8, b"a text file\nwith lines\n", "é".encode("latin-1") * 100, b""],
    ids=["garbage", "text", "latin1", "empty"],
)
def test_not_a_checkpoint(tmp_path, content):
    path = tmp_path / "bad.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a checkpoint") as err:
        load_checkpoint(path, ToyDiffusion)
    _one_line(err, path)


def test_pickled_code_is_refused_by_name(tmp_path):
    path = tmp_path / "code.ckpt"
    torch.save({"state_dict": {}, "pytorch-lightning_version": "2", "payload": OtherMethod}, path)
    with pytest.raises(CheckpointError, match="OtherMethod") as err:
        load_checkpoint(path, ToyDiffusion)
    assert "weights-only" in _one_line(err, path)


@pytest.mark.parametrize("obj", [{"weights": torch.zeros(2)}, torch.zeros(3), [1, 2]], ids=["dict", "tensor", "list"])
def test_no_lightning_keys(tmp_path, obj):
    path = tmp_path / "plain.pt"
    torch.save(obj, path)
    with pytest.raises(CheckpointError, match="not a Lightning checkpoint") as err:
        load_checkpoint(path, ToyDiffusion)
    _one_line(err, path)


def test_checkpoint_of_another_method_or_package(toy_ckpt, tmp_path):
    hparams = dict(read_checkpoint(toy_ckpt)["hyper_parameters"], _class_path="difflab.core.lightning.ToyDiffusion")
    path = _with(toy_ckpt, tmp_path / "named.ckpt", hyper_parameters=hparams)
    with pytest.raises(CheckpointError, match="a checkpoint of difflab.core.lightning.ToyDiffusion") as err:
        load_checkpoint(path, OtherMethod)
    assert "OtherMethod" in _one_line(err, path)
    foreign = dict(hparams, _class_path="difflab.audio.models.sgmse.SGMSE")
    path = _with(toy_ckpt, tmp_path / "foreign.ckpt", hyper_parameters=foreign)
    with pytest.raises(CheckpointError, match="a checkpoint of difflab.audio.models.sgmse.SGMSE"):
        load_checkpoint(path, ToyDiffusion)


def test_a_class_named_in_the_file_is_never_imported(toy_ckpt, tmp_path):
    import sys

    name = "difflab_never_imported_module"
    hparams = dict(read_checkpoint(toy_ckpt)["hyper_parameters"], _class_path=f"{name}.Model")
    path = _with(toy_ckpt, tmp_path / "named.ckpt", hyper_parameters=hparams)
    with pytest.raises(CheckpointError):
        load_checkpoint(path, DiffusionModule)
    assert name not in sys.modules


def test_a_checkpoint_without_a_class_needs_one_base(toy_ckpt):
    with pytest.raises(CheckpointError, match="records no model class"):
        load_checkpoint(toy_ckpt, (OtherMethod, ToyDiffusion))


def test_a_bare_state_dict_is_read_when_asked(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"network.weight": torch.ones(2)}, path)
    assert torch.equal(read_checkpoint(path, lightning=False)["network.weight"], torch.ones(2))
    with pytest.raises(CheckpointError, match="not a Lightning checkpoint"):
        read_checkpoint(path)
    torch.save([1, 2], path)
    with pytest.raises(CheckpointError, match="a list"):
        read_checkpoint(path, lightning=False)
