"""The adaptive SDE solver against Euler–Maruyama, and ParaDiGMS against its sequential sampler.

Both use the exact score of a Gaussian mixture (:mod:`difflab.core.toy`) so that the only error is
the sampler's. Run with ``-s`` to see the numbers.
"""

from __future__ import annotations

import pytest
import torch

from difflab.core.processes import VPSDE
from difflab.core.samplers import (
    Denoiser,
    sample_adaptive,
    sample_ddim,
    sample_ddpm,
    sample_euler_maruyama,
    sample_paradigms,
    time_grid,
)
from difflab.core.toy import GaussianMixture

try:
    from difflab.core.processes.ou import OUVESDE
except ImportError:  # pragma: no cover
    OUVESDE = None

DT = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------------------- adaptive vs EM
def test_adaptive_reaches_euler_maruyama_error_with_half_the_nfe():
    """D = 256, four narrow components (std 0.05). EM needs hundreds of steps to remove its residual
    noise; the adaptive solver (abs_tol 0.0078, rel_tol 0.05) gets below EM-400's error with at most
    half its NFE (batched NFE, so the per-sample count is lower still)."""
    g = torch.Generator().manual_seed(0)
    d, k, n = 256, 4, 200
    gm = GaussianMixture(torch.randn(k, d, generator=g, dtype=DT) * 0.5, 0.05, torch.tensor([0.1, 0.2, 0.3, 0.4]))
    proc = VPSDE(t_min=1e-5)
    den = Denoiser(gm.exact_model(proc), proc)
    x = proc.prior_sample((n, d), generator=g, dtype=DT)

    def report(name, res):
        spread = gm.spread_error(res.sample)
        w_err = float((gm.mode_weights(res.sample) - gm.weights).abs().max())
        print(
            f"\n{name:<22} NFE {res.nfe:4d}  |rms distance / (std sqrt D) - 1| = {spread:.4f}  weight err {w_err:.3f}"
        )
        return spread, w_err

    em = {}
    for steps in (100, 200, 400):
        res = sample_euler_maruyama(
            den, x, time_grid(steps, t_end=proc.t_min), generator=torch.Generator().manual_seed(1)
        )
        em[steps] = (res.nfe, *report(f"Euler-Maruyama {steps}", res))
    res = sample_adaptive(den, x, abs_tol=0.0078, rel_tol=0.05, generator=torch.Generator().manual_seed(1))
    ad_spread, ad_w = report("adaptive (rel 0.05)", res)
    print(f"adaptive per-sample NFE mean {res.info['per_sample_nfe_mean']:.1f}, rounds {res.info['rounds']}")

    assert em[100][1] > 0.2 and em[200][1] > 0.05  # EM still carries visible residual noise
    assert ad_spread <= em[400][1]
    assert 2 * res.nfe <= em[400][0]
    assert ad_w <= 0.1 and em[400][2] <= 0.1  # 200 samples: standard error of a weight <= 0.035


def test_adaptive_accounting_and_options():
    gm = GaussianMixture(torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=DT), 0.3)
    proc = VPSDE()
    den = Denoiser(gm.exact_model(proc), proc)
    x = proc.prior_sample((16, 8, 2), generator=torch.Generator().manual_seed(0), dtype=DT)
    steps = []
    res = sample_adaptive(den, x, generator=torch.Generator().manual_seed(1), callback=steps.append)
    attempts = res.info["accepted"] + res.info["rejected"]
    assert res.nfe == 2 * res.info["rounds"] + 1 == den.nfe
    assert int(attempts.max()) == res.info["rounds"]
    assert res.info["per_sample_nfe_mean"] == pytest.approx(2 * float(attempts.double().mean()) + 1)
    assert len(steps) == res.info["rounds"] and torch.all(steps[-1]["t"] == proc.t_min)
    # the grid form used by run_sampler: only its end points matter
    res2 = sample_adaptive(
        den, x, torch.tensor([1.0, proc.t_min], dtype=DT), generator=torch.Generator().manual_seed(1)
    )
    torch.testing.assert_close(res2.sample, res.sample)
    with pytest.raises(RuntimeError, match="max_steps"):
        sample_adaptive(den, x, max_steps=3, generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match="t_start"):
        sample_adaptive(den, x, t_start=0.1, t_end=0.2)


# ---------------------------------------------------------------------------------------- ParaDiGMS
def _mixture_2d() -> GaussianMixture:
    return GaussianMixture.three_modes_2d(DT)


def test_paradigms_matches_sequential_ddim_with_fewer_rounds():
    """100 DDIM steps: ParaDiGMS (window 20, tau 0.1, per-sample error check) needs at most half the
    sequential rounds and reproduces the sequential samples: 99% of samples within tau x the smallest
    component std, and a tighter tau converges to the sequential result. (A few samples that start
    near a boundary between modes amplify the allowed per-step deviation, so the maximum over the
    batch converges more slowly than the bulk.)"""
    gm = _mixture_2d()
    proc = VPSDE()
    den = Denoiser(gm.exact_model(proc), proc)
    n = 2000
    x = proc.prior_sample((n, 2), generator=torch.Generator().manual_seed(0), dtype=DT)
    grid = time_grid(100, t_end=0.0)
    ref = sample_ddim(den, x, grid)
    scale = float(gm.stds.min())
    for tau in (0.1, 0.01, 1e-3):
        res = sample_paradigms(den, x, grid, window=20, tolerance=tau)
        dev = (res.sample - ref.sample).pow(2).mean(-1).sqrt()
        q99 = float(torch.quantile(dev, 0.99))
        print(
            f"\ntau {tau:<6} rounds {res.info['rounds']:3d} (sequential {ref.nfe})  total NFE {res.nfe:4d}  "
            f"per-sample RMS deviation: median {float(dev.median()):.2e}  99% {q99:.2e}  max {float(dev.max()):.2e}"
        )
        assert 2 * res.info["rounds"] <= ref.nfe
        assert q99 <= tau * scale
        assert float(dev.median()) <= 0.01 * tau * scale
        if tau == 1e-3:  # every sample within a tenth of a component std
            assert float(dev.max()) <= 0.1 * scale
    # window 1 is the sequential sampler
    seq = sample_paradigms(den, x, grid, window=1)
    assert seq.info["rounds"] == 100
    torch.testing.assert_close(seq.sample, ref.sample, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["ddpm", "ddim_eta1"])
def test_paradigms_stochastic_steps_use_the_sequential_noise(kind):
    """With the same generator the pre-drawn noises are the sequential sampler's, so the outputs agree."""
    gm = _mixture_2d()
    proc = VPSDE()
    den = Denoiser(gm.exact_model(proc), proc)
    x = proc.prior_sample((500, 2), generator=torch.Generator().manual_seed(0), dtype=DT)
    grid = time_grid(50, t_end=0.0)
    if kind == "ddpm":
        ref = sample_ddpm(den, x, grid, generator=torch.Generator().manual_seed(3))
        res = sample_paradigms(den, x, grid, step="ddpm", tolerance=1e-4, generator=torch.Generator().manual_seed(3))
    else:
        ref = sample_ddim(den, x, grid, eta=1.0, generator=torch.Generator().manual_seed(3))
        res = sample_paradigms(den, x, grid, eta=1.0, tolerance=1e-4, generator=torch.Generator().manual_seed(3))
    dev = (res.sample - ref.sample).abs().max()
    print(f"\n{kind}: rounds {res.info['rounds']} of 50, max deviation {float(dev):.2e}")
    assert res.info["rounds"] < 50
    assert float(dev) < 1e-3


@pytest.mark.skipif(OUVESDE is None, reason="OUVESDE not available")
def test_paradigms_conditional_process_tiles_the_condition():
    gm = _mixture_2d()
    proc = OUVESDE()
    n = 300
    y = torch.tensor([0.5, -0.5], dtype=DT).expand(n, 2)
    den = Denoiser(gm.exact_model(proc, y=y), proc, y=y)
    x0 = gm.sample(n, torch.Generator().manual_seed(0))
    x, _ = proc.sample_marginal(x0, torch.ones(n, dtype=DT), y, generator=torch.Generator().manual_seed(1))
    grid = time_grid(60, t_end=0.0)
    ref = sample_ddim(den, x, grid)
    res = sample_paradigms(den, x, grid, window=15, tolerance=1e-3)
    assert den.y is y
    assert res.info["rounds"] < 30
    torch.testing.assert_close(res.sample, ref.sample, atol=1e-3, rtol=0)


def test_paradigms_rejects_bad_options():
    gm = _mixture_2d()
    proc = VPSDE()
    den = Denoiser(gm.exact_model(proc), proc)
    x = torch.zeros(2, 2, dtype=DT)
    grid = time_grid(4)
    with pytest.raises(ValueError, match="step"):
        sample_paradigms(den, x, grid, step="heun")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="window"):
        sample_paradigms(den, x, grid, window=0)
