"""Every continuous sampler against the exact score of a Gaussian mixture.

The network is replaced by the Bayes-optimal denoiser of a 2-D, three-component mixture
(:class:`difflab.core.toy.GaussianMixture`), computed in closed form for each process. Whatever
difference remains between a sampler's output and the exact marginal at its end time is the
sampler's own error. Each case starts from the exact marginal at its start time (for OUVE the
SGMSE+ prior ``y + s(1) z`` is not the marginal, for flow matching the SDE drift diverges at
``t = 1``), and compares with the exact marginal at its end time: mode weights (nearest-mode
assignment), per-mode means and per-mode standard deviations. Run with ``-s`` to see the numbers.

Tolerances, n = 4000 samples: |weight error| <= 0.04 (3.5 standard errors of the 0.5 component),
|mean error| <= 0.05, |std ratio - 1| <= 0.12 (exact samples of the same size reach up to ~0.065
on the smallest component, so the samplers' own bias must stay below ~0.05).
"""

from __future__ import annotations

import math

import pytest
import torch

from difflab.core.processes import VESDE, VPSDE
from difflab.core.samplers import (
    Denoiser,
    sample_adaptive,
    sample_ddim,
    sample_ddpm,
    sample_dpm_solver,
    sample_euler,
    sample_euler_maruyama,
    sample_heun,
    sample_predictor_corrector,
    sample_probability_flow,
    time_grid,
)
from difflab.core.toy import GaussianMixture

try:
    from difflab.core.processes.ou import OUVESDE
except ImportError:  # pragma: no cover - optional until the module exists
    OUVESDE = None
try:
    from difflab.core.processes.flow import FlowMatching
except ImportError:  # pragma: no cover
    FlowMatching = None

DT = torch.float64
N = 4000
TOL_W, TOL_MEAN, TOL_SD = 0.04, 0.05, 0.12


pytestmark = pytest.mark.usefixtures("one_thread")


def mixture() -> GaussianMixture:
    return GaussianMixture.three_modes_2d(DT)


Y_VEC = torch.tensor([0.5, -0.5], dtype=DT)


# ---------------------------------------------------------------------------------------- the oracle itself
@pytest.mark.parametrize("proc", [VPSDE(), VESDE(sigma_max=10.0)], ids=["vp", "ve"])
def test_mixture_score_is_the_gradient_of_the_log_density(proc):
    gm = mixture()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2, generator=g, dtype=DT) * 2
    t = torch.rand(64, generator=g, dtype=DT) * 0.98 + 0.01
    xr = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(gm.log_prob_t(xr, t, proc).sum(), xr)
    torch.testing.assert_close(gm.score_t(x, t, proc), grad, rtol=1e-10, atol=1e-10)
    # Tweedie: E[a x0 | x_t] = x_t + s^2 score
    a, _, s = proc.coefficients(t)
    torch.testing.assert_close(a[:, None] * gm.x0_t(x, t, proc), x + s[:, None] ** 2 * grad, rtol=1e-10, atol=1e-10)
    # the marginal at a single time is the mixture returned by marginal_mixture
    mt = gm.marginal_mixture(0.3, proc)
    torch.testing.assert_close(mt.log_prob(x), gm.log_prob_t(x, 0.3, proc), rtol=1e-12, atol=1e-12)


def test_mixture_posterior_mean_matches_importance_sampling():
    """E[x0 | x_t] against a self-normalised Monte-Carlo estimate over prior samples of x0."""
    gm = mixture()
    proc = VPSDE()
    g = torch.Generator().manual_seed(1)
    x0s = gm.sample(400_000, g)
    t = torch.tensor(0.35, dtype=DT)
    a, _, s = (float(c) for c in proc.coefficients(t))
    for xt in ([0.2, 0.3], [-0.9, 0.1], [0.0, 0.0]):
        xt = torch.tensor(xt, dtype=DT)
        logw = -((xt - a * x0s) ** 2).sum(-1) / (2 * s**2)
        w = torch.softmax(logw, 0)
        mc = (w[:, None] * x0s).sum(0)
        exact = gm.x0_t(xt[None], t, proc)[0]
        ess = 1 / (w**2).sum()
        print(f"x_t={xt.tolist()}  exact={exact.tolist()}  MC={mc.tolist()}  ESS={float(ess):.0f}")
        torch.testing.assert_close(exact, mc, atol=0.01, rtol=0)


@pytest.mark.parametrize("prediction", ["eps", "x0", "v", "score", "velocity"])
def test_exact_model_parameterisations_agree(prediction):
    """Every parameterisation of the exact model maps back to the same (x0, eps) through the Denoiser."""
    gm = mixture()
    proc = VPSDE()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(32, 2, generator=g, dtype=DT)
    t = torch.rand(32, generator=g, dtype=DT) * 0.9 + 0.05
    ref_x0, ref_eps = gm.x0_eps_t(x, t, proc)
    x0, eps = Denoiser(gm.exact_model(proc, prediction), proc, prediction)(x, t)
    torch.testing.assert_close(x0, ref_x0, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(eps, ref_eps, rtol=1e-8, atol=1e-8)


# ---------------------------------------------------------------------------------------- samplers
# name -> (function, steps, options, grid kind, ends at t = 0?)
SAMPLERS = {
    "ddpm": (sample_ddpm, 250, {}, "uniform", True),
    "ddim_eta0": (sample_ddim, 100, {}, "log_snr", True),
    "ddim_eta1": (sample_ddim, 250, {"eta": 1.0}, "uniform", True),
    "dpm_solver_2m": (sample_dpm_solver, 30, {"order": 2}, "log_snr", True),
    "euler": (sample_euler, 100, {}, "karras", True),
    "heun": (sample_heun, 30, {}, "karras", True),
    "euler_maruyama": (sample_euler_maruyama, 500, {}, "uniform", False),
    "predictor_corrector": (sample_predictor_corrector, 400, {}, "uniform", False),
    "probability_flow_rk4": (sample_probability_flow, 20, {"method": "rk4"}, "uniform", False),
    "adaptive": (sample_adaptive, 1, {}, "uniform", False),
}
SDE_LIKE = {"euler_maruyama", "predictor_corrector", "probability_flow_rk4", "adaptive"}


def _processes():
    out = [pytest.param("vp", id="vp"), pytest.param("ve", id="ve")]
    skip_ou = pytest.mark.skipif(OUVESDE is None, reason="OUVESDE not available")
    skip_fm = pytest.mark.skipif(FlowMatching is None, reason="FlowMatching not available")
    out += [pytest.param("ou", id="ouve", marks=skip_ou), pytest.param("fm", id="flow", marks=skip_fm)]
    return out


def make_process(name: str):
    if name == "vp":
        return VPSDE()
    if name == "ve":
        return VESDE(sigma_min=0.01, sigma_max=10.0)
    if name == "ou":
        return OUVESDE()
    return FlowMatching()


def mode_errors(target: GaussianMixture, samples: torch.Tensor) -> tuple[float, float, float]:
    w, m, c = target.mode_statistics(samples)
    sd = torch.stack([c[k].diagonal().sqrt() for k in range(target.num_components)]) / target.stds[:, None]
    return (
        float((w - target.weights).abs().max()),
        float((m - target.means).abs().max()),
        float((sd - 1).abs().max()),
    )


@pytest.mark.parametrize("sampler", list(SAMPLERS))
@pytest.mark.parametrize("proc_name", _processes())
def test_sampler_reproduces_the_mixture(proc_name, sampler):
    fn, steps, options, kind, to_zero = SAMPLERS[sampler]
    proc = make_process(proc_name)
    gm = mixture()
    flow = proc_name == "fm"
    # flow matching: the reverse SDE's drift diverges at t = 1 and Karras grids need a finite sigma
    t_start = 1.0
    if flow and sampler in SDE_LIKE:
        t_start = 0.9
    elif flow and sampler in ("euler", "heun"):
        t_start = 0.99
    if flow and kind == "log_snr":
        kind = "uniform"  # log-SNR is -inf at t = 1
    t_end = 0.0 if to_zero else (proc.t_min if proc.t_min > 0 else 1e-3)
    # the adaptive solver controls the error per sample; a 2-D sample gives it a 2-element error
    # estimate whose accept/reject decisions bias the result, so each of its samples holds 32 points
    shape = (N // 32, 32, 2) if sampler == "adaptive" else (N, 2)
    g = torch.Generator().manual_seed(1)
    x0 = gm.sample(N, g).reshape(shape)
    y = Y_VEC.expand(shape) if proc.conditional else None
    x, _ = proc.sample_marginal(x0, torch.full(shape[:1], t_start, dtype=DT), y, generator=g)
    prediction = "velocity" if flow else "eps"
    den = Denoiser(gm.exact_model(proc, prediction, y=y), proc, prediction, y=y)
    grid = time_grid(steps, t_start=t_start, t_end=t_end, kind=kind, process=proc)
    res = fn(den, x, grid, generator=g, **options)
    # the adaptive solver ends with the Tweedie denoiser E[x0 | x_t_end]: compare with the data
    target = gm if sampler == "adaptive" else gm.marginal_mixture(t_end, proc, Y_VEC)
    w_err, m_err, sd_err = mode_errors(target, res.sample.reshape(-1, 2))
    ref = mode_errors(target, target.sample(N, torch.Generator().manual_seed(7)))
    print(
        f"\n{proc_name:>3} {sampler:<21} NFE {res.nfe:4d}  weight err {w_err:.3f}  mean err {m_err:.3f}  "
        f"std ratio err {sd_err:.3f}   (exact samples: {ref[0]:.3f} {ref[1]:.3f} {ref[2]:.3f})"
    )
    assert math.isfinite(sd_err)
    assert w_err <= TOL_W
    assert m_err <= TOL_MEAN
    assert sd_err <= TOL_SD
