"""Parameterisation conversions: round trips, closed-form targets and the path velocity."""

from __future__ import annotations

import pytest
import torch

from difflab.core.parameterization import PREDICTIONS, convert, from_x0_eps, to_x0_eps
from difflab.core.processes import VESDE, VPSDE, CosineVP, DiscreteVP, LinearGaussianProcess, SubVPSDE


class ResidualShift(LinearGaussianProcess):
    """A ResShift-like conditional process: ``x_t = x0 + eta (y - x0) + kappa sqrt(eta) eps``."""

    conditional = True

    def coefficients(self, t):
        eta = 0.01 + 0.98 * t
        return 1 - eta, eta, 0.5 * eta.sqrt()

    def transition_ratio(self, s, t):
        return torch.ones_like(t)


PROCESSES = [VPSDE(), SubVPSDE(), VESDE(), CosineVP(), DiscreteVP("linear", 1000), ResidualShift()]
IDS = ["VPSDE", "SubVPSDE", "VESDE", "CosineVP", "DiscreteVP", "ResidualShift"]


def draw(proc, t_shape, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    shape = (*t_shape, d)
    x0 = torch.randn(shape, generator=g, dtype=torch.float64)
    eps = torch.randn(shape, generator=g, dtype=torch.float64)
    y = torch.randn(shape, generator=g, dtype=torch.float64) if proc.conditional else None
    # off the DiscreteVP knots (its log alpha_bar is piecewise linear)
    t = (torch.randint(50, 950, t_shape, generator=g).double() + 0.37) / 1000
    x_t, _ = proc.sample_marginal(x0, t, y, noise=eps)
    return x0, eps, y, t, x_t


@pytest.mark.parametrize("proc", PROCESSES, ids=IDS)
@pytest.mark.parametrize("t_shape", [(5,), (3, 7)], ids=["B", "BL"])
def test_every_conversion_round_trips(proc, t_shape):
    x0, eps, y, t, x_t = draw(proc, t_shape)
    for kind in PREDICTIONS:
        out = from_x0_eps(proc, kind, x0, eps, t, y)
        assert out.shape == x0.shape
        x0_hat, eps_hat = to_x0_eps(proc, kind, out, x_t, t, y)
        torch.testing.assert_close(x0_hat, x0, rtol=1e-9, atol=1e-9, msg=kind)
        torch.testing.assert_close(eps_hat, eps, rtol=1e-9, atol=1e-9, msg=kind)
        for target in PREDICTIONS:
            conv = convert(proc, out, x_t, t, source=kind, target=target, y=y)
            torch.testing.assert_close(conv, from_x0_eps(proc, target, x0, eps, t, y), rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("proc", PROCESSES, ids=IDS)
def test_v_and_score_targets_are_the_closed_forms(proc):
    x0, eps, y, t, x_t = draw(proc, (3, 7))
    a, b, s = (c[..., None] for c in proc.coefficients(t))
    torch.testing.assert_close(from_x0_eps(proc, "v", x0, eps, t, y), a * eps - s * x0, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(from_x0_eps(proc, "score", x0, eps, t, y), -eps / s, rtol=1e-12, atol=1e-14)
    # the score is the gradient of log q(x_t | x0[, y]) in x_t
    xr = x_t.clone().requires_grad_(True)
    mean = a * x0 + (b * y if proc.conditional else 0)
    (grad,) = torch.autograd.grad((-0.5 * ((xr - mean) / s) ** 2).sum(), xr)
    torch.testing.assert_close(grad, -eps / s, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("proc", PROCESSES, ids=IDS)
def test_velocity_is_the_time_derivative_of_the_path(proc):
    """``u = d/dt [a(t) x0 + b(t) y + s(t) eps]`` with ``x0, y, eps`` fixed, by central differences."""
    x0, eps, y, t, _ = draw(proc, (3, 7))
    h = 1e-7

    def path(tt):
        return proc.sample_marginal(x0, tt, y, noise=eps)[0]

    fd = (path(t + h) - path(t - h)) / (2 * h)
    u = from_x0_eps(proc, "velocity", x0, eps, t, y)
    scale = fd.abs().amax().clamp_min(1.0)
    torch.testing.assert_close(u / scale, fd / scale, rtol=0, atol=1e-6)


def test_flow_matching_style_velocity_is_eps_minus_x0():
    """For ``x_t = (1 - t) x0 + t eps`` the velocity is ``eps - x0`` (rectified flow)."""

    class Linear(LinearGaussianProcess):
        def coefficients(self, t):
            return 1 - t, torch.zeros_like(t), t

    proc = Linear()
    x0, eps, y, t, x_t = draw(proc, (6,))
    torch.testing.assert_close(from_x0_eps(proc, "velocity", x0, eps, t), eps - x0, rtol=1e-12, atol=1e-12)
    x0_hat, eps_hat = to_x0_eps(proc, "velocity", eps - x0, x_t, t)
    torch.testing.assert_close(x0_hat, x0, rtol=1e-10, atol=1e-10)


def test_unknown_prediction_kind_is_rejected():
    proc = VPSDE()
    x = torch.zeros(2, 3)
    t = torch.full((2,), 0.5)
    with pytest.raises(ValueError, match="'noise'"):
        to_x0_eps(proc, "noise", x, x, t)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'noise'"):
        from_x0_eps(proc, "noise", x, x, t)  # type: ignore[arg-type]


def test_edm_preconditioning_on_ve_is_karras_closed_form():
    """On a VE process (``a = 1``, ``sigma = s``) the scales are EDM's Table 1:
    ``c_skip = sd^2 / (sigma^2 + sd^2)``, ``c_out = sigma sd / sqrt(sigma^2 + sd^2)``, weight ``1 / c_out^2``."""
    from difflab.core.parameterization import edm_loss_weight, edm_scales, precondition_x0

    proc, sd = VESDE(0.01, 50.0), 0.5
    t = torch.tensor([0.0, 0.3, 0.7, 1.0], dtype=torch.float64)
    sigma = 0.01 * (50.0 / 0.01) ** t
    x, out = (torch.randn(4, 3, generator=torch.Generator().manual_seed(k), dtype=torch.float64) for k in (0, 1))
    a, b, c_skip, c_out = edm_scales(proc, t, x, sd)
    c_skip_ref = sd**2 / (sigma**2 + sd**2)
    c_out_ref = sigma * sd / (sigma**2 + sd**2).sqrt()
    torch.testing.assert_close(c_skip[:, 0], c_skip_ref)
    torch.testing.assert_close(c_out[:, 0], c_out_ref)
    torch.testing.assert_close(a[:, 0], torch.ones(4, dtype=torch.float64))
    ref = c_skip_ref[:, None] * x + c_out_ref[:, None] * out
    torch.testing.assert_close(precondition_x0(proc, out, x, t, None, sd), ref)
    torch.testing.assert_close(edm_loss_weight(proc, t, sd), 1 / c_out_ref**2)


def test_residual_preconditioning_closed_form_and_limits():
    """``x0_hat = y + c_skip ((x_t - b y)/a - y) + c_out F`` at sigma = s / a of a conditional process;
    with ``F = 0`` it is ``y`` when sigma >> sd and the scaled input when sigma << sd."""
    from difflab.core.parameterization import precondition_x0

    proc, sd = ResidualShift(), 0.2
    g = torch.Generator().manual_seed(3)
    x, y, out = (torch.randn(2, 5, generator=g, dtype=torch.float64) for _ in range(3))
    t = torch.tensor([0.2, 0.9], dtype=torch.float64)
    eta = 0.01 + 0.98 * t
    a, b, s = 1 - eta, eta, 0.5 * eta.sqrt()
    sig2 = (s / a) ** 2
    c_skip, c_out = sd**2 / (sig2 + sd**2), (sig2 * sd**2 / (sig2 + sd**2)).sqrt()
    xs = (x - b[:, None] * y) / a[:, None]
    ref = y + c_skip[:, None] * (xs - y) + c_out[:, None] * out
    torch.testing.assert_close(precondition_x0(proc, out, x, t, y, sd, "residual"), ref)
    ref_x0 = c_skip[:, None] * (x - b[:, None] * y) / a[:, None] + c_out[:, None] * out
    torch.testing.assert_close(precondition_x0(proc, out, x, t, y, sd, "x0"), ref_x0)
    zero = torch.zeros_like(x)
    big = precondition_x0(proc, zero, x, t, y, 1e-4, "residual")  # sigma >> sd: the condition
    torch.testing.assert_close(big, y, atol=1e-5, rtol=0)
    small = precondition_x0(proc, zero, x, t, y, 1e4, "residual")  # sigma << sd: the scaled input
    torch.testing.assert_close(small, xs, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="condition y"):
        precondition_x0(proc, out, x, t, None, sd, "residual")
    with pytest.raises(ValueError, match="'edm'"):
        precondition_x0(proc, out, x, t, y, sd, "edm")  # type: ignore[arg-type]
