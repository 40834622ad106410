"""DDPM, DDIM, DPM-Solver++, Euler and Heun against closed forms.

Two oracles whose exact answers are known for every process and grid:

* point-mass data ``x0 = m``: the exact denoiser is the constant ``m`` and ``q(x_s | x_t, x0 = m)`` is
  the true reverse kernel, so DDPM (fixed_small) and DDIM (any eta) sample the marginals
  ``N(a_s m + b_s y, s_s^2)`` exactly, and every deterministic solver follows the exact path
  ``x_s = a_s m + b_s y + s_s z`` (``z`` fixed by the start); Karras' churn keeps the marginals exact.
* Gaussian data ``x0 ~ N(m, c^2)``: the probability-flow ODE has the closed-form flow
  ``x~_s - m = (x~_t - m) sqrt((c^2 + sigma_s^2) / (c^2 + sigma_t^2))`` in ``x~ = (x - b y) / a``, so the
  solvers' global errors must shrink at their orders (1 for Euler / DDIM / DPM-Solver-1, 2 for Heun
  and DPM-Solver++ 2M).

Processes: VP (continuous and discrete), VE and a ResShift-like conditional process with Markov
ratio 1 (``x_t = x0 + eta (y - x0) + kappa sqrt(eta) eps``).
"""

from __future__ import annotations

import pytest
import torch

from difflab.core.broadcast import expand_like
from difflab.core.processes import VESDE, VPSDE, DiscreteVP, LinearGaussianProcess
from difflab.core.samplers import (
    Denoiser,
    sample_ddim,
    sample_ddpm,
    sample_dpm_solver,
    sample_euler,
    sample_heun,
    time_grid,
)


class ResidualShift(LinearGaussianProcess):
    """ResShift-like: ``a = 1 - eta``, ``b = eta``, ``s = kappa sqrt(eta)``, ``eta = 0.99 t``, ratio 1."""

    conditional = True

    def coefficients(self, t):
        eta = 0.99 * t
        return 1 - eta, eta, 0.5 * eta.sqrt()

    def transition_ratio(self, s, t):
        return torch.ones_like(t)


M = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
C = torch.tensor([0.3, 1.0, 0.05], dtype=torch.float64)

CASES = {  # process, grid kind, t_end
    "DiscreteVP": (DiscreteVP("linear", 1000), "karras", 0.0),
    "VPSDE": (VPSDE(), "log_snr", 1e-3),
    "VESDE": (VESDE(0.01, 50.0), "karras", 1e-5),
    "ResidualShift": (ResidualShift(), "karras", 0.0),
}

DETERMINISTIC = {
    "ddim": sample_ddim,
    "dpm1": lambda *a, **k: sample_dpm_solver(*a, order=1, **k),
    "dpm2": sample_dpm_solver,
    "euler": sample_euler,
    "heun": sample_heun,
}


def gaussian_model(proc, c, y):
    """Exact x0-prediction for data N(M, c^2): ``E[x0 | x'] = m + a c^2 (x' - a m) / (a^2 c^2 + s^2)``."""

    def model(x, t):
        a, b, s = (expand_like(k, x) for k in proc.coefficients(t))
        xs = x - b * y if proc.conditional else x
        return M + a * c**2 * (xs - a * M) / (a**2 * c**2 + s**2)

    return model


def coeffs(proc, t, x):
    return (expand_like(k, x) for k in proc.coefficients(torch.as_tensor(t, dtype=x.dtype).reshape(-1)))


def start(proc, n, y, seed=1):
    """x at t = 1 drawn from the point-mass marginal; returns it and its standard noise z."""
    z = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x, _ = proc.sample_marginal(M.expand(n, 3), torch.ones(1, dtype=torch.float64), y, noise=z)
    return x, z


def make_y(proc, n):
    return (
        torch.randn(n, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64) if proc.conditional else None
    )


# ------------------------------------------------------------------ point mass: exact paths
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", list(DETERMINISTIC))
def test_deterministic_solvers_follow_the_exact_path_for_point_mass_data(case, name):
    proc, kind, t_end = CASES[case]
    y = make_y(proc, 8)
    x, z = start(proc, 8, y)
    grid = time_grid(7, t_end=t_end, kind=kind, process=proc)
    seen = []
    out = DETERMINISTIC[name](Denoiser(gaussian_model(proc, 0.0, y), proc, "x0", y=y), x, grid, callback=seen.append)
    assert [d["step"] for d in seen] == list(range(7))
    for d in seen:
        a, b, s = coeffs(proc, d["t"][0], x)
        torch.testing.assert_close(d["x"], a * M + (b * y if y is not None else 0) + s * z, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(out.sample, seen[-1]["x"], rtol=0, atol=0)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", ["ddpm", "ddim_eta_0.5", "ddim_eta_1", "euler_churn", "heun_churn"], ids=lambda s: s)
def test_stochastic_samplers_keep_the_point_mass_marginals(case, name):
    proc, kind, t_end = CASES[case]
    n = 4000
    y = make_y(proc, n)
    x, _ = start(proc, n, y)
    grid = time_grid(6, t_end=t_end, kind=kind, process=proc)
    den = Denoiser(gaussian_model(proc, 0.0, y), proc, "x0", y=y)
    g = torch.Generator().manual_seed(3)
    fn = {
        "ddpm": lambda cb: sample_ddpm(den, x, grid, generator=g, callback=cb),
        "ddim_eta_0.5": lambda cb: sample_ddim(den, x, grid, eta=0.5, generator=g, callback=cb),
        "ddim_eta_1": lambda cb: sample_ddim(den, x, grid, eta=1.0, generator=g, callback=cb),
        "euler_churn": lambda cb: sample_euler(den, x, grid, s_churn=2.0, generator=g, callback=cb),
        "heun_churn": lambda cb: sample_heun(den, x, grid, s_churn=2.0, generator=g, callback=cb),
    }[name]
    seen = []
    fn(seen.append)
    for d in seen[:-1]:  # DDPM's last step adds no noise, so check the intermediate marginals
        a, b, s = coeffs(proc, d["t"][0], x)
        z = (d["x"] - a * M - (b * y if y is not None else 0)) / s
        assert z.mean(0).abs().max() < 0.08, (d["step"], z.mean(0))
        assert (z.std(0) - 1).abs().max() < 0.06, (d["step"], z.std(0))


def test_churn_is_reproducible_and_uses_the_generator():
    proc = DiscreteVP("linear", 1000)
    x, _ = start(proc, 16, None)
    grid = time_grid(10, kind="karras", process=proc)
    den = Denoiser(gaussian_model(proc, C, None), proc, "x0")

    def run(seed, **kw):
        return sample_heun(den, x, grid, s_churn=5.0, generator=torch.Generator().manual_seed(seed), **kw).sample

    torch.testing.assert_close(run(0), run(0), rtol=0, atol=0)
    assert (run(0) - run(1)).abs().max() > 1e-3
    # outside [s_tmin, s_tmax] there is no churn: the deterministic sampler
    torch.testing.assert_close(run(0, s_tmin=1e6), sample_heun(den, x, grid).sample, rtol=0, atol=0)


# ------------------------------------------------------------------ Gaussian data: orders of convergence
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize(("name", "order"), [("ddim", 1), ("dpm1", 1), ("euler", 1), ("heun", 2), ("dpm2", 2)])
def test_order_of_convergence_on_gaussian_data(case, name, order):
    proc, kind, t_end = CASES[case]
    y = make_y(proc, 32)
    x, _ = start(proc, 32, y)
    a0, b0, _ = coeffs(proc, 1.0, x)
    errors = []
    for n in (16, 64):
        grid = time_grid(n, t_end=t_end, kind=kind, process=proc)
        out = DETERMINISTIC[name](Denoiser(gaussian_model(proc, C, y), proc, "x0", y=y), x, grid)
        s_T, s_e = proc.sigma(grid[:1]), proc.sigma(grid[-1:])
        xt = (x - (b0 * y if y is not None else 0)) / a0
        a_e, b_e, _ = coeffs(proc, grid[-1], x)
        exact = a_e * (M + (xt - M) * ((C**2 + s_e**2) / (C**2 + s_T**2)).sqrt()) + (b_e * y if y is not None else 0)
        errors.append((out.sample - exact).abs().max().item())
    ratio = errors[0] / errors[1]  # 4x the steps: 4 for first order, 16 for second order
    if order == 1:
        assert 3.0 < ratio < 5.0, errors
    else:
        assert ratio > 10.0, errors


def test_first_order_solvers_coincide():
    """DDIM (eta = 0), DPM-Solver-1 and Euler in sigma are the same update (Lu et al. 2022, Karras et al. 2022)."""
    proc = ResidualShift()
    y = make_y(proc, 5)
    x, _ = start(proc, 5, y)
    grid = time_grid(9, kind="uniform")
    den = Denoiser(gaussian_model(proc, C, y), proc, "x0", y=y)
    ref = sample_ddim(den, x, grid).sample
    for fn in (DETERMINISTIC["dpm1"], sample_euler):
        torch.testing.assert_close(fn(den, x, grid).sample, ref, rtol=1e-10, atol=1e-10)


# ------------------------------------------------------------------ per-element grids, NFE, callbacks
@pytest.mark.parametrize("name", list(DETERMINISTIC))
def test_per_element_grids_equal_separate_runs(name):
    """Rows of shape (B,): each element follows its own grid, as if sampled alone."""
    proc = DiscreteVP("linear", 1000)
    x, _ = start(proc, 3, None)
    grids = [
        time_grid(6, t_start=ts, t_end=te, kind="karras", process=proc) for ts, te in [(1, 0), (0.7, 0), (0.9, 0.02)]
    ]
    den = Denoiser(gaussian_model(proc, C, None), proc, "x0")
    batch = DETERMINISTIC[name](den, x, torch.stack(grids, dim=1)).sample
    for i, g in enumerate(grids):
        alone = DETERMINISTIC[name](den, x[i : i + 1], g).sample
        torch.testing.assert_close(batch[i : i + 1], alone, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", ["ddpm", *DETERMINISTIC])
def test_tokens_whose_time_does_not_change_keep_their_state(name):
    """Per-token rows (B, L) of a (B, L, D) tensor: clean tokens held at t = 0, others denoised."""
    proc = DiscreteVP("linear", 1000)
    B, L, D = 2, 4, 3
    x = torch.randn(B, L, D, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    g = time_grid(5, kind="karras", process=proc)
    grid = g[:, None, None].repeat(1, B, L)
    grid[:, :, 0] = 0.0  # token 0 clean throughout
    grid[:3, :, 1] = g[2]  # token 1 waits at an intermediate time, then starts
    sampler = sample_ddpm if name == "ddpm" else DETERMINISTIC[name]
    kw = {"generator": torch.Generator().manual_seed(1)} if name == "ddpm" else {}
    out = sampler(Denoiser(lambda x, t: 0.1 * x, proc, "x0"), x, grid, **kw).sample
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[:, 0], x[:, 0], rtol=0, atol=0)
    assert (out[:, 1:] - x[:, 1:]).abs().min() > 0


@pytest.mark.parametrize(
    ("name", "t_end", "nfe"),
    [("ddpm", 0.0, 8), ("ddim", 0.0, 8), ("dpm2", 0.0, 8), ("euler", 0.0, 8), ("heun", 0.0, 15), ("heun", 1e-3, 16)],
)
def test_nfe_and_callbacks(name, t_end, nfe):
    proc = VPSDE()
    x, _ = start(proc, 4, None)
    grid = time_grid(8, t_end=t_end, kind="karras", process=proc)
    den = Denoiser(gaussian_model(proc, C, None), proc, "x0")
    den.nfe = 5  # counts are deltas
    seen = []
    sampler = sample_ddpm if name == "ddpm" else DETERMINISTIC[name]
    out = sampler(den, x, grid, callback=seen.append)
    assert out.nfe == nfe and den.nfe == 5 + nfe
    assert [d["step"] for d in seen] == list(range(8))
    for i, d in enumerate(seen):
        assert set(d) == {"step", "t", "x", "x0"}
        torch.testing.assert_close(d["t"], grid[i + 1].expand(4).to(x.dtype))
        assert d["x"].shape == d["x0"].shape == x.shape
    assert out.sample.dtype == x.dtype


def test_float32_state_stays_float32(generator):
    proc = DiscreteVP("linear", 1000)
    x = torch.randn(2, 3, generator=generator)
    grid = time_grid(4, kind="karras", process=proc)
    den = Denoiser(lambda x, t: 0.5 * x, proc, "eps")
    for fn in (sample_ddpm, *DETERMINISTIC.values()):
        assert fn(den, x, grid).sample.dtype == torch.float32


def test_bad_options_raise_with_the_value():
    proc = VPSDE()
    den = Denoiser(lambda x, t: x, proc, "eps")
    x, grid = torch.zeros(1, 2), time_grid(2)
    with pytest.raises(ValueError, match="learned_range"):
        sample_ddpm(den, x, grid, variance="learned_range")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="-0.5"):
        sample_ddim(den, x, grid, eta=-0.5)
    with pytest.raises(ValueError, match="4"):
        sample_dpm_solver(den, x, grid, order=4)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="-1"):
        sample_euler(den, x, grid, s_churn=-1.0)


def test_fixed_large_uses_the_transition_variance():
    """One DDPM step with ``fixed_large``: noise std ``sqrt(s_t^2 - r^2 s_s^2)`` (``kappa^2 (eta_t - eta_s)`` here)."""
    proc = ResidualShift()
    y = make_y(proc, 2)
    x, _ = start(proc, 2, y)
    grid = torch.tensor([0.8, 0.5, 0.0], dtype=torch.float64)
    den = Denoiser(gaussian_model(proc, C, y), proc, "x0", y=y)
    seen = []
    sample_ddpm(den, x, grid, variance="fixed_large", generator=torch.Generator().manual_seed(4), callback=seen.append)
    t, s = torch.full((2,), 0.8, dtype=torch.float64), torch.full((2,), 0.5, dtype=torch.float64)
    x0, eps = den(x, t)
    mean, _ = proc.posterior(x, x0, s, t, y, eps=eps, eta=1.0)
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    std = 0.5 * (0.99 * 0.8 - 0.99 * 0.5) ** 0.5
    torch.testing.assert_close(seen[0]["x"], mean + std * z, rtol=1e-12, atol=1e-12)


def test_ddim_step_hook_sees_each_posterior_draw_and_sets_the_next_state():
    """A hook returning its input changes nothing; a hook that resets the state to ``a_s x0_hat`` makes
    every step start from the noise-free mean, which for point-mass data is ``a_s m`` exactly."""
    proc = DiscreteVP("linear", 1000)
    x, _ = start(proc, 4, None)
    grid = time_grid(6, kind="uniform")
    den = Denoiser(lambda x_t, t: M.expand_as(x_t), proc, "x0")
    seen = []

    def same(step):
        seen.append(step["step"])
        assert set(step) == {"step", "t", "x", "x0", "parts"}
        return step["x"]

    g = torch.Generator().manual_seed(0)
    plain = sample_ddim(den, x, grid, eta=1.0, generator=torch.Generator().manual_seed(0))
    hooked = sample_ddim(den, x, grid, eta=1.0, generator=g, step_hook=same)
    assert seen == list(range(6)) and torch.equal(plain.sample, hooked.sample)
    a_s = []

    def settle(step):
        a_s.append(step["parts"][0])
        return step["parts"][0] * step["x0"]

    last = []
    sample_ddim(den, x, grid[:-1], eta=1.0, generator=g, step_hook=settle, callback=last.append)
    a_check, _, _ = proc.coefficients(grid[1:-1])
    torch.testing.assert_close(torch.stack(a_s), a_check)
    torch.testing.assert_close(last[-1]["x"], a_check[-1] * M.expand_as(x))
