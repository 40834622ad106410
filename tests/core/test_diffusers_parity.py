"""The Gaussian samplers reproduce diffusers' sampling loops step for step.

Same network, same initial noise, same fresh noise (both sides draw it from identically seeded
``torch.Generator`` s, in float64, in the same order), T = 1000 linear schedule, clip_sample=False.

Time grids: diffusers' timestep ``j`` is our ``t = (j + 1) / T`` and its final state (``alpha_bar``
= 1 with ``set_alpha_to_one``, or ``sigma = 0``) is ``t = 0``. For Euler the grid is built from the
scheduler's sigmas with ``DiscreteVP.t_from_sigma`` (its timesteps are fractional and its sigmas
interpolated linearly in sigma), and diffusers' initial ``sigma_max z`` in VE coordinates is our
``a(t_0) sigma_max z``.

The network is the exact denoiser of N(0, 0.25 I) data plus a fixed random ``0.1 tanh(x W + u j/T)``
so that samples stay of order one (a plain random map makes eps-prediction samples explode).

DDPM's variance clamp at 1e-20 only acts on its last step (timestep 0 to alpha_bar = 1), where it
adds no noise, and our last step adds none either. DDPM/DDIM use diffusers' default "leading"
spacing (steps_offset 0), DPM-Solver and Euler its default "linspace"; other spacings map the same
way (tested for DDIM).

diffusers keeps ``alphas_cumprod`` in float32, and DPM-Solver and Euler cast the state and sigmas to
float32 inside ``step``; that rounding (about 1e-7 relative) is what separates the loops. With the
scheduler given our float64 ``alphas_cumprod``, DDPM and DDIM agree to rounding (1e-12): our generic
posterior is their formula, with no special case.
"""

from __future__ import annotations

import pytest
import torch

diffusers = pytest.importorskip("diffusers")
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning")

from difflab.core.processes import DiscreteVP  # noqa: E402
from difflab.core.samplers import (  # noqa: E402
    Denoiser,
    sample_ddim,
    sample_ddpm,
    sample_dpm_solver,
    sample_dpmpp_2m_sde,
    sample_euler,
    sample_euler_ancestral,
)

T = 1000
SHAPE = (3, 2, 6)
PRED = {"epsilon": "eps", "v_prediction": "v"}
PROCESS = DiscreteVP("linear", T)


def make_net(ptype: str):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(SHAPE[-1], SHAPE[-1], generator=g, dtype=torch.float64) / SHAPE[-1] ** 0.5
    u = torch.randn(SHAPE[-1], generator=g, dtype=torch.float64)

    def net(x: torch.Tensor, j: torch.Tensor | int | float) -> torch.Tensor:
        j = torch.as_tensor(j, dtype=x.dtype)
        j = j.reshape(j.shape + (1,) * (x.ndim - j.ndim))
        ab = PROCESS.alpha_bar((j + 1) / T)
        a, s = ab.sqrt(), (1 - ab).sqrt()
        den = a**2 * 0.25 + s**2
        x0, eps = a * 0.25 * x / den, s * x / den
        out = eps if ptype == "epsilon" else a * eps - s * x0
        return out + 0.1 * torch.tanh(x @ w + (j / T) * u)

    return net


def x_init() -> torch.Tensor:
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def grid_from_timesteps(timesteps: torch.Tensor) -> torch.Tensor:
    return torch.cat([(timesteps.double() + 1) / T, torch.zeros(1, dtype=torch.float64)])


def ours(net):
    """Our model callable: continuous t back to the diffusers timestep j = t T - 1."""
    return lambda x, t: net(x, t * T - 1)


def run_diffusers(scheduler, net, n, x, **step_kwargs):
    scheduler.set_timesteps(n)
    for j in scheduler.timesteps:
        x = scheduler.step(net(x, j), j, x, **step_kwargs).prev_sample
    return x


def exact_schedule(scheduler):
    scheduler.alphas_cumprod = PROCESS.alphas_cumprod[1:].clone()
    return scheduler


def sigma_scheduler_setup(sch, net):
    """For a scheduler that steps in sigma (Euler, Euler ancestral, LMS): our grid (its sigmas mapped
    to time), the model callable at the scheduler's fractional timestep of each grid point, and the
    start state factor ``a(t_0) sigma_max`` of diffusers' initial ``sigma_max z`` in VE coordinates."""
    sigmas, timesteps = sch.sigmas.double(), sch.timesteps.double()
    grid = PROCESS.t_from_sigma(sigmas)

    def model(x, t):  # our t -> the scheduler's (fractional) timestep at that grid point
        k = torch.argmin((grid[:, None] - t[None, :]).abs(), dim=0)
        return net(x, timesteps[k])

    return grid, model, sch.init_noise_sigma * PROCESS.coefficients(grid[:1])[0]


STEPS = [10, 25, 50]


@pytest.mark.parametrize("ptype", list(PRED))
@pytest.mark.parametrize("n", STEPS)
@pytest.mark.parametrize("variance", ["fixed_small", "fixed_large"])
@pytest.mark.parametrize("exact", [False, True])
def test_ddpm_matches_ddpm_scheduler(ptype, n, variance, exact):
    net = make_net(ptype)
    sch = diffusers.DDPMScheduler(
        num_train_timesteps=T, beta_schedule="linear", clip_sample=False, prediction_type=ptype, variance_type=variance
    )
    sch = exact_schedule(sch) if exact else sch
    ref = run_diffusers(sch, net, n, x_init(), generator=torch.Generator().manual_seed(5))
    den = Denoiser(ours(net), PROCESS, PRED[ptype])
    grid = grid_from_timesteps(sch.timesteps)
    out = sample_ddpm(den, x_init(), grid, generator=torch.Generator().manual_seed(5), variance=variance)
    assert out.nfe == n
    torch.testing.assert_close(out.sample, ref, rtol=0, atol=1e-12 if exact else 1e-5)


@pytest.mark.parametrize("ptype", list(PRED))
@pytest.mark.parametrize("n", STEPS)
@pytest.mark.parametrize("eta", [0.0, 1.0])
@pytest.mark.parametrize("exact", [False, True])
def test_ddim_matches_ddim_scheduler(ptype, n, eta, exact):
    net = make_net(ptype)
    sch = diffusers.DDIMScheduler(
        num_train_timesteps=T, beta_schedule="linear", clip_sample=False, prediction_type=ptype
    )
    sch = exact_schedule(sch) if exact else sch
    ref = run_diffusers(sch, net, n, x_init(), eta=eta, generator=torch.Generator().manual_seed(5))
    den = Denoiser(ours(net), PROCESS, PRED[ptype])
    grid = grid_from_timesteps(sch.timesteps)
    out = sample_ddim(den, x_init(), grid, eta=eta, generator=torch.Generator().manual_seed(5))
    assert out.nfe == n
    torch.testing.assert_close(out.sample, ref, rtol=0, atol=1e-12 if exact else 1e-5)


@pytest.mark.parametrize("eta", [0.0, 1.0])
@pytest.mark.parametrize(
    "config",
    [{"timestep_spacing": "trailing"}, {"steps_offset": 1, "set_alpha_to_one": False}, {"set_alpha_to_one": False}],
    ids=["trailing", "offset1-final-abar0", "final-abar0"],
)
def test_ddim_spacing_offset_and_final_alpha(config, eta):
    """Other diffusers grids map the same way; without ``set_alpha_to_one`` the chain ends at t = 1/T.

    With steps_offset 0 that makes diffusers' last step go from timestep 0 to alpha_bar_0, i.e. from
    t = 1/T to t = 1/T: an identity step that still costs an NFE, as our held (equal-time) step does.
    """
    net = make_net("v_prediction")
    sch = diffusers.DDIMScheduler(
        num_train_timesteps=T, beta_schedule="linear", clip_sample=False, prediction_type="v_prediction", **config
    )
    ref = run_diffusers(sch, net, 20, x_init(), eta=eta, generator=torch.Generator().manual_seed(5))
    grid = grid_from_timesteps(sch.timesteps)
    if not config.get("set_alpha_to_one", True):
        grid[-1] = 1 / T
    den = Denoiser(ours(net), PROCESS, "v")
    out = sample_ddim(den, x_init(), grid, eta=eta, generator=torch.Generator().manual_seed(5))
    assert out.nfe == 20
    torch.testing.assert_close(out.sample, ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("ptype", list(PRED))
@pytest.mark.parametrize("n", STEPS)
@pytest.mark.parametrize(("order", "solver_type"), [(1, "midpoint"), (2, "midpoint"), (2, "heun"), (3, "midpoint")])
def test_dpm_solver_pp_matches_multistep_scheduler(ptype, n, order, solver_type):
    net = make_net(ptype)
    sch = diffusers.DPMSolverMultistepScheduler(
        num_train_timesteps=T,
        beta_schedule="linear",
        prediction_type=ptype,
        algorithm_type="dpmsolver++",
        solver_order=order,
        solver_type=solver_type,
        lower_order_final=True,
    )
    ref = run_diffusers(sch, net, n, x_init())
    den = Denoiser(ours(net), PROCESS, PRED[ptype])
    out = sample_dpm_solver(den, x_init(), grid_from_timesteps(sch.timesteps), order=order, solver_type=solver_type)
    assert out.nfe == n
    torch.testing.assert_close(out.sample, ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("ptype", list(PRED))
@pytest.mark.parametrize("n", STEPS)
def test_euler_matches_euler_discrete_scheduler(ptype, n):
    net = make_net(ptype)
    sch = diffusers.EulerDiscreteScheduler(num_train_timesteps=T, beta_schedule="linear", prediction_type=ptype)
    sch.set_timesteps(n)
    sigmas, timesteps = sch.sigmas.double(), sch.timesteps.double()
    z = x_init()
    x = z * sch.init_noise_sigma
    for j in sch.timesteps:
        x = sch.step(net(sch.scale_model_input(x, j), j), j, x).prev_sample

    grid = PROCESS.t_from_sigma(sigmas)
    torch.testing.assert_close(PROCESS.sigma(grid), sigmas, rtol=1e-10, atol=1e-12)
    assert grid[-1] == 0

    def model(x, t):  # our t -> the scheduler's (fractional) timestep at that grid point
        k = torch.argmin((grid[:, None] - t[None, :]).abs(), dim=0)
        return net(x, timesteps[k])

    a0 = PROCESS.coefficients(grid[:1])[0]
    out = sample_euler(Denoiser(model, PROCESS, PRED[ptype]), z * sch.init_noise_sigma * a0, grid)
    assert out.nfe == n
    torch.testing.assert_close(out.sample, x, rtol=0, atol=1e-5)


def test_per_element_grid_rows_give_the_same_parity():
    """Rows of shape (B,) and (B, C) (one time per element / per channel) reproduce the scalar grid."""
    net = make_net("epsilon")
    sch = diffusers.DDIMScheduler(num_train_timesteps=T, beta_schedule="linear", clip_sample=False)
    ref = run_diffusers(sch, net, 10, x_init())
    grid = grid_from_timesteps(sch.timesteps)
    for rows in (grid[:, None].expand(-1, SHAPE[0]), grid[:, None, None].expand(-1, *SHAPE[:2])):
        den = Denoiser(ours(net), PROCESS, "eps")
        out = sample_ddim(den, x_init(), rows.contiguous())
        torch.testing.assert_close(out.sample, ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("n", [10, 25, 50, 1000])
@pytest.mark.parametrize(
    "name, make",
    [
        ("ddim", lambda: diffusers.DDIMScheduler(num_train_timesteps=T, timestep_spacing="trailing")),
        ("ddpm", lambda: diffusers.DDPMScheduler(num_train_timesteps=T, timestep_spacing="trailing")),
        (
            "dpm_solver",
            lambda: diffusers.DPMSolverMultistepScheduler(num_train_timesteps=T, timestep_spacing="trailing"),
        ),
    ],
)
def test_discrete_chain_default_grid_is_diffusers_integer_timesteps(name, make, n):
    """A whole-step ``DiscreteVP`` samples only trained steps: its default DDPM / DDIM / DPM-Solver grid
    is diffusers' "trailing" timesteps ``j`` (``t = (j + 1) / T``), then ``t = 0`` (``alpha_bar = 1``)."""
    sch = make()
    sch.set_timesteps(n)
    grid = PROCESS.default_grid(name, n)
    torch.testing.assert_close(grid, grid_from_timesteps(sch.timesteps), rtol=0, atol=1e-15)
    assert torch.allclose((grid * T).round(), grid * T, rtol=0, atol=1e-9)


@pytest.mark.parametrize("n", [5, 10, 25])
def test_karras_grid_on_a_chain_stops_at_the_smallest_trained_sigma(n):
    """As diffusers' ``use_karras_sigmas`` (and k-diffusion's ``get_sigmas_karras``): ``n`` sigmas from
    ``sigma(1)`` to the smallest trained ``sigma(1 / T)`` (rho 7), then 0."""
    sch = diffusers.EulerDiscreteScheduler(num_train_timesteps=T, beta_schedule="linear", use_karras_sigmas=True)
    sch.set_timesteps(n)
    for name in ("euler", "heun"):
        grid = PROCESS.default_grid(name, n)
        assert grid.shape == (n + 1,) and grid[-1] == 0 and grid[-2] == pytest.approx(1 / T)
        # diffusers' sigmas come from its float32 alphas_cumprod (sigma(1/T) = 0.01 to 3e-4 relative)
        torch.testing.assert_close(PROCESS.sigma(grid), sch.sigmas.double(), rtol=1e-3, atol=0)
        smax, smin = PROCESS.sigma(torch.tensor([1.0, 1 / T], dtype=torch.float64)) ** (1 / 7)
        ramp = torch.linspace(0, 1, n, dtype=torch.float64)
        exact = torch.cat([(smax + ramp * (smin - smax)) ** 7, torch.zeros(1, dtype=torch.float64)])
        torch.testing.assert_close(PROCESS.sigma(grid), exact, rtol=1e-9, atol=0)
    continuous = DiscreteVP("linear", T, whole_steps=False)
    assert continuous.default_grid("euler", n)[-2] < 1 / T  # a continuous-time chain keeps the standard floor


@pytest.mark.parametrize("ptype", list(PRED))
@pytest.mark.parametrize("n", STEPS)
def test_euler_ancestral_matches_euler_ancestral_scheduler(ptype, n):
    """Same noise: diffusers draws one noise per step from the generator, we draw one per step onto
    sigma > 0 (its last draw is multiplied by sigma_up = 0)."""
    net = make_net(ptype)
    sch = diffusers.EulerAncestralDiscreteScheduler(
        num_train_timesteps=T, beta_schedule="linear", prediction_type=ptype
    )
    sch.set_timesteps(n)
    z = x_init()
    x = z * sch.init_noise_sigma
    g = torch.Generator().manual_seed(3)
    for j in sch.timesteps:
        x = sch.step(net(sch.scale_model_input(x, j), j), j, x, generator=g).prev_sample

    grid, model, start = sigma_scheduler_setup(sch, net)
    den = Denoiser(model, PROCESS, PRED[ptype])
    out = sample_euler_ancestral(den, z * start, grid, generator=torch.Generator().manual_seed(3))
    assert out.nfe == n
    torch.testing.assert_close(out.sample, x, rtol=0, atol=1e-5)


@pytest.mark.parametrize("ptype", list(PRED))
@pytest.mark.parametrize("n", STEPS)
@pytest.mark.parametrize(("solver_type", "order"), [("midpoint", 2), ("heun", 2)])
def test_dpmpp_2m_sde_matches_the_sde_dpmsolver_pp_scheduler(ptype, n, solver_type, order):
    """Order 2. Order 3 is checked against k-diffusion (test_kdiffusion_parity): diffusers' third-order
    ``sde-dpmsolver++`` update weights its second difference by ``(1 - e^{-2h} - 2h)/(2h)^2 - 1/2``, which
    tends to -1 as the step shrinks, so it does not converge as the steps grow."""
    net = make_net(ptype)
    sch = diffusers.DPMSolverMultistepScheduler(
        num_train_timesteps=T,
        beta_schedule="linear",
        prediction_type=ptype,
        algorithm_type="sde-dpmsolver++",
        solver_order=order,
        solver_type=solver_type,
    )
    sch.set_timesteps(n)
    ref, g = x_init(), torch.Generator().manual_seed(4)
    for j in sch.timesteps:  # its noise is drawn in float32; hand it our float64 draws instead
        noise = torch.randn(SHAPE, generator=g, dtype=torch.float64)
        ref = sch.step(net(ref, j), j, ref, variance_noise=noise).prev_sample
    den = Denoiser(ours(net), PROCESS, PRED[ptype])
    grid = grid_from_timesteps(sch.timesteps)
    out = sample_dpmpp_2m_sde(
        den, x_init(), grid, order=order, solver_type=solver_type, generator=torch.Generator().manual_seed(4)
    )
    assert out.nfe == n
    torch.testing.assert_close(out.sample, ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
@pytest.mark.parametrize("rederive", [True, False])
def test_dynamic_thresholding_matches_the_schedulers(sampler, rederive):
    """Imagen's dynamic thresholding (quantile 0.9, levels up to 1.5) and diffusers'
    ``use_clipped_model_output`` (DDIM) as ``rederive_eps``; DDPM's posterior uses x0 only."""
    if sampler == "ddpm" and not rederive:
        pytest.skip("DDPM's posterior mean reads only x0")
    net = make_net("epsilon")
    kw = dict(num_train_timesteps=T, beta_schedule="linear", clip_sample=False, prediction_type="epsilon")
    thr = dict(thresholding=True, dynamic_thresholding_ratio=0.9, sample_max_value=1.5)
    n, g = 25, torch.Generator().manual_seed(6)
    if sampler == "ddim":
        sch = exact_schedule(diffusers.DDIMScheduler(**kw, **thr))
        ref = run_diffusers(sch, net, n, 3 * x_init(), eta=1.0, generator=g, use_clipped_model_output=rederive)
    else:
        sch = exact_schedule(diffusers.DDPMScheduler(**kw, **thr))
        ref = run_diffusers(sch, net, n, 3 * x_init(), generator=g)
    den = Denoiser(ours(net), PROCESS, "eps", threshold=0.9, threshold_max=1.5, rederive_eps=rederive)
    grid = grid_from_timesteps(sch.timesteps)
    run = sample_ddim if sampler == "ddim" else sample_ddpm
    kwargs = {"eta": 1.0} if sampler == "ddim" else {}
    out = run(den, 3 * x_init(), grid, generator=torch.Generator().manual_seed(6), **kwargs)
    torch.testing.assert_close(out.sample, ref, rtol=0, atol=1e-10)
    assert not torch.allclose(
        out.sample,
        run(
            Denoiser(ours(net), PROCESS, "eps"),
            3 * x_init(),
            grid,
            generator=torch.Generator().manual_seed(6),
            **kwargs,
        ).sample,
    )


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("n", [1, 7, 10, 25, 50, 999])
def test_named_spacings_are_diffusers_timesteps(spacing, n):
    from difflab.core.samplers.select import default_grid

    sch = diffusers.DDIMScheduler(num_train_timesteps=T, timestep_spacing=spacing)
    sch.set_timesteps(n)
    expected = grid_from_timesteps(sch.timesteps)
    for sampler in ("ddim", "dpm_solver", "euler"):
        assert torch.equal(default_grid(sampler, PROCESS, n, grid_kind=spacing), expected)


@pytest.mark.parametrize("n", [1, 2, 4, 8])
def test_lcm_matches_the_lcm_scheduler(n):
    """Multistep consistency sampling with LCM's boundary condition, on the scheduler's timesteps."""
    from difflab.core.samplers.consistency import lcm_boundary, sample_lcm

    net = make_net("epsilon")
    sch = exact_schedule(diffusers.LCMScheduler(num_train_timesteps=T, beta_schedule="linear"))
    sch.set_timesteps(n)
    x, g = x_init(), torch.Generator().manual_seed(7)
    for j in sch.timesteps:
        x = sch.step(net(x, j), j, x, generator=g).prev_sample
    den = Denoiser(ours(net), PROCESS, "eps")
    out = sample_lcm(
        den,
        x_init(),
        grid_from_timesteps(sch.timesteps),
        boundary=lcm_boundary(T),
        generator=torch.Generator().manual_seed(7),
    )
    assert out.nfe == n
    torch.testing.assert_close(out.sample, x, rtol=0, atol=1e-6)


@pytest.mark.parametrize("n", [2, 4, 8])
@pytest.mark.parametrize("gamma", [0.0, 0.3, 1.0])
def test_tcd_matches_the_tcd_scheduler(n, gamma):
    """TCD's intermediate step and re-noising; its last step ends at timestep 0 (t = 1/T)."""
    from difflab.core.samplers.consistency import sample_tcd

    net = make_net("epsilon")
    sch = exact_schedule(diffusers.TCDScheduler(num_train_timesteps=T, beta_schedule="linear"))
    sch.set_timesteps(n)
    x, g = x_init(), torch.Generator().manual_seed(8)
    for j in sch.timesteps:
        x = sch.step(net(x, j), j, x, eta=gamma, generator=g).prev_sample
    den = Denoiser(ours(net), PROCESS, "eps")
    grid = grid_from_timesteps(sch.timesteps)
    grid[-1] = 1 / T
    out = sample_tcd(den, x_init(), grid, gamma=gamma, generator=torch.Generator().manual_seed(8))
    assert out.nfe == n
    torch.testing.assert_close(out.sample, x, rtol=0, atol=1e-6)


@pytest.mark.parametrize("n", [5, 10, 25])
def test_exponential_sigma_grid_is_diffusers_exponential_sigmas(n):
    """Uniform in log sigma from sigma(t_max) to the smallest trained level, then 0; the
    polyexponential ramp with rho = 1 is the same grid."""
    from difflab.core.samplers.select import default_grid

    sch = diffusers.EulerDiscreteScheduler(num_train_timesteps=T, beta_schedule="linear", use_exponential_sigmas=True)
    sch = exact_schedule(sch)  # its float32 cumulative product is off by 1e-4 at the smallest level
    sch.set_timesteps(n)
    grid = default_grid("euler", PROCESS, n, grid_kind="exponential")
    torch.testing.assert_close(PROCESS.sigma(grid), sch.sigmas.double(), rtol=1e-6, atol=0)
    torch.testing.assert_close(default_grid("euler", PROCESS, n, grid_kind="polyexponential"), grid)
    assert grid[-1] == 0


@pytest.mark.parametrize("ptype", list(PRED))
@pytest.mark.parametrize("n", [5, 10, 25])
@pytest.mark.parametrize(("order", "solver_type"), [(1, "bh2"), (2, "bh1"), (2, "bh2"), (3, "bh1"), (3, "bh2")])
def test_unipc_matches_the_unipc_scheduler(ptype, n, order, solver_type):
    """diffusers' bh1 returns NaN on a last step onto sigma = 0 (B(h) = -inf times a zero sum), so bh1
    is compared on its sigma_min ending (t = 1/T); ours ends either way."""
    from difflab.core.samplers.unipc import sample_unipc

    net = make_net(ptype)
    final = "zero" if solver_type == "bh2" else "sigma_min"
    sch = diffusers.UniPCMultistepScheduler(
        num_train_timesteps=T,
        beta_schedule="linear",
        prediction_type=ptype,
        solver_order=order,
        solver_type=solver_type,
        final_sigmas_type=final,
    )
    ref = run_diffusers(sch, net, n, x_init())
    den = Denoiser(ours(net), PROCESS, PRED[ptype])
    grid = grid_from_timesteps(sch.timesteps)
    if final == "sigma_min":
        grid[-1] = 1 / T
    out = sample_unipc(den, x_init(), grid, order=order, solver_type=solver_type)
    assert out.nfe == n
    torch.testing.assert_close(out.sample, ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("ptype", list(PRED))
@pytest.mark.parametrize("n", STEPS)
@pytest.mark.parametrize("order", [1, 2, 4])
def test_lms_matches_the_lms_discrete_scheduler(ptype, n, order):
    from difflab.core.samplers.lms import sample_lms

    net = make_net(ptype)
    sch = diffusers.LMSDiscreteScheduler(num_train_timesteps=T, beta_schedule="linear", prediction_type=ptype)
    sch.set_timesteps(n)
    z = x_init()
    x = z * sch.init_noise_sigma
    for j in sch.timesteps:
        x = sch.step(net(sch.scale_model_input(x, j), j), j, x, order=order).prev_sample
    grid, model, start = sigma_scheduler_setup(sch, net)
    out = sample_lms(Denoiser(model, PROCESS, PRED[ptype]), z * start, grid, order=order)
    assert out.nfe == n
    torch.testing.assert_close(out.sample, x, rtol=0, atol=1e-5)


@pytest.mark.parametrize("ptype", list(PRED))
@pytest.mark.parametrize("n", STEPS)
@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_deis_matches_the_deis_multistep_scheduler(ptype, n, order):
    from difflab.core.samplers.deis import sample_deis

    net = make_net(ptype)
    sch = diffusers.DEISMultistepScheduler(
        num_train_timesteps=T, beta_schedule="linear", prediction_type=ptype, solver_order=order
    )
    sch.set_timesteps(n)
    # its noise levels are float32, and its third-order coefficients are differences of large terms:
    # hand it the float64 levels of the same chain (the float64 closed form is checked below)
    ab = PROCESS.alphas_cumprod[1:]
    sigmas = ((1 - ab) / ab).sqrt()
    sch.sigmas = torch.cat([sigmas[sch.timesteps], sigmas[:1]])
    ref = x_init()
    for j in sch.timesteps:
        ref = sch.step(net(ref, j), j, ref).prev_sample
    den = Denoiser(ours(net), PROCESS, PRED[ptype])
    grid = grid_from_timesteps(sch.timesteps)
    grid[-1] = 1 / T  # the scheduler ends at timestep 0's noise level (sigma_min), not at 0
    out = sample_deis(den, x_init(), grid, order=order)
    assert out.nfe == n
    torch.testing.assert_close(out.sample, ref, rtol=0, atol=1e-5)


def test_deis_third_order_coefficients_are_the_closed_form_integrals():
    """diffusers' closed form of the third-order logrho coefficients, in float64, equals ours."""
    import math

    from difflab.core.samplers.deis import deis_coefficients

    def ind(t, b, c, d):
        lt, lb, lc, ld = (math.log(v) for v in (t, b, c, d))
        return t * (lc * (ld - lt + 1) - ld * lt + ld + lt**2 - 2 * lt + 2) / ((lb - lc) * (lb - ld))

    s0, s1, s2, t = 1.24, 2.04, 3.44, 0.72
    expected = [
        ind(t, s0, s1, s2) - ind(s0, s0, s1, s2),
        ind(t, s1, s2, s0) - ind(s0, s1, s2, s0),
        ind(t, s2, s0, s1) - ind(s0, s2, s0, s1),
    ]
    assert deis_coefficients([s0, s1, s2], s0, t) == pytest.approx(expected, rel=1e-12)


def _final_sigma_min_grid(timesteps: torch.Tensor) -> torch.Tensor:
    """diffusers' ``final_sigmas_type="sigma_min"``: the last step ends at timestep 0, our t = 1/T."""
    return torch.cat([(timesteps.double() + 1) / T, torch.tensor([1 / T], dtype=torch.float64)])


@pytest.mark.parametrize("ptype", list(PRED))
@pytest.mark.parametrize("n", STEPS)
@pytest.mark.parametrize(("order", "solver_type"), [(1, "midpoint"), (2, "midpoint"), (2, "heun"), (3, "midpoint")])
def test_dpm_solver_noise_prediction_matches_the_dpmsolver_scheduler(ptype, n, order, solver_type):
    """DPM-Solver on noise predictions (``algorithm_type="dpmsolver"``), which diffusers runs down to
    its smallest trained noise level only."""
    net = make_net(ptype)
    sch = diffusers.DPMSolverMultistepScheduler(
        num_train_timesteps=T,
        beta_schedule="linear",
        prediction_type=ptype,
        algorithm_type="dpmsolver",
        solver_order=order,
        solver_type=solver_type,
        final_sigmas_type="sigma_min",
    )
    ref = run_diffusers(sch, net, n, x_init())
    den = Denoiser(ours(net), PROCESS, PRED[ptype])
    grid = _final_sigma_min_grid(sch.timesteps)
    out = sample_dpm_solver(den, x_init(), grid, order=order, solver_type=solver_type, algorithm="dpmsolver")
    assert out.nfe == n
    torch.testing.assert_close(out.sample, ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("ptype", list(PRED))
@pytest.mark.parametrize("n", [10, 25])
@pytest.mark.parametrize("algorithm", ["dpmsolver++", "dpmsolver"])
@pytest.mark.parametrize(
    ("order", "solver_type"), [(1, "midpoint"), (2, "midpoint"), (2, "heun"), (3, "midpoint"), (3, "heun")]
)
def test_singlestep_dpm_solver_matches_the_singlestep_scheduler(ptype, n, algorithm, order, solver_type):
    from difflab.core.samplers import sample_dpm_solver_singlestep

    net = make_net(ptype)
    final = "zero" if algorithm == "dpmsolver++" else "sigma_min"
    sch = diffusers.DPMSolverSinglestepScheduler(
        num_train_timesteps=T,
        beta_schedule="linear",
        prediction_type=ptype,
        algorithm_type=algorithm,
        solver_order=order,
        solver_type=solver_type,
        final_sigmas_type=final,
        lower_order_final=True,
    )
    ref = run_diffusers(sch, net, n, x_init())
    den = Denoiser(ours(net), PROCESS, PRED[ptype])
    grid = grid_from_timesteps(sch.timesteps) if final == "zero" else _final_sigma_min_grid(sch.timesteps)
    out = sample_dpm_solver_singlestep(den, x_init(), grid, order=order, solver_type=solver_type, algorithm=algorithm)
    assert out.nfe == n
    torch.testing.assert_close(out.sample, ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("n", [10, 25])
@pytest.mark.parametrize("warmup", ["plms", "prk"])
def test_pndm_matches_the_pndm_scheduler(n, warmup):
    """PLMS and F-PNDM on an eps-prediction network (diffusers combines raw outputs before converting
    them, which differs from combining noise predictions for other prediction types)."""
    from difflab.core.samplers import sample_pndm

    net = make_net("epsilon")
    sch = diffusers.PNDMScheduler(
        num_train_timesteps=T, beta_schedule="linear", skip_prk_steps=warmup == "plms", set_alpha_to_one=True
    )
    ref = run_diffusers(sch, net, n, x_init())
    den = Denoiser(ours(net), PROCESS, "eps")
    grid = grid_from_timesteps(torch.as_tensor(sch._timesteps[::-1].copy()))
    out = sample_pndm(den, x_init(), grid, warmup=warmup)
    assert out.nfe == len(sch.timesteps) == (n + 1 if warmup == "plms" else n + 9)
    torch.testing.assert_close(out.sample, ref, rtol=0, atol=1e-5)


def test_singlestep_order_lists_are_the_schedulers():
    from difflab.core.samplers.dpm_singlestep import singlestep_orders

    for order in (1, 2, 3):
        for n in range(1, 20):
            for lof in (True, False):
                sch = diffusers.DPMSolverSinglestepScheduler(
                    num_train_timesteps=T, solver_order=order, lower_order_final=lof, final_sigmas_type="sigma_min"
                )
                if not lof and n % order:
                    continue  # diffusers switches lower_order_final on for these
                assert singlestep_orders(n, order, lof, final_to_zero=False) == sch.get_order_list(n), (order, n, lof)


@pytest.mark.parametrize("n", [10, 25])
def test_zero_terminal_snr_with_the_final_alpha_bar_clamp_matches_euler(n):
    """A zero-terminal-SNR chain whose last alpha-bar is clamped to 2^-24 (so sigma(1) is finite), with
    v prediction, under Euler: diffusers' ``rescale_betas_zero_snr=True``. (On the linear schedule
    2^-24 lies above alpha-bar of step T - 1, a non-monotone chain that we refuse.)"""
    with pytest.raises(ValueError, match="terminal_alpha_bar"):
        DiscreteVP("linear", T, zero_terminal_snr=True, terminal_alpha_bar=2**-24)
    process = DiscreteVP("scaled_linear", T, 0.00085, 0.012, zero_terminal_snr=True, terminal_alpha_bar=2**-24)
    sch = diffusers.EulerDiscreteScheduler(
        num_train_timesteps=T,
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        prediction_type="v_prediction",
        rescale_betas_zero_snr=True,
    )
    sch.set_timesteps(n)
    torch.testing.assert_close(process.alphas_cumprod[1:].float(), sch.alphas_cumprod, rtol=1e-5, atol=1e-7)
    net = make_net("v_prediction")
    sigmas, timesteps = sch.sigmas.double(), sch.timesteps.double()
    z = x_init()
    x = z * sch.init_noise_sigma
    for j in sch.timesteps:
        x = sch.step(net(sch.scale_model_input(x, j), j), j, x).prev_sample

    grid = process.t_from_sigma(sigmas)
    # diffusers' float32 sigma_max (4096 = 2^12) is 4095.9998 or 4096.0 depending on the CPU's float
    # path; its inverse is t = 1 to within 1e-9
    assert abs(float(grid[0]) - 1) < 1e-9 and grid[-1] == 0 and torch.isfinite(process.sigma(grid[:1])).all()

    def model(x, t):
        k = torch.argmin((grid[:, None] - t[None, :]).abs(), dim=0)
        return net(x, timesteps[k])

    a0 = process.coefficients(grid[:1])[0]
    out = sample_euler(Denoiser(model, process, "v"), z * sch.init_noise_sigma * a0, grid)
    # the network's own schedule is the plain linear chain; both sides call it at the same timesteps
    torch.testing.assert_close(out.sample, x, rtol=0, atol=1e-4)
