"""PTQ4DM int8 post-training quantization of a small MLP denoiser fitted to the 2-D mixture.

The network (core's ``ToyMLP``, 64 wide, 2 blocks) is fitted briefly to the exact noise posterior mean
of the mixture (regression on the Bayes-optimal eps), then quantized with ``torch.ao``'s static flow
(int8 weights, 7-bit uint8 activations; the layers at the network's input and output stay float)
calibrated on 4096 inputs drawn along DDIM trajectories with the paper's normal law over time.
``DIFFLAB_TEST_SEED`` sets the network's initialisation, its training draws and the evaluation
noise. Per seed, one thread (``python scripts/learning_spread.py
tests/core/test_accel_quantization.py::test_int8_network_stays_close_to_fp32 --seeds 0-4``):

| seed | rms / output rms | max abs | mixture error int8 - fp32 | displacement | size ratio |
|---|---|---|---|---|---|
| 0 | 0.0236 | 0.124 | -0.037 | 0.024 | 0.467 |
| 1 | 0.0213 | 0.119 | +0.001 | 0.024 | 0.467 |
| 2 | 0.0242 | 0.147 | -0.007 | 0.061 | 0.467 |
| 3 | 0.0228 | 0.096 | -0.028 | 0.028 | 0.467 |
| 4 | 0.0236 | 0.131 | -0.031 | 0.030 | 0.467 |
| 0, two threads | 0.0237 | 0.141 | -0.042 | 0.024 | 0.467 |
| 1, two threads | 0.0217 | 0.130 | -0.004 | 0.025 | 0.467 |

Seeds 5-19 and 341 (``--seeds 5-19,341``): rms / output rms 0.021-0.038, max abs 0.10-0.17,
mixture error int8 - fp32 -0.049 to +0.044 (mean +0.0005: the sign is chance, the int8 network moves a
few of the 4,000 samples either way), displacement 0.021-0.147, size 0.467. Bounds set from seeds 0-4
alone (rms 0.05 x, mixture error + 0.03, displacement 0.12) failed seeds 10, 13 and 341.

Asserted, about twice the worst of the 21 seeds: rms <= 0.075 x the output rms and max <= 0.3;
mixture error within fp32's + 0.1; displacement <= 0.3; size below 0.6 of fp32's. With the input
and output layers in int8 too, seeds 1 and 2 failed (mixture error +1.5 and +6.1: clipped prior
tails ran away; see core's README).
"""

from __future__ import annotations

import pytest
import torch

from difflab.core.accelerate import collect_calibration_inputs, model_size_bytes, quantize_denoiser
from difflab.core.processes import VPSDE
from difflab.core.samplers import Denoiser, sample_ddim, time_grid
from difflab.core.toy import GaussianMixture, fit_eps_network

pytestmark = pytest.mark.usefixtures("one_thread")
F32 = torch.float32


def mixture() -> GaussianMixture:
    return GaussianMixture.three_modes_2d(F32)


def fitted_mlp(gm: GaussianMixture, proc: VPSDE, seed: int, steps: int = 1500) -> torch.nn.Module:
    """The MLP's initialisation and its training draws both come from ``seed``."""
    from difflab.core.lightning.toy import ToyMLP

    torch.manual_seed(seed)
    net = ToyMLP(2, hidden=64, depth=2, embed_dim=32)
    return fit_eps_network(net, gm, proc, steps=steps, generator=torch.Generator().manual_seed(seed))


def test_calibration_inputs_are_trajectory_states_spread_over_time():
    gm, proc = mixture(), VPSDE()
    g = torch.Generator().manual_seed(3)
    den = Denoiser(gm.exact_model(proc), proc)
    grid = time_grid(50, t_start=1.0, t_end=1e-3)
    x = torch.randn(2000, 2, generator=g)
    xs, ts = collect_calibration_inputs(den, sample_ddim, x, grid, generator=g)
    assert xs.shape == (2000, 2) and ts.shape == (2000,)
    states = [x]
    sample_ddim(den, x, grid, callback=lambda info: states.append(info["x"]))
    rows = (ts[:, None].double() - grid[None, :]).abs().argmin(dim=1)
    assert int(rows.max()) < 50  # the clean end is never a network input
    for b in range(0, 2000, 97):
        torch.testing.assert_close(xs[b], states[int(rows[b])][b])
    # NDTC: t ~ N(0.4, 0.4) clipped to the recorded times: both ends covered, median near 0.4
    print(f"\ncalibration times: min {float(ts.min()):.3f} median {float(ts.median()):.3f} max {float(ts.max()):.3f}")
    assert float(ts.min()) < 0.05 and float(ts.max()) > 0.95
    assert abs(float(ts.median()) - 0.4) < 0.05
    assert den.nfe == 50  # only the one sampling run of the callback check went through den


@pytest.mark.slow
def test_int8_network_stays_close_to_fp32(test_seed, record_property):
    gm, proc = mixture(), VPSDE()
    net = fitted_mlp(gm, proc, test_seed)
    g = torch.Generator().manual_seed(1 + test_seed)
    grid = time_grid(50, t_start=1.0, t_end=1e-3)
    cal = collect_calibration_inputs(
        Denoiser(net, proc), sample_ddim, torch.randn(4096, 2, generator=g), grid, generator=g
    )
    qnet = quantize_denoiser(net, cal)
    # the layers reading the state and writing the output stay float, the hidden ones are int8
    assert "inp" not in qnet.quantized_layers and "out" not in qnet.quantized_layers
    assert {"layers.0", "layers.1", "films.0.proj"} <= set(qnet.quantized_layers)
    t = 1e-3 + (1 - 1e-3) * torch.rand(4000, generator=g)
    xt, _ = proc.sample_marginal(gm.sample(4000, g), t, generator=g)
    with torch.no_grad():
        ref, out = net(xt, t), qnet(xt, t)
        x = torch.randn(4000, 2, generator=g)
        fs = sample_ddim(Denoiser(net, proc), x, grid).sample
        qs = sample_ddim(Denoiser(qnet, proc), x, grid).sample
        q64 = qnet(xt.double(), t.double())
    assert q64.dtype == torch.float64
    rms, top = float((out - ref).pow(2).mean().sqrt()), float((out - ref).abs().max())
    scale = float(ref.pow(2).mean().sqrt())
    e_fp, e_q = gm.mode_error(fs), gm.mode_error(qs)
    moved = float((qs - fs).norm(dim=-1).mean())
    ratio = model_size_bytes(qnet) / model_size_bytes(net)
    print(
        f"\nint8 vs fp32 outputs: rms {rms:.4f} (output rms {scale:.3f}) max {top:.3f}; "
        f"mixture error fp32 {e_fp:.4f} int8 {e_q:.4f}; displacement {moved:.4f}; size ratio {ratio:.2f}"
    )
    for name, value in {"rms_over_scale": rms / scale, "max_abs": top, "mixture_error_increase": e_q - e_fp}.items():
        record_property(name, value)
    record_property("displacement", moved)
    record_property("size_ratio", ratio)
    assert rms <= 0.075 * scale and top <= 0.3
    assert e_q <= e_fp + 0.1
    assert moved <= 0.3
    assert ratio < 0.6


def test_quantize_refuses_bad_input():
    net = torch.nn.Sequential(torch.nn.SiLU())
    with pytest.raises(ValueError, match="no Linear or Conv"):
        quantize_denoiser(net, (torch.zeros(4, 2), torch.zeros(4)))
    with pytest.raises(ValueError, match="observer"):
        quantize_denoiser(net, (torch.zeros(4, 2), torch.zeros(4)), observer="mse")


def test_a_network_with_a_condition_argument_is_calibrated_through_its_own_calls():
    """``quantize_network`` takes any call signature: the calibration callable runs the prepared copy
    as the network is called (here with a condition), and the converted copy keeps its class and
    attributes and stays close to float."""
    from torch import nn

    from difflab.core.accelerate import quantize_network

    class Conditioned(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp, self.cond, self.out = nn.Linear(2, 32), nn.Linear(3, 32), nn.Linear(32, 2)
            self.note = "kept"

        def forward(self, x, t, c):
            return self.out(torch.relu(self.inp(x) + self.cond(c) * t[:, None]))

    torch.manual_seed(0)
    net = Conditioned().eval()
    x, t, c = torch.randn(2048, 2), torch.rand(2048), torch.randn(2048, 3)
    q, names = quantize_network(net, lambda prepared: prepared(x, t, c), float_io=False)
    assert isinstance(q, Conditioned) and q.note == "kept" and names == ["inp", "cond", "out"]
    # by default the layers at the network's input x and at its output stay float
    assert quantize_network(net, lambda prepared: prepared(x, t, c))[1] == ["cond"]
    with torch.no_grad():
        ref, out = net(x[:256], t[:256], c[:256]), q(x[:256], t[:256], c[:256])
    assert float((out - ref).pow(2).mean().sqrt()) < 0.1 * float(ref.pow(2).mean().sqrt())


def test_attention_projections_stay_float_and_the_rest_is_converted():
    from torch import nn

    from difflab.core.accelerate import quantize_network

    class WithAttention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp = nn.Linear(2, 16)
            self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
            self.layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
            self.out = nn.Linear(16, 2)

        def forward(self, x, t):
            h = self.inp(x) * (1 + t[:, None, None])
            return self.out(self.layer(self.attn(h, h, h, need_weights=False)[0] + h))

    torch.manual_seed(0)
    net = WithAttention().eval()
    x, t = torch.randn(64, 5, 2), torch.rand(64)
    q, names = quantize_network(net, lambda prepared: prepared(x, t), float_io=False)
    assert names == ["inp", "out"]
    with torch.no_grad():
        ref, out = net(x, t), q(x, t)
    assert float((out - ref).pow(2).mean().sqrt()) < 0.1 * float(ref.pow(2).mean().sqrt())
