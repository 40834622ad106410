"""Classifier-free and adaptive guidance through ``DiffusionModule.sample(guidance=..., guidance_threshold=...)``.

A toy module whose condition is an additive shift of the network output (``null_condition``: shift 0):
guidance weight 1 is the conditional sampler exactly, weight ``w`` is ``out_u + w (out_c - out_u)``
step by step, adaptive guidance with a threshold no similarity exceeds is plain guidance, and one that
every similarity exceeds drops the unconditional pass after the first call; a module without a null
condition refuses guidance.
"""

import pytest
import torch

from difflab.core.lightning.toy import ToyDiffusion


class Shifted(ToyDiffusion):
    def network_forward(self, x_t, t, batch=None):
        out = self.network(x_t, t)
        return out if batch is None else out + batch["shift"]

    def null_condition(self, batch):
        return None if batch is None else {**batch, "shift": torch.zeros_like(batch["shift"])}


def _module():
    torch.manual_seed(0)
    return Shifted(hidden=32, depth=2, embed_dim=16, sampler="ddim", sample_steps=10).eval()


def test_weight_one_is_the_conditional_sampler_and_w_combines_step_by_step():
    m = _module()
    batch = {"shift": torch.tensor([[0.3, -0.2]]).expand(16, 2)}
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(1))
    plain = m.sample(batch=batch, x_init=x)
    one = m.sample(batch=batch, x_init=x, guidance=1.0)
    torch.testing.assert_close(one.sample, plain.sample, rtol=0, atol=1e-6)
    assert one.nfe == 2 * plain.nfe
    w = 2.5
    ref = m.sample(batch={"shift": w * batch["shift"]}, x_init=x)  # out_u + w (out_c - out_u) = net + w shift
    torch.testing.assert_close(m.sample(batch=batch, x_init=x, guidance=w).sample, ref.sample, rtol=1e-5, atol=1e-4)


def test_adaptive_guidance_thresholds():
    m = _module()
    batch = {"shift": torch.tensor([[0.3, -0.2]]).expand(8, 2)}
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(2))
    cfg = m.sample(batch=batch, x_init=x, guidance=2.0)
    never = m.sample(batch=batch, x_init=x, guidance=2.0, guidance_threshold=1.0)
    torch.testing.assert_close(never.sample, cfg.sample, rtol=0, atol=0)
    at_once = m.sample(batch=batch, x_init=x, guidance=2.0, guidance_threshold=-1.0)
    assert at_once.nfe == cfg.nfe // 2 + 1  # one guided call, then the conditional network alone


def test_a_module_without_a_null_condition_refuses_guidance():
    torch.manual_seed(0)
    m = ToyDiffusion(hidden=16, depth=1, embed_dim=8).eval()
    with pytest.raises(ValueError, match="no null condition"):
        m.sample((4, 2), guidance=2.0)
