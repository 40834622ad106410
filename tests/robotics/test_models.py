"""The U-Net, the DDPM chain and samplers against diffusers, RTI-DP and ParaDiGMS controllers, bad input."""

import numpy as np
import pytest
import torch

from difflab.robotics.models import BCPolicy, DiffusionPolicy
from difflab.robotics.networks import ChunkMLP, ConditionalUnet1D


def _policy(seed=0, **kw):
    torch.manual_seed(seed)
    net = ConditionalUnet1D(4, 2 * 5, down_dims=(16, 32), step_embed_dim=16)
    m = DiffusionPolicy(net, obs_dim=5, action_dim=4, **kw)
    rng = np.random.default_rng(seed)
    act = rng.uniform(-1, 1, size=(100, 4))
    act[:, 3] = np.where(rng.uniform(size=100) > 0.5, 1.0, -1.0)
    m.fit_normalizers(rng.normal(size=(100, 5)), act)
    return m.eval()


def test_unet_shapes_and_errors():
    net = ConditionalUnet1D(4, 10, down_dims=(16, 32, 64), step_embed_dim=16)
    x = torch.randn(3, 16, 4)
    assert net(x, torch.rand(3), torch.randn(3, 10)).shape == (3, 16, 4)
    with pytest.raises(ValueError, match="divisible by 2"):
        net(torch.randn(3, 10, 4), torch.rand(3), torch.randn(3, 10))
    with pytest.raises(ValueError, match=r"cond must have shape \(3, 10\)"):
        net(x, torch.rand(3), torch.randn(3, 9))


def test_chain_matches_diffusers_squaredcos():
    diffusers = pytest.importorskip("diffusers")
    ref = diffusers.DDPMScheduler(num_train_timesteps=100, beta_schedule="squaredcos_cap_v2")
    m = _policy()
    # diffusers timestep j is our chain step k = j + 1 (alpha_bar_0 = 1 is the clean data)
    np.testing.assert_allclose(m.process.alphas_cumprod[1:].numpy(), ref.alphas_cumprod.double().numpy(), atol=1e-6)


def test_ddim10_chunk_matches_diffusers():
    diffusers = pytest.importorskip("diffusers")
    m = _policy()
    obs = torch.randn(2, 2, 5)
    g = torch.Generator().manual_seed(0)
    x_init = torch.randn(2, 16, 4, generator=g)
    ours = m.sample_chunk(obs, sampler="ddim", steps=10, x_init=x_init.clone())
    assert ours.nfe == 10
    sched = diffusers.DDIMScheduler(
        num_train_timesteps=100,
        beta_schedule="squaredcos_cap_v2",
        clip_sample=True,
        set_alpha_to_one=True,
        timestep_spacing="trailing",
    )
    sched.set_timesteps(10)
    cond, _ = m.normalize_batch({"obs": obs})
    x = x_init.clone()
    with torch.no_grad():
        for j in sched.timesteps:
            t = torch.full((2,), (int(j) + 1) / 100.0)
            eps = m.network(x, t, cond)
            x = sched.step(eps, j, x, use_clipped_model_output=True).prev_sample
    np.testing.assert_allclose(ours.sample.numpy(), x.numpy(), atol=2e-4)


def test_training_step_decreases_nothing_but_runs_and_uses_integer_steps():
    m = _policy()
    t = m.sample_time(torch.zeros(1000, 16, 4), torch.Generator().manual_seed(0))
    k = t * 100
    assert torch.allclose(k, k.round()) and k.min() >= 1 and k.max() <= 100
    batch = {"obs": torch.randn(4, 2, 5), "action": torch.rand(4, 16, 4) * 2 - 1}
    loss = m.training_loss(batch, torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and torch.isfinite(loss)


def test_observation_size_disagreeing_with_checkpoint_is_named():
    m = _policy()
    with pytest.raises(ValueError, match=r"field 'obs' has 6 dimensions but the policy was built for obs_dim=5"):
        m.sample_chunk(torch.randn(1, 2, 6))
    from difflab.robotics.policy import ChunkController

    with pytest.raises(ValueError, match="environment observation: field 'obs' has 39"):
        ChunkController(m).act(np.zeros(39))


class _Env:
    """1-D toy 'environment' with a 5-D observation: the first entry integrates the action."""

    obs_dim, action_dim, max_steps, name = 5, 4, 12, "toy"

    def reset(self, seed):
        self.x = np.zeros(5)
        self.x[1] = seed % 3
        return self.x.copy()

    def step(self, a):
        self.x[0] += 0.1 * a[0]
        return self.x.copy(), -abs(self.x[0] - 1), bool(self.x[0] > 1), False

    def end_effector(self, obs):
        return obs[:3]


def test_rti_controller_warm_start_shift_nfe_and_gripper():
    from difflab.robotics.policy import RTIController, evaluate

    m = _policy(rti_steps=[3, 2, 1], discrete_action_dims=[3], discrete_factor=2.0)
    ctrl = RTIController(m, initial_steps=10, initial_sampler="ddim")
    ctrl.reset(0)
    seen = []
    orig = m.sample_chunk

    def spy(obs, **kw):
        seen.append(kw)
        return orig(obs, **kw)

    m.sample_chunk = spy
    a0 = ctrl.act(np.zeros(5))
    first_guess = ctrl.guess.clone()
    ctrl.act(np.zeros(5))
    assert len(seen) == 2 and seen[0]["sampler"] == "ddim"
    x_init = seen[1]["x_init"]
    # warm start = previous chunk shifted by one step, last action repeated, gripper at +-1/factor
    torch.testing.assert_close(x_init[:, :-1], first_guess[:, 1:])
    torch.testing.assert_close(x_init[:, -1], first_guess[:, -1])
    assert set(first_guess[..., 3].abs().unique().tolist()) == {0.5}
    assert seen[1]["grid"].tolist() == pytest.approx([0.03, 0.02, 0.01, 0.0])
    # executed gripper action binarised to the demonstrations' extremes (+-1 here)
    assert abs(a0[3]) == pytest.approx(1.0, abs=1e-6)
    m.sample_chunk = orig
    res = evaluate(RTIController(m, initial_steps=10, initial_sampler="ddim"), _Env(), [0, 1], max_steps=12)
    s = res.summary()
    # per episode: 10 NFE for the first call, then 3 per control step
    assert res.nfe == sum(10 + 3 * (n - 1) for n in res.lengths)
    assert s["episodes"] == 2 and s["latency_ms"] > 0


def test_paradigms_equals_sequential_ddpm_within_tolerance():
    m = _policy()
    obs = torch.randn(3, 2, 5)
    x = torch.randn(3, 16, 4, generator=torch.Generator().manual_seed(1))
    seq = m.sample_chunk(obs, sampler="ddpm", steps=100, x_init=x.clone(), generator=torch.Generator().manual_seed(2))
    par = m.sample_chunk(
        obs,
        sampler="paradigms",
        steps=100,
        x_init=x.clone(),
        generator=torch.Generator().manual_seed(2),
        window=20,
        tolerance=0.01,
    )
    assert seq.nfe == 100 and par.info["rounds"] < 100 and par.nfe >= 100
    assert (par.sample - seq.sample).abs().max() < 0.05


def test_receding_horizon_executes_ta_actions_per_chunk():
    from difflab.robotics.policy import ChunkController, evaluate

    torch.manual_seed(0)
    bc = BCPolicy(ChunkMLP(10, 16, 4, width=16, depth=1), obs_dim=5, action_dim=4)
    bc.fit_normalizers(np.random.default_rng(0).normal(size=(50, 5)), np.random.default_rng(1).uniform(-1, 1, (50, 4)))
    ctrl = ChunkController(bc)
    res = evaluate(ctrl, _Env(), [0], max_steps=12)
    assert res.lengths == [12] and res.nfe == 2  # chunks at steps 0 and 8
    ctrl.reset(0)
    chunk = bc.action_normalizer.unnormalize(bc.sample_chunk(torch.zeros(1, 2, 5)).sample)[0].numpy()
    np.testing.assert_allclose(ctrl.act(np.zeros(5)), chunk[1], rtol=1e-5)  # index To - 1 = 1


def test_rti_start_suggestion_follows_noise_level():
    from difflab.robotics.policy import suggest_rti_start

    m = _policy()
    s = (1 - m.process.alphas_cumprod).sqrt()
    for err in (0.01, 0.1, 0.3):
        k = suggest_rti_start(m, err)
        assert s[k] >= err and (k == 1 or s[k - 1] < err)
