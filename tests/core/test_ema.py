"""WarmupEMA: the warmed-up decay min(beta, (1+n)/(10+n)) against a hand-written recurrence."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch.optim.swa_utils import AveragedModel

from difflab.core.lightning import ToyDataModule, WarmupEMA, train_briefly, warmup_decay
from difflab.core.lightning.ema import WarmupEMAAverage
from difflab.core.lightning.toy import ToyDiffusion


def test_warmup_decay_values():
    assert warmup_decay(0.999, 1) == pytest.approx(2 / 11)
    assert warmup_decay(0.999, 90) == pytest.approx(91 / 100)
    assert warmup_decay(0.999, 10**6) == 0.999
    assert float(warmup_decay(0.5, torch.tensor(3))) == pytest.approx(4 / 13)
    assert float(warmup_decay(0.5, torch.tensor(100))) == 0.5
    with pytest.raises(ValueError, match="decay"):
        WarmupEMAAverage(1.0)


def test_averaged_model_follows_the_recurrence():
    net = torch.nn.Linear(3, 2)
    avg = AveragedModel(net, avg_fn=WarmupEMAAverage(0.9))
    expected = None
    gen = torch.Generator().manual_seed(0)
    for n in range(30):
        with torch.no_grad():
            net.weight.copy_(torch.randn(2, 3, generator=gen))
        avg.update_parameters(net)
        w = net.weight.detach().clone()
        expected = w if n == 0 else warmup_decay(0.9, n) * expected + (1 - warmup_decay(0.9, n)) * w
    torch.testing.assert_close(avg.module.weight, expected)


class _Record(pl.Callback):
    def __init__(self):
        self.weights = []

    def on_train_batch_end(self, trainer, pl_module, *args):
        self.weights.append([p.detach().clone() for p in pl_module.parameters()])


@pytest.mark.parametrize("warmup", [True, False])
def test_fit_ends_with_the_averaged_weights(warmup):
    """After fit the module holds the EMA of the weights seen after each optimiser step."""
    model = ToyDiffusion(hidden=16, depth=2, embed_dim=8)
    dm = ToyDataModule(n_train=256, n_val=64, batch_size=32)
    rec = _Record()
    train_briefly(model, dm, max_steps=12, callbacks=[rec, WarmupEMA(decay=0.99, warmup=warmup)])
    assert len(rec.weights) == 12
    expected = rec.weights[0]
    for n, ws in enumerate(rec.weights[1:], start=1):
        beta = warmup_decay(0.99, n) if warmup else 0.99
        expected = [beta * e + (1 - beta) * w for e, w in zip(expected, ws)]
    for got, want in zip(model.parameters(), expected):
        torch.testing.assert_close(got.detach(), want, rtol=1e-5, atol=1e-6)
    # with the warm-up the average has moved most of the way to the last weights
    moved = sum(float((a - b).norm()) for a, b in zip(expected, rec.weights[0]))
    total = sum(float((a - b).norm()) for a, b in zip(rec.weights[-1], rec.weights[0]))
    assert (moved > 0.5 * total) if warmup else (moved < 0.2 * total)
