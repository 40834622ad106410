"""ResShift, SR3, SAM-DiffSR-style and InvSR-style modules: math checks without training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from difflab.core.samplers import Denoiser, sample_ddpm, time_grid
from difflab.vision.models import SR3, InvSRStart, ResShiftSR, SAMDiffSR
from difflab.vision.models.sam_diffsr import encode_regions, region_masks
from difflab.vision.networks import UNet


def tiny(in_ch=6):
    return UNet(in_ch, 3, channels=8, channel_mults=(1, 2))


def batch(b=2, h=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(b, 3, h, h, generator=g) * 2 - 1
    y = (x0 + 0.2 * torch.randn(b, 3, h, h, generator=g)).clamp(-1, 1)
    return {"x0": x0, "y": y}


def test_resshift_presets_match_paper_schedule():
    m15 = ResShiftSR(tiny(), num_steps=15, min_noise=0.04)
    ref15 = [0.020, 0.117, 0.176, 0.234, 0.292, 0.351, 0.412, 0.476, 0.542, 0.610, 0.681, 0.754, 0.830, 0.909, 0.990]
    np.testing.assert_allclose(m15.process.etas[1:].sqrt().numpy(), ref15, atol=6e-4)
    m4 = ResShiftSR(tiny(), num_steps=4, min_noise=0.2)
    np.testing.assert_allclose(m4.process.etas[1:].sqrt().numpy(), [0.100, 0.520, 0.761, 0.990], atol=6e-4)
    assert m4.sample_steps == 4 and m4.sampler_name == "ddpm" and m4.prediction == "x0"


def test_resshift_training_times_are_chain_steps():
    m = ResShiftSR(tiny(), num_steps=4, min_noise=0.2)
    t = m.sample_time(torch.zeros(1000, 3, 2, 2), torch.Generator().manual_seed(0))
    assert set(np.round(t.numpy() * 4, 6).tolist()) == {1.0, 2.0, 3.0, 4.0}


def test_resshift_reverse_step_is_paper_posterior():
    """sample_ddpm on the chain's own grid gives mean eta_{t-1}/eta_t x_t + alpha_t/eta_t x0 and var
    kappa^2 eta_{t-1}/eta_t alpha_t (ResShift Eq. 7)."""
    m = ResShiftSR(tiny(), num_steps=4, min_noise=0.2, clip_x0=None)
    p = m.process
    b = batch()
    x0_hat = b["x0"] * 0.5
    x_t = torch.randn_like(b["x0"])
    k = 3
    t, s = torch.full((2,), k / 4), torch.full((2,), (k - 1) / 4)
    mean, std = p.posterior(x_t, x0_hat, s, t, b["y"], eta=1.0)
    eta_t, eta_s = p.etas[k].float(), p.etas[k - 1].float()
    alpha = eta_t - eta_s
    assert torch.allclose(mean, eta_s / eta_t * x_t + alpha / eta_t * x0_hat, atol=1e-5)
    assert torch.allclose(std.flatten()[:1], (4.0 * eta_s / eta_t * alpha).sqrt().reshape(1), atol=1e-5)
    # and the sampler with an oracle x0 lands exactly on x0 (the last step is noise-free)
    den = Denoiser(lambda x, tt: b["x0"], p, "x0", y=b["y"])
    start = p.prior_sample(b["x0"].shape, y=b["y"], generator=torch.Generator().manual_seed(1))
    res = sample_ddpm(den, start, time_grid(4), generator=torch.Generator().manual_seed(2))
    assert res.nfe == 4 and torch.allclose(res.sample, b["x0"], atol=1e-5)


def test_resshift_input_scaling_and_untrained_output_is_bicubic():
    m = ResShiftSR(tiny(), num_steps=4, min_noise=0.2)
    x = torch.ones(1, 3, 4, 4)
    t = torch.tensor([1.0])
    eta = float(m.process.etas[-1])
    assert torch.allclose(m.network_input(x, t), x / (4 * eta + 1) ** 0.5)
    b = batch()
    out = m.super_resolve(b["y"], generator=torch.Generator().manual_seed(0)).sample
    assert torch.allclose(out, b["y"], atol=1e-6)  # zero-initialised residual head
    loss = m.training_loss(b, torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and loss > 0


def test_sr3_residual_target_roundtrip_and_sampling():
    m = SR3(tiny(), num_train_steps=100, sample_steps=3)
    b = batch()
    z = m.encode(b["x0"], b["y"])
    assert torch.allclose(z, 2 * (b["x0"] - b["y"])) and torch.allclose(m.decode(z, b["y"]), b["x0"], atol=1e-6)
    res = m.super_resolve(b["y"], generator=torch.Generator().manual_seed(0))
    assert res.nfe == 3 and res.sample.shape == b["y"].shape
    r2 = m.super_resolve(b["y"], sampler="dpm_solver", steps=4)
    assert r2.nfe == 4
    img = SR3(tiny(), target="image")
    assert img.clip_x0 == 1.0 and torch.equal(img.encode(b["x0"], b["y"]), b["x0"])
    with pytest.raises(ValueError, match="target"):
        SR3(tiny(), target="latent")


def photo_crop(size=64):
    import skimage.data

    a = torch.from_numpy(skimage.data.astronaut()[100 : 100 + size, 100 : 100 + size].copy())
    return a.permute(2, 0, 1)[None].float() / 127.5 - 1


def test_slic_masks_and_region_encoding_constant_per_region():
    img = photo_crop(32)
    b = {"x0": img.repeat(2, 1, 1, 1)}
    labels = region_masks(b["x0"], "slic", region_px=64)
    assert len(labels) == 2 and labels[0].shape == (32, 32) and labels[0].max() >= 3
    enc = encode_regions(labels[0])
    assert enc.shape == (3, 32, 32) and float(enc.abs().max()) <= 1
    for r in np.unique(labels[0]):
        vals = enc[:, torch.from_numpy(labels[0] == r)]
        assert torch.allclose(vals, vals[:, :1].expand_as(vals))
    fz = region_masks(b["x0"], "felzenszwalb", region_px=64)
    assert fz[0].shape == (32, 32)


def test_samdiffsr_modulation_and_loss():
    m = SAMDiffSR(tiny(), num_train_steps=100, region_px=64)
    t = torch.tensor([0.01, 0.5, 1.0])
    w = m.modulation_weight(t)
    assert w.shape == (3,) and bool((w >= 0).all()) and float(w[2]) > float(w[0])
    b = batch(h=32)
    b["x0"] = photo_crop(32).repeat(2, 1, 1, 1)
    assert float(m.noise_modulation(b["x0"]).std()) > 0
    loss = m.training_loss(b, torch.Generator().manual_seed(0))
    assert torch.isfinite(loss)
    # inference is unchanged: same sampler as SR3
    assert m.sampler_name == "ddim"


def test_invsr_start_state_and_gradients_reach_only_the_predictor():
    teacher = SR3(tiny(), num_train_steps=1000)
    m = InvSRStart(tiny(3), teacher=teacher, start_t=0.2)
    b = batch()
    z = m.start_state(b["y"])
    assert torch.allclose(z, torch.zeros_like(z))  # zero-initialised predictor, residual teacher
    torch.nn.init.normal_(m.network.out.weight, std=0.1)
    loss = m.training_loss(b)
    loss.backward()
    assert m.network.out.weight.grad is not None
    assert all(p.grad is None for p in m.teacher.parameters())
    for steps in (1, 3):
        assert m.super_resolve(b["y"], steps=steps).nfe == steps
    with pytest.raises(ValueError, match="exactly one of teacher"):
        InvSRStart(tiny(3))


def test_the_data_decides_the_scale():
    from types import SimpleNamespace

    from difflab.core.errors import UserError
    from difflab.vision.models.base import SRDiffusion

    model = SimpleNamespace(scale=4, hparams={"scale": 4}, DATA_SETTINGS=SRDiffusion.DATA_SETTINGS)
    SRDiffusion.take_from_data(model, "scale", 2, fresh=True)  # a model that starts training takes the data's
    assert model.scale == 2 and model.hparams["scale"] == 2
    with pytest.raises(UserError, match=r"--data.init_args.scale 4: the model was trained for x2"):
        SRDiffusion.take_from_data(model, "scale", 4, fresh=False)  # a trained one must match


def test_resshift_l1_loss_is_the_mean_absolute_x0_error():
    """With a zero-initialised head x0_hat = y0, so the L1 loss is mean |y0 - x0| whatever t and the noise."""
    net = UNet(6, 3, channels=8, channel_mults=(1,), mid_attention=False)
    model = ResShiftSR(net, num_steps=4, kappa=0.5, min_noise=0.2, loss_type="l1")
    x0, y = torch.rand(2, 3, 8, 8) * 2 - 1, torch.rand(2, 3, 8, 8) * 2 - 1
    loss = model.diffusion_loss({"x0": x0, "y": y}, torch.Generator().manual_seed(0))
    assert torch.isclose(loss, (y - x0).abs().mean())
    with pytest.raises(ValueError, match="loss_type"):
        ResShiftSR(net, loss_type="l2")
