"""Command line: collect -> fit -> eval, exact resume (every config's fast_dev_run, the checkpoint round
trip and help are in tests/architecture/test_contracts.py)."""

import pytest
import torch

from difflab.core.cli import builtin_configs
from difflab.robotics.cli import main

CONFIGS = builtin_configs("robotics")


def test_configs_ship():
    assert {"diffusion_policy_reach", "diffusion_policy_push", "bc_reach", "smoke_diffusion_policy", "smoke_bc"} <= set(
        CONFIGS
    )


def test_collect_fit_eval(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["collect", "--env", "reach-v3", "--episodes", "3", "--action_noise", "0.05", "demos.zarr"]) == 0
    assert "wrote demos.zarr: 3 episodes of reach-v3" in capsys.readouterr().out
    for cfg in ("smoke_diffusion_policy", "smoke_bc"):
        fit = ["fit", "--config", cfg, "--trainer.enable_progress_bar", "false", "--data.init_args.path", "demos.zarr"]
        assert main(fit) == 0
    ckpt = tmp_path / "outputs/robotics/smoke_diffusion_policy/lightning_logs/version_0/checkpoints/last.ckpt"
    ev = ["eval", "--ckpt", str(ckpt), "--episodes", "1", "--max_steps", "10", "--out", "ev"]
    assert main([*ev, "--sampler", "ddim", "rti", "paradigms", "unipc", "--steps", "4", "--rti_steps", "2", "1"]) == 0
    out = capsys.readouterr().out
    assert "| rti |" in out and "| paradigms |" in out and "artifact: ev/rollouts.png" in out
    assert (tmp_path / "ev/rollouts.png").stat().st_size > 1000
    bc = tmp_path / "outputs/robotics/smoke_bc/lightning_logs/version_0/checkpoints/last.ckpt"
    assert main(["eval", "--ckpt", str(bc), "--episodes", "1", "--max_steps", "10"]) == 0
    assert "| bc |" in capsys.readouterr().out
    # a policy trained on reach (39-D observations) refuses an environment of another size
    from difflab.robotics.inference import load_policy

    model, data_hp = load_policy(ckpt)
    assert data_hp["path"] == "demos.zarr" and model.obs_normalizer.fitted
    with pytest.raises(ValueError, match="field 'obs' has 7 dimensions"):
        model.check_dims(torch.zeros(7), where="environment")


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


def test_resume_is_exact(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = ["fit", "--config", "smoke_diffusion_policy", "--trainer.enable_progress_bar", "false"]
    full = "outputs/robotics/smoke_diffusion_policy/lightning_logs/version_0/checkpoints/last.ckpt"
    assert main([*base, "--trainer.max_steps", "4"]) == 0
    w_full = _weights(full)
    assert main([*base, "--trainer.max_steps", "2"]) == 0
    assert main([*base, "--trainer.max_steps", "4", "--ckpt_path", "last"]) == 0
    w_resumed = _weights(full)
    for k in w_full:
        torch.testing.assert_close(w_resumed[k], w_full[k])
