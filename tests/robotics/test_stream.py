"""Per-token noise levels (Diffusion Forcing / TEDi training) and streaming sampling of the diffusion policy.

* the U-Net's per-token time path with a row of equal times is exactly the shared-time path;
* without ``per_token_time`` the network is the reference one (same parameters) and refuses ``(B, Tp)`` times;
* TEDi's training levels: the ladder with a random offset or one constant level, past positions blank;
* the streaming controller: 1 NFE per control step after the fill, buffer reset at every episode;
* ``eval --sampler stream`` on a shared-level checkpoint is a one-line error.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from difflab.robotics.models import DiffusionPolicy
from difflab.robotics.networks import ConditionalUnet1D
from difflab.robotics.policy import StreamController


def _policy(noise_levels="tedi", **kw):
    net = ConditionalUnet1D(4, 2 * 5, down_dims=(16, 32), step_embed_dim=16, per_token_time=noise_levels != "shared")
    dp = DiffusionPolicy(net, obs_dim=5, action_dim=4, noise_levels=noise_levels, **kw)
    g = torch.Generator().manual_seed(0)
    dp.obs_normalizer.fit(torch.randn(50, 5, generator=g))
    dp.action_normalizer.fit(torch.randn(50, 4, generator=g))
    return dp.eval()


def test_equal_per_token_times_give_the_shared_path_exactly():
    torch.manual_seed(0)
    net = ConditionalUnet1D(4, 6, down_dims=(16, 32, 64), step_embed_dim=16, per_token_time=True)
    for p in net.parameters():  # the per-position convolutions start at zero; make them matter
        torch.nn.init.normal_(p, std=0.1)
    x, cond = torch.randn(3, 16, 4), torch.randn(3, 6)
    t = torch.tensor([0.1, 0.5, 0.93])
    shared = net(x, t, cond)
    torch.testing.assert_close(net(x, t[:, None].expand(3, 16), cond), shared, rtol=1e-5, atol=1e-6)
    varied = t[:, None].expand(3, 16).clone()
    varied[:, 8:] = 0.99
    assert (net(x, varied, cond) - shared).abs().max() > 1e-3


def test_without_the_flag_the_network_is_the_reference_one():
    plain = ConditionalUnet1D(4, 6, down_dims=(16, 32), step_embed_dim=16)
    per_token = ConditionalUnet1D(4, 6, down_dims=(16, 32), step_embed_dim=16, per_token_time=True)
    extra = set(per_token.state_dict()) - set(plain.state_dict())
    assert extra and all(".pos." in k for k in extra)
    assert set(plain.state_dict()) <= set(per_token.state_dict())
    with pytest.raises(ValueError, match="per_token_time=True"):
        plain(torch.randn(2, 16, 4), torch.rand(2, 16), torch.randn(2, 6))
    with pytest.raises(ValueError, match="per_token_time=True"):
        DiffusionPolicy(plain, obs_dim=3, action_dim=4, noise_levels="tedi")


def test_tedi_training_levels_are_the_shifted_ladder_or_constant():
    dp = _policy("tedi", tedi_constant=0.25)
    x0 = torch.zeros(4000, 16, 4)
    k = (dp.sample_time(x0, torch.Generator().manual_seed(1)) * 100).round().long()
    assert k.shape == (4000, 16)
    assert (k[:, 0] == 100).all()  # the past position: blank, at t = 1
    fut = k[:, 1:]
    const = (fut == fut[:, :1]).all(1)
    assert abs(const.float().mean().item() - 0.25) < 0.03
    # the ladder rows: rung c (one action per rung, n = 15) at floor(100 (c + 1) / 15) - j, j in 0..5
    ladder = fut[~const]
    top = torch.floor(100 * torch.arange(1, 16) / 15).long()
    j = top - ladder
    assert (j == j[:, :1]).all() and j.min() == 0 and j.max() == 100 // 15 - 1
    assert ladder.min() >= 1 and ladder.max() <= 100
    w = dp.loss_weight(k / 100)
    assert (w[:, 0] == 0).all() and torch.allclose(w.mean(), torch.tensor(1.0))
    dft = (_policy("per_token").sample_time(x0, torch.Generator().manual_seed(2)) * 100).round()
    assert (dft[:, 0] == 100).all() and dft[:, 1:].std(1).mean() > 20  # independent levels


def test_loss_trains_with_per_token_times():
    dp = _policy("per_token").train()
    batch = {"obs": torch.randn(8, 2, 5), "action": torch.randn(8, 16, 4)}
    loss = dp.training_loss(batch, torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss)
    assert dp.network.down[0][0].pos.weight.grad.abs().sum() > 0


def test_stream_controller_spends_one_nfe_per_control_step_and_resets_per_episode():
    dp = _policy("tedi")
    ctrl = StreamController(dp, seed=3)
    obs = np.zeros(5, dtype=np.float32)
    for episode in range(2):
        ctrl.reset(episode)
        nfe0 = ctrl.nfe
        first = ctrl.act(obs)
        assert first.shape == (4,)
        assert ctrl.nfe - nfe0 == 14 + 1  # ladder fill of 15 rungs (n - 1) + the first step
        for _ in range(5):
            ctrl.act(obs)
        assert ctrl.nfe - nfe0 == 15 + 5 and ctrl.state.steps_taken == 6
    # reproducible: the same episode seed gives the same actions
    ctrl.reset(0)
    a = [ctrl.act(obs) for _ in range(3)]
    ctrl.reset(0)
    b = [ctrl.act(obs) for _ in range(3)]
    np.testing.assert_array_equal(np.stack(a), np.stack(b))


def test_chunked_stream_emits_several_actions_per_call():
    dp = _policy("tedi", stream_chunk=3)
    assert dp.stream_grid().shape == (6,)  # 15 future actions, 5 rungs of 3
    ctrl = StreamController(dp)
    ctrl.reset(0)
    obs = np.zeros(5, dtype=np.float32)
    for _ in range(6):
        ctrl.act(obs)
    assert ctrl.calls == 2 and ctrl.nfe == 4 + 2
    with pytest.raises(ValueError, match="stream_chunk must divide Tp - To \\+ 1 = 15"):
        _policy("tedi", stream_chunk=4)


def test_a_shared_level_policy_refuses_to_stream():
    from difflab.core.errors import UserError

    dp = _policy("shared")
    with pytest.raises(UserError, match="noise_levels tedi"):
        StreamController(dp)


def test_fit_tedi_then_eval_stream_on_the_command_line(tmp_path, monkeypatch, capsys):
    from difflab.robotics.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["collect", "--env", "reach-v3", "--episodes", "2", "demos.zarr"]) == 0
    fit = ["fit", "--config", "smoke_diffusion_policy", "--trainer.enable_progress_bar", "false"]
    fit += ["--data.init_args.path", "demos.zarr"]
    assert main(fit) == 0  # shared levels
    tedi = ["--model.init_args.noise_levels", "tedi", "--model.init_args.network.init_args.per_token_time", "true"]
    tedi += ["--trainer.default_root_dir", "outputs/robotics/smoke_tedi"]
    assert main([*fit, *tedi]) == 0
    ckpt = "outputs/robotics/smoke_tedi/lightning_logs/version_0/checkpoints/last.ckpt"
    assert main(["eval", "--ckpt", ckpt, "--episodes", "1", "--max_steps", "10", "--sampler", "stream", "ddim"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| stream |"))
    assert row.split("|")[-3].strip() == "2.40"  # NFE/step over 10 steps: (14 fill + 10) / 10
    shared = "outputs/robotics/smoke_diffusion_policy/lightning_logs/version_0/checkpoints/last.ckpt"
    with pytest.raises(SystemExit) as err:
        main(["eval", "--ckpt", shared, "--episodes", "1", "--max_steps", "5", "--sampler", "stream"])
    assert err.value.code == 2
    msg = capsys.readouterr().err.strip()
    assert msg.startswith("difflab-robotics: error: --sampler stream:") and "noise_levels='shared'" in msg
    assert len(msg.splitlines()) == 1
