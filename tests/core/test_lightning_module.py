"""DiffusionModule, ToyDiffusion and ToyDataModule without the command line (fast)."""

import math

import lightning as L
import pytest
import torch
from torch import nn

from difflab.core.lightning import DiffusionModule, EpochShuffleSampler, ToyDataModule, ToyDiffusion
from difflab.core.lightning.data import PointDataset, ResumableLoader, moons
from difflab.core.lightning.toy import mixture_metrics
from difflab.core.processes import VPSDE
from difflab.core.processes.base import LinearGaussianProcess

pytestmark = pytest.mark.usefixtures("one_thread")


class Recorder(nn.Module):
    """Returns zeros and records its inputs."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))
        self.calls = []

    def forward(self, x, t):
        self.calls.append((x.detach().clone(), t.detach().clone()))
        return torch.zeros_like(x) + 0 * self.w


@pytest.mark.parametrize("prediction", ["eps", "x0", "v", "score"])
def test_loss_regresses_the_closed_form_target(prediction):
    """With a zero network the loss is mean(target^2); target from the VP closed form."""
    torch.manual_seed(0)
    process = VPSDE()
    module = DiffusionModule(Recorder(), process=process, prediction=prediction, t_eps=1e-3)
    x0 = torch.randn(16, 3, dtype=torch.float64)
    loss = module.diffusion_loss({"x0": x0}, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    t = 1e-3 + (1 - 1e-3) * torch.rand(16, generator=g, dtype=torch.float64)
    eps = torch.randn(16, 3, generator=g, dtype=torch.float64)
    la = -0.25 * t**2 * (20.0 - 0.1) - 0.5 * t * 0.1
    a, s = la.exp()[:, None], (1 - (2 * la).exp()).sqrt()[:, None]
    x_t, t_seen = module.network.calls[0]
    assert torch.allclose(t_seen, t) and torch.allclose(x_t, a * x0 + s * eps)
    target = {"eps": eps, "x0": x0, "v": a * eps - s * x0, "score": -eps / s}[prediction]
    assert torch.allclose(loss, (target**2).mean())


def test_per_element_time_and_loss_weight():
    class Weighted(DiffusionModule):
        def loss_weight(self, t):
            return 2 * torch.ones_like(t)

    net = Recorder()
    module = Weighted(net, time_dims=2)
    x0 = torch.randn(4, 7, 2)
    loss = module.training_loss({"x0": x0}, torch.Generator().manual_seed(0))
    _, t = net.calls[0]
    assert t.shape == (4, 7) and len(torch.unique(t)) == 28
    g = torch.Generator().manual_seed(0)
    torch.rand(4, 7, generator=g)
    eps = torch.randn(4, 7, 2, generator=g)
    assert torch.allclose(loss, 2 * (eps**2).mean())


class _Bridge(LinearGaussianProcess):
    """x_t = (1 - t) x0 + t y + 0.1 sqrt(t) eps: a conditional process for the tests."""

    conditional = True
    t_min = 0.0

    def coefficients(self, t):
        return 1 - t, t, 0.1 * t.clamp_min(1e-12).sqrt()


def test_conditional_process_needs_y_and_uses_it():
    net = Recorder()
    module = DiffusionModule(net, process=_Bridge(), prediction="x0")
    with pytest.raises(ValueError, match="'y'"):
        module.training_loss({"x0": torch.randn(3, 2)})
    y = torch.full((3, 2), 5.0)
    module.training_loss({"x0": torch.zeros(3, 2), "y": y}, torch.Generator().manual_seed(0))
    x_t, t = net.calls[-1]
    assert torch.allclose(x_t.mean(1), 5.0 * t, atol=0.5)
    s = module.sample(batch={"x0": torch.zeros(3, 2), "y": y}, steps=4, generator=torch.Generator().manual_seed(0))
    assert s.sample.shape == (3, 2)


def test_constructor_errors_show_the_value():
    with pytest.raises(ValueError, match="'noise'"):
        DiffusionModule(Recorder(), prediction="noise")
    with pytest.raises(ValueError, match="'ddimm'"):
        DiffusionModule(Recorder(), sampler="ddimm")
    with pytest.raises(ValueError, match="time_dims"):
        DiffusionModule(Recorder(), time_dims=0)


def test_sample_is_seeded_restores_mode_and_counts_nfe():
    module = ToyDiffusion(hidden=16, depth=1, embed_dim=8)
    module.train()
    a = module.sample((10, 2), steps=7, generator=torch.Generator().manual_seed(3))
    b = module.sample((10, 2), steps=7, generator=torch.Generator().manual_seed(3))
    assert module.training
    assert a.nfe == 7 and a.info["sampler"] == "ddim"
    assert torch.equal(a.sample, b.sample)
    c = module.sample((10, 2), sampler="heun", steps=4, generator=torch.Generator().manual_seed(3))
    assert c.info["sampler"] == "heun" and c.nfe == 7  # 2 per step, 1 on the step onto sigma = 0


def test_sample_from_a_start_state_on_a_ready_grid_equals_run_sampler():
    from difflab.core.samplers import Denoiser, default_grid, run_sampler

    module = ToyDiffusion(hidden=16, depth=1, embed_dim=8).eval()
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(1))
    grid = default_grid("ddim", module.process, 5, grid_kind="uniform")
    ours = module.sample(x_init=x.clone(), grid=grid, sampler="ddim")
    den = Denoiser(lambda x_t, t: module.network_forward(x_t, t, None), module.process, module.prediction)
    ref = run_sampler("ddim", den, x.clone(), steps=5, grid=grid)
    assert torch.equal(ours.sample, ref.sample) and ours.nfe == 5
    assert torch.equal(ours.info["grid"], grid)
    with pytest.raises(ValueError, match="give a shape"):
        module.sample()


def test_eval_mode_restores_the_mode_also_on_error():
    from difflab.core.lightning.module import eval_mode

    net = nn.Sequential(nn.Dropout(0.5))
    net.train()
    with eval_mode(net):
        assert not net.training
    assert net.training
    with pytest.raises(RuntimeError), eval_mode(net):
        raise RuntimeError("inside")
    assert net.training
    net.eval()
    with eval_mode(net):
        pass
    assert not net.training


def test_noise_generator_depends_on_seed_stream_and_step():
    module = ToyDiffusion(hidden=8, depth=1, embed_dim=4)
    module.noise_seed = 11
    draw = lambda *tags: torch.rand(3, generator=module.noise_generator(*tags))
    assert torch.equal(draw(0, 5, 1), draw(0, 5, 1))
    assert not torch.equal(draw(0, 5, 1), draw(0, 6, 1))
    assert not torch.equal(draw(0, 5, 1), draw(1, 5, 1))
    other = ToyDiffusion(hidden=8, depth=1, embed_dim=4)
    other.noise_seed = 12
    assert not torch.equal(draw(0, 5, 1), torch.rand(3, generator=other.noise_generator(0, 5, 1)))


def test_validate_logs_metrics_and_writes_the_sample_figure(tmp_path):
    L.seed_everything(0, verbose=False)
    model = ToyDiffusion(hidden=16, depth=1, embed_dim=8, sample_steps=4, num_val_samples=50)
    data = ToyDataModule(n_train=64, n_val=64, batch_size=32)
    trainer = L.Trainer(
        accelerator="cpu",
        logger=L.pytorch.loggers.CSVLogger(tmp_path),
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    (metrics,) = trainer.validate(model, data, verbose=False)
    assert {"val/loss", "val/near_mode", "val/mode_weight_error", "val/mode_spread_error"} <= set(metrics)
    assert list((tmp_path / "lightning_logs" / "version_0" / "samples").glob("val_samples_step*.png"))


def test_mixture_metrics_exact_samples_and_prior_baseline():
    data = ToyDataModule(mode_std=0.05)
    exact = data.mixture.sample(20000, torch.Generator().manual_seed(0))
    m = mixture_metrics(data.mixture, exact)
    assert m["near_mode"] == pytest.approx(1 - math.exp(-4.5), abs=0.005)  # chi_2 < 3
    assert m["mode_weight_error"] < 0.02 and m["mode_spread_error"] < 0.02
    prior = torch.randn(20000, 2, generator=torch.Generator().manual_seed(1))
    assert mixture_metrics(data.mixture, prior)["near_mode"] < 0.1


# ------------------------------------------------------------------ data
def test_toy_mixture_matches_its_law():
    dm = ToyDataModule(kind="mixture", n_train=40000, n_val=10, mode_std=0.1, mode_weights=[1, 2, 3, 4, 1, 2, 3, 4])
    dm.setup()
    x = dm.train_set.points.double()
    mix = dm.mixture
    assert torch.allclose(x.mean(0), mix.mean(), atol=0.02)
    assert torch.allclose(torch.cov(x.T), mix.covariance(), atol=0.02)
    assert torch.allclose(mix.mode_weights(x), mix.weights, atol=0.01)
    assert torch.allclose(mix.means.norm(dim=1), torch.ones(8, dtype=torch.float64))
    again = ToyDataModule(kind="mixture", n_train=40000, n_val=10, mode_std=0.1, mode_weights=[1, 2, 3, 4, 1, 2, 3, 4])
    again.setup()
    assert torch.equal(again.train_set.points, dm.train_set.points)


def test_moons_geometry():
    pts = moons(4000, 0.0, __import__("numpy").random.default_rng(0)) + [0.5, 0.25]
    up = pts[:, 1] > 0.25  # noise-free: upper moon has y >= 0, lower moon y <= 0.5 (overlap at the tips)
    r_up = ((pts[:, 0]) ** 2 + pts[:, 1] ** 2) ** 0.5
    r_lo = ((pts[:, 0] - 1) ** 2 + (pts[:, 1] - 0.5) ** 2) ** 0.5
    assert ((abs(r_up - 1) < 1e-9) | (abs(r_lo - 1) < 1e-9)).all()
    assert 0.3 < up.mean() < 0.7
    dm = ToyDataModule(kind="moons", n_train=100, n_val=10)
    dm.setup()
    assert dm.train_set.points.shape == (100, 2) and dm.mixture is None


def test_toy_data_errors():
    with pytest.raises(ValueError, match="'spiral'"):
        ToyDataModule(kind="spiral")
    with pytest.raises(ValueError, match="mode_weights"):
        ToyDataModule(num_modes=4, mode_weights=[1.0, 2.0])


def test_epoch_shuffle_sampler_is_seed_plus_epoch():
    ds = PointDataset(torch.zeros(10, 2))
    s = EpochShuffleSampler(ds, seed=7)
    s.start_at(3)
    s.set_epoch(5)  # Lightning's epoch numbers are ignored: passes count themselves
    expect = torch.randperm(10, generator=torch.Generator().manual_seed(10)).tolist()
    assert list(s) == expect
    assert list(s) == torch.randperm(10, generator=torch.Generator().manual_seed(11)).tolist()  # next pass: epoch 4
    s.start_at(3, skip=4)
    assert list(s) == expect[4:]
    s.start_at(3)
    assert list(s) == expect  # the skip applied once
    shards = [list(EpochShuffleSampler(ds, seed=7, num_replicas=2, rank=r)) for r in (0, 1)]
    assert not set(shards[0]) & set(shards[1]) and sorted(shards[0] + shards[1]) == list(range(10))


def test_train_loader_state_round_trip_and_mismatch_warning():
    dm = ToyDataModule(n_train=64, batch_size=16, seed=3)
    loader = dm.train_dataloader()
    assert isinstance(loader, ResumableLoader) and len(loader) == 4
    batch = next(iter(loader))
    assert set(batch) == {"x0"} and batch["x0"].shape == (16, 2)
    state = loader.state_dict()
    loader.load_state_dict(state)
    with pytest.warns(UserWarning, match="seed"):
        ToyDataModule(n_train=64, batch_size=16, seed=4).train_dataloader().load_state_dict(state)


def test_sample_passes_thresholding_options_to_the_denoiser():
    from difflab.core.lightning import ToyDiffusion

    torch.manual_seed(0)
    model = ToyDiffusion(hidden=16, depth=1, embed_dim=8, sample_steps=4)
    seen = {}
    make = model.make_denoiser

    def spy(batch=None, y=None):
        den = make(batch, y)
        seen["den"] = den
        return den

    model.make_denoiser = spy
    g = torch.Generator().manual_seed(0)
    plain = model.sample((8, 2), generator=g).sample
    out = model.sample((8, 2), generator=torch.Generator().manual_seed(0), threshold=0.5, threshold_max=1.0)
    assert seen["den"].threshold == 0.5 and seen["den"].threshold_max == 1.0
    assert out.sample.shape == plain.shape
