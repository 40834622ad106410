"""``train_briefly(ema_decay=...)``: bit-identical to the EMA callback the domains passed by hand."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.callbacks import EMAWeightAveraging

from difflab.core.lightning import ToyDataModule, ToyDiffusion, train_briefly

pytestmark = pytest.mark.usefixtures("one_thread")


def _train(**kw) -> dict[str, torch.Tensor]:
    torch.manual_seed(3)
    model = ToyDiffusion(hidden=16, depth=1, embed_dim=8)
    data = ToyDataModule(n_train=96, n_val=16, batch_size=16, seed=1)
    train_briefly(model, data, max_steps=6, seed=2, **kw)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_ema_decay_equals_the_hand_written_callback():
    by_hand = _train(callbacks=[EMAWeightAveraging(decay=0.9)])
    built_in = _train(ema_decay=0.9)
    plain = _train()
    assert by_hand.keys() == built_in.keys()
    for key in by_hand:
        torch.testing.assert_close(built_in[key], by_hand[key], rtol=0, atol=0)
    # the model holds the averaged weights, not the last iterate
    assert any(not torch.equal(plain[k], built_in[k]) for k in plain if plain[k].is_floating_point())


def test_ema_keeps_the_other_callbacks_and_can_warm_up():
    from lightning.pytorch.callbacks import Callback

    class Count(Callback):
        steps = 0

        def on_train_batch_end(self, *args):
            Count.steps += 1

    warm = _train(ema_decay=0.99, ema_warmup=True, callbacks=[Count()])
    constant = _train(ema_decay=0.99)
    assert Count.steps == 6
    assert any(not torch.equal(warm[k], constant[k]) for k in warm if warm[k].is_floating_point())
