"""Method math: the OUVE process on real/imag channels, network shapes, losses, every sampler, enhance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from difflab.audio.inference import enhance_file, enhance_signal
from difflab.audio.models import SGMSE, PredictiveEnhancer, StoRM, complex_ouve
from difflab.audio.networks import NCSNpp
from difflab.core.parameterization import edm_scales
from difflab.core.samplers.select import SAMPLER_NAMES


def tiny(cin, tc=True):
    torch.manual_seed(0)
    return NCSNpp(cin, 2, channels=8, channel_mults=(1, 2), num_res_blocks=1, time_conditional=tc)


def test_complex_ouve_matches_sgmse_variance():
    """Per real/imag part the std is sigma_sgmse(t) / sqrt(2), sigma_sgmse from SGMSE+'s closed form."""
    th, smin, smax = 1.5, 0.05, 0.5
    proc = complex_ouve(th, smin, smax, 0.03)
    t = torch.tensor([0.03, 0.3, 1.0], dtype=torch.float64)
    lam = math.log(smax / smin)
    var = smin**2 * (torch.exp(2 * (th + lam) * t) - 1) * lam * torch.exp(-2 * th * t) / (th + lam)
    _, _, s = proc.coefficients(t)
    assert torch.allclose(s, (var / 2).sqrt(), rtol=1e-6)
    a, b, _ = proc.coefficients(t)
    assert torch.allclose(a, torch.exp(-th * t)) and torch.allclose(a + b, torch.ones_like(t))


def test_network_shapes_and_presets():
    net = tiny(4)
    x = torch.randn(2, 4, 256, 37)
    assert net(x, torch.rand(2)).shape == (2, 2, 256, 37)
    assert tiny(2, tc=False)(torch.randn(1, 2, 256, 20)).shape == (1, 2, 256, 20)
    big = NCSNpp.from_preset("sgmse", in_channels=4)
    n_params = sum(p.numel() for p in big.parameters())
    assert 40e6 < n_params < 80e6  # SGMSE+'s NCSN++ has about 65 M
    assert big.num_levels == 7
    with pytest.raises(ValueError, match="input channels"):
        net(torch.randn(1, 2, 256, 8), torch.rand(1))


def _batch(b=2, n=4000):
    g = torch.Generator().manual_seed(0)
    clean = torch.randn(b, n, generator=g) * 0.1
    return {"clean": clean, "noisy": clean + 0.05 * torch.randn(b, n, generator=g)}


@pytest.mark.parametrize("kind", ["sgmse", "storm", "predictive"])
def test_losses_finite_and_backpropagate(kind):
    model = {
        "sgmse": lambda: SGMSE(tiny(4)),
        "storm": lambda: StoRM(tiny(6), tiny(2, False)),
        "predictive": lambda: PredictiveEnhancer(tiny(2, False)),
    }[kind]()
    batch = model.prepare_batch(_batch())
    loss = model.training_loss(batch, torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_storm_joint_training_reaches_the_predictor():
    model = StoRM(tiny(6), tiny(2, False), supervised_weight=0.0)
    for p in model.network.parameters():  # make the score network's output depend on y_hat
        torch.nn.init.normal_(p, std=0.05)
    loss = model.training_loss(model.prepare_batch(_batch()), torch.Generator().manual_seed(0))
    loss.backward()
    assert sum(p.grad.abs().sum() for p in model.predictor.parameters() if p.grad is not None) > 0


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_every_core_sampler_enhances(name):
    model = SGMSE(tiny(4)).eval()
    y = model.prepare_batch(_batch(1, 3000))["y"]
    res = model.enhance_spec(y, sampler=name, steps=3, generator=torch.Generator().manual_seed(0))
    assert res.sample.shape == y.shape and torch.isfinite(res.sample).all()
    assert res.nfe >= 1


def test_pc_nfe_and_storm_start():
    sg = SGMSE(tiny(4)).eval()
    y = sg.prepare_batch(_batch(1, 3000))["y"]
    assert sg.enhance_spec(y, steps=5).nfe == 10  # predictor + one corrector step each
    st = StoRM(tiny(6), tiny(2, False)).eval()
    assert st.enhance_spec(y, steps=5).nfe == 11  # plus the predictor


@pytest.mark.parametrize(
    "name,opts", [("pc", {}), ("pc", {"corrector": "none"}), ("probability_flow", {}), ("ddim", {})]
)
def test_oracle_clean_prediction_returns_the_clean_signal_at_every_step_count(name, opts):
    """An exact x0 fed to the samplers through the OUVE process (mean e^{-theta t} x0 + (1 - e^{-theta t}) y)
    must give back nearly the clean spectrogram at every N: more steps must not hurt."""
    from difflab.core.samplers.base import Denoiser
    from difflab.core.samplers.select import run_sampler

    model = SGMSE(tiny(4), prediction="x0").eval()
    g = torch.Generator().manual_seed(1)
    clean = torch.randn(1, 3000, generator=g) * 0.1
    batch = model.prepare_batch({"clean": clean, "noisy": clean + 0.2 * torch.randn(1, 3000, generator=g)})
    y, x0 = batch["y"], batch["x0"]
    for steps in (5, 30):
        g = torch.Generator().manual_seed(0)
        d = Denoiser(lambda x_t, t: x0.expand_as(x_t), model.process, "x0", y=y)
        x = model.process.prior_sample(y.shape, y=y, generator=g)
        out = run_sampler(name, d, x, steps=steps, generator=g, **opts).sample
        # what remains: e^{-theta t_eps} x0 + (1 - e^{-theta t_eps}) y plus noise of std s(t_eps) ~ 0.013
        err = (out - x0).pow(2).mean() / (y - x0).pow(2).mean()
        assert err < 0.1, (name, steps, float(err))


def test_x0_precond_skips_to_the_input_at_small_t_and_weights_the_loss():
    model = SGMSE(tiny(4), prediction="x0_precond").eval()
    assert model.prediction == "x0" and model.precondition
    batch = model.prepare_batch(_batch(1, 3000))
    y, x0 = batch["y"], batch["x0"]
    t = torch.tensor([model.t_eps])
    x_t, _ = model.process.sample_marginal(x0, t, y, generator=torch.Generator().manual_seed(0))
    # a zero network output already gives (x_t - b y)/a at small t: close to the clean input
    x0_hat = model.to_x0(torch.zeros_like(x_t), x_t, t, y)
    assert (x0_hat - x0).pow(2).mean() < 0.05 * (y - x0).pow(2).mean()
    # the weighted x0 loss equals the unit-scale regression of the network output on its target
    _, _, c_skip, c_out = edm_scales(model.process, t, x_t, model.sigma_data)
    out = torch.randn_like(x_t)
    a, b, _ = model.process.coefficients_like(t, x_t)
    target = (x0 - c_skip * (x_t - b * y) / a) / c_out
    weighted = model.loss_weight(t) * (model.to_x0(out, x_t, t, y) - x0).pow(2).mean()
    assert torch.allclose(weighted, (out - target).pow(2).mean(), rtol=1e-4)
    with pytest.raises(ValueError, match="prediction"):
        SGMSE(tiny(4), prediction="v")


def test_x0_residual_returns_the_condition_at_large_t_and_the_input_at_small_t():
    model = SGMSE(tiny(4), prediction="x0_residual", sigma_data=0.05).eval()
    assert model.prediction == "x0" and model.precondition and model.residual
    batch = model.prepare_batch(_batch(1, 3000))
    y, x0 = batch["y"], batch["x0"]
    gen = torch.Generator().manual_seed(0)
    # at t = 1 (noise far above sigma_data) a zero network output gives the condition itself
    t = torch.tensor([1.0])
    x_t, _ = model.process.sample_marginal(x0, t, y, generator=gen)
    x0_hat = model.to_x0(torch.zeros_like(x_t), x_t, t, y)
    assert (x0_hat - y).pow(2).mean() < 0.01 * (x0_hat - x_t).pow(2).mean()
    assert (x0_hat - y).abs().max() < 0.05 * (x_t - y).abs().max()
    # at t_eps it is (close to) the nearly clean input, as x0_precond
    t = torch.tensor([model.t_eps])
    x_t, _ = model.process.sample_marginal(x0, t, y, generator=gen)
    x0_hat = model.to_x0(torch.zeros_like(x_t), x_t, t, y)
    assert (x0_hat - x0).pow(2).mean() < 0.05 * (y - x0).pow(2).mean()
    # the weighted loss is the unit-scale regression of the network output on the residual's target
    _, b, c_skip, c_out = edm_scales(model.process, t, x_t, model.sigma_data)
    a = model.process.coefficients_like(t, x_t)[0]
    out = torch.randn_like(x_t)
    target = (x0 - y - c_skip * ((x_t - b * y) / a - y)) / c_out
    weighted = model.loss_weight(t) * (model.to_x0(out, x_t, t, y) - x0).pow(2).mean()
    assert torch.allclose(weighted, (out - target).pow(2).mean(), rtol=1e-4)


def test_storm_predictor_init_loads_a_predictive_checkpoint(tmp_path):
    pred = PredictiveEnhancer(tiny(2, False))
    with torch.no_grad():
        for p in pred.network.parameters():
            p.add_(0.01)
    torch.save({"state_dict": pred.state_dict()}, tmp_path / "pred.ckpt")
    storm = StoRM(tiny(6), tiny(2, False), predictor_init=str(tmp_path / "pred.ckpt"))
    storm.setup("fit")
    for a, b in zip(storm.predictor.state_dict().values(), pred.network.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        StoRM(tiny(6), tiny(2, False), predictor_init=str(tmp_path / "missing.ckpt")).setup("fit")
    torch.save({"state_dict": {"other.w": torch.zeros(1)}}, tmp_path / "bad.ckpt")
    with pytest.raises(ValueError, match="bad.ckpt"):
        StoRM(tiny(6), tiny(2, False), predictor_init=str(tmp_path / "bad.ckpt")).setup("fit")


def test_residual_predictor_starts_as_the_identity_and_storm_follows_it(tmp_path):
    y = _batch()["noisy"]
    pred = PredictiveEnhancer(tiny(2, False), residual=True)
    batch = pred.prepare_batch({"noisy": y})
    with torch.no_grad():  # whatever the network outputs, the estimate is y plus that output
        for p in pred.network.parameters():
            p.add_(0.01)
        correction = pred.network(batch["y"], None)
        assert torch.allclose(pred.enhance_spec(batch["y"]).sample, batch["y"] + correction)
        for p in pred.network.parameters():
            p.zero_()
        assert torch.equal(pred.enhance_spec(batch["y"]).sample, batch["y"])
    loss = pred.training_loss(pred.prepare_batch(_batch()))
    assert torch.isfinite(loss)
    torch.save({"state_dict": pred.state_dict(), "hyper_parameters": dict(pred.hparams)}, tmp_path / "res.ckpt")
    storm = StoRM(tiny(6), tiny(2, False), predictor_residual=True, predictor_init=str(tmp_path / "res.ckpt"))
    storm.setup("fit")
    with torch.no_grad():
        assert torch.equal(storm.predict_mean(batch["y"]), pred.enhance_spec(batch["y"]).sample)
    with pytest.raises(ValueError, match="residual"):  # a residual checkpoint in a direct predictor
        StoRM(tiny(6), tiny(2, False), predictor_init=str(tmp_path / "res.ckpt")).setup("fit")


@pytest.mark.parametrize("kind", ["sgmse", "storm", "storm_residual"])
def test_x0_precond_losses_and_sampling(kind):
    model = (
        SGMSE(tiny(4), prediction="x0_precond")
        if kind == "sgmse"
        else StoRM(tiny(6), tiny(2, False), prediction="x0_precond")
        if kind == "storm"
        else StoRM(tiny(6), tiny(2, False), prediction="x0_residual", training_mode="frozen_predictor")
    )
    batch = model.prepare_batch(_batch())
    loss = model.training_loss(batch, torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss)
    model.eval()
    res = model.enhance_spec(batch["y"][:1], steps=3, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(res.sample).all()


def test_enhance_restores_scale_and_length():
    model = PredictiveEnhancer(tiny(2, False)).eval()
    for p in model.network.conv_out.parameters():
        torch.nn.init.zeros_(p)
    model.network.conv_out.bias.data.zero_()
    wav = torch.randn(5000) * 0.3
    out = model.enhance(wav)
    assert out.shape == wav.shape  # zero network -> silence of the right length
    assert out.abs().max() < 1e-6


class _Double:
    sample_rate = 16000

    def enhance(self, x, **kwargs):
        return 2 * x


def test_chunked_overlap_add_is_exact_for_a_linear_model():
    x = torch.randn(70000)
    y = enhance_signal(_Double(), x, chunk_seconds=1.0, overlap_seconds=0.25)
    assert torch.allclose(y, 2 * x, atol=1e-5)


def test_enhance_file_keeps_rate_channels_and_length(tmp_path):
    class Half(_Double):
        def enhance(self, x, **kwargs):
            return 0.5 * x

    t = np.arange(22050) / 22050
    data = 0.1 * np.stack([np.sin(2 * np.pi * 300 * t), np.sin(2 * np.pi * 1234 * t + 1)], 1).astype(np.float32)
    sf.write(str(tmp_path / "in.flac"), data, 22050)
    enhance_file(Half(), tmp_path / "in.flac", tmp_path / "out.wav", chunk_seconds=0.3, overlap_seconds=0.05)
    info = sf.info(str(tmp_path / "out.wav"))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (22050, 2, 22050, "PCM_16")
    out, _ = sf.read(str(tmp_path / "out.wav"))
    assert np.corrcoef(out[:, 0], data[:, 0])[0, 1] > 0.99  # resampled there and back (content below 8 kHz)


@pytest.mark.parametrize(
    ("subtype", "expected"), [("PCM_24", "PCM_24"), ("FLOAT", "FLOAT"), ("DOUBLE", "FLOAT"), ("PCM_U8", "PCM_16")]
)
@pytest.mark.parametrize("overs", ["scale", "clip"])
def test_enhance_file_keeps_the_sample_format(tmp_path, subtype, expected, overs):
    """A 24-bit or float recording is not cut to 16 bits; 8-bit input gets 16-bit output."""
    x = (0.1 * np.sin(np.arange(6000) / 7)).astype(np.float32)
    sf.write(str(tmp_path / "in.wav"), x, 16000, subtype=subtype)
    enhance_file(_Double(), tmp_path / "in.wav", tmp_path / "out.wav", overs=overs, chunk_seconds=0.3)
    assert sf.info(str(tmp_path / "out.wav")).subtype == expected
    out, _ = sf.read(str(tmp_path / "out.wav"), dtype="float32")
    tol = {"PCM_16": 2.01 / 128, "PCM_24": 1e-6, "FLOAT": 1e-6}[expected]  # 8-bit input: its step, doubled
    np.testing.assert_allclose(out, 2 * x, atol=tol)


def test_overlap_add_streams_with_weights_summing_to_one():
    from difflab.audio.inference import OverlapAdd, chunk_starts, crossfade_weights

    x = np.random.default_rng(0).standard_normal((10000, 2)).astype(np.float32)
    chunk, starts = chunk_starts(10000, 4096, 1.0, 0.3)
    ola, parts = OverlapAdd(2), []
    for k, s in enumerate(starts):
        fade_in = 0 if k == 0 else starts[k - 1] + chunk - s
        fade_out = 0 if k == len(starts) - 1 else s + chunk - starts[k + 1]
        ola.add(s, x[s : s + chunk], crossfade_weights(chunk, fade_in, fade_out).numpy())
        parts.append(ola.pop(starts[k + 1] if k + 1 < len(starts) else 10000))
        assert ola.weight.shape[0] <= chunk  # holds at most one chunk
    np.testing.assert_allclose(np.concatenate(parts), x, atol=1e-6)


def test_enhance_file_streams_in_chunks(tmp_path, monkeypatch):
    """The model sees one chunk at a time and the file is read one chunk at a time, and a linear
    model's output is exact across the cross-fades (16 kHz: no resampling)."""
    from difflab.audio.data import io

    seen, reads = [], []

    class Spy(_Double):
        def enhance(self, x, **kwargs):
            seen.append(x.shape[0])
            return 2 * x

    original = io.AudioReader.read
    monkeypatch.setattr(io.AudioReader, "read", lambda self, s, n: reads.append(n) or original(self, s, n))
    x = np.clip(0.1 * np.random.default_rng(1).standard_normal((50000, 2)), -0.45, 0.45).astype(np.float32)
    sf.write(str(tmp_path / "in.wav"), x, 16000, subtype="FLOAT")
    written = enhance_file(Spy(), tmp_path / "in.wav", tmp_path / "out.wav", chunk_seconds=0.5, overlap_seconds=0.1)
    assert max(seen) == max(reads) == 8000 and len(seen) == 2 * len(reads)
    out, _ = sf.read(str(tmp_path / "out.wav"), dtype="float32")
    assert out.shape == x.shape and written.gain_db == 0 and written.clipped == 0
    np.testing.assert_allclose(out, 2 * x, atol=1.5 / 32768)


def test_enhance_file_silent_channel_and_nan_input(tmp_path):
    from difflab.audio.data.io import AudioFileError

    x = np.zeros((9000, 2), np.float32)
    x[:, 0] = 0.1 * np.sin(np.arange(9000) / 5)
    sf.write(str(tmp_path / "in.wav"), x, 16000, subtype="FLOAT")
    written = enhance_file(_Double(), tmp_path / "in.wav", tmp_path / "out.wav", chunk_seconds=0.3)
    assert written.silent == [1] and np.all(sf.read(str(tmp_path / "out.wav"))[0][:, 1] == 0)
    x[7000, 0] = np.nan
    sf.write(str(tmp_path / "nan.wav"), x, 16000, subtype="FLOAT")
    with pytest.raises(AudioFileError, match="NaN"):
        enhance_file(_Double(), tmp_path / "nan.wav", tmp_path / "nan_out.wav", chunk_seconds=0.3)
    assert not list(tmp_path.glob("*nan_out*"))  # nothing half-written is left


def test_the_data_decides_the_sample_rate():
    from types import SimpleNamespace

    from difflab.audio.models.base import SpeechEnhancer
    from difflab.core.errors import UserError

    model = SimpleNamespace(
        sample_rate=16000, hparams={"sample_rate": 16000}, DATA_SETTINGS=SpeechEnhancer.DATA_SETTINGS
    )
    SpeechEnhancer.take_from_data(
        model, "sample_rate", 8000, fresh=True
    )  # a model that starts training takes the data's
    assert model.sample_rate == 8000 and model.hparams["sample_rate"] == 8000
    with pytest.raises(UserError, match=r"--data.init_args.sample_rate 16000: the model works at 8000 Hz"):
        SpeechEnhancer.take_from_data(model, "sample_rate", 16000, fresh=False)  # a trained one must match
