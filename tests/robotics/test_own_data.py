"""The data decides the task: a policy trained through a config of one task on demonstrations of
another is recorded, and evaluated, on the demonstrations' task; the README's commands run as
written; collect and eval refuse what would lose data or give a silent wrong result."""

import contextlib
from pathlib import Path

import pytest

from difflab.core.testing import run_readme_commands, user_error_line
from difflab.robotics.cli import main

README = Path(__file__).resolve().parents[2] / "robotics" / "README.md"
TASK = "drawer-close-v3"  # the smoke config names reach-v3


def quiet() -> list[str]:
    return ["--trainer.enable_progress_bar", "false"]


def collect(path: Path, episodes: int = 3) -> None:
    from difflab.robotics.data.collect import collect_demos

    collect_demos(TASK, episodes).save(path)


def one_line_error(capsys, argv: list[str], progress_before: bool = False) -> str:
    """The error line; with ``progress_before``, progress lines of work done before the error are left out."""
    return user_error_line(
        main, capsys, argv, keep=(lambda line: " episodes (" not in line) if progress_before else None
    )


def test_smoke_config_trains_on_demonstrations_of_another_task(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    collect(tmp_path / "dc.zarr")
    with pytest.warns(UserWarning, match=f"collected on {TASK}; --data.init_args.env reach-v3 is ignored"):
        assert main(["fit", "--config", "smoke_diffusion_policy", "--data.init_args.path", "dc.zarr", *quiet()]) == 0
    from difflab.robotics.inference import load_policy

    run = tmp_path / "outputs/robotics/smoke_diffusion_policy"
    model, _ = load_policy(run)
    assert model.task == TASK
    capsys.readouterr()
    assert main(["eval", "--ckpt", str(run), "--episodes", "1", "--max_steps", "10"]) == 0
    captured = capsys.readouterr()
    assert f"{TASK}: 1 episodes" in captured.out
    assert f"ddim on {TASK}: 1/1 episodes" in captured.err  # progress per episode
    err = one_line_error(capsys, ["eval", "--ckpt", str(run), "--episodes", "1", "--env", "reach-v3"])
    assert "--env reach-v3" in err and TASK in err and "--allow_other_env" in err
    args = ["eval", "--ckpt", str(run), "--episodes", "1", "--max_steps", "5", "--env", "reach-v3"]
    assert main([*args, "--allow_other_env"]) == 0
    assert "reach-v3: 1 episodes" in capsys.readouterr().out


def test_a_checkpoint_of_another_task_is_not_validated_on_this_one(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    collect(tmp_path / "dc.zarr")
    with pytest.warns(UserWarning):
        assert main(["fit", "--config", "smoke_diffusion_policy", "--data.init_args.path", "dc.zarr", *quiet()]) == 0
    argv = ["validate", "--config", "smoke_diffusion_policy", *quiet(), "--ckpt_path", "last"]
    err = one_line_error(capsys, argv, progress_before=True)
    assert TASK in err and "reach-v3" in err


def test_collect_does_not_replace_a_replay_buffer(tmp_path, capsys):
    out = tmp_path / "demos.zarr"
    assert main(["collect", str(out), "--env", TASK, "--episodes", "2"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("Constant(s) may be too high") <= 1  # Meta-World's expert warning, once
    assert f"collect {TASK}: 2/2 episodes" in captured.err
    err = one_line_error(capsys, ["collect", str(out), "--env", TASK, "--episodes", "1"])
    assert str(out) in err and "--overwrite" in err
    from difflab.robotics.data import ReplayBuffer

    assert ReplayBuffer.load(out).n_episodes == 2
    assert main(["collect", str(out), "--env", TASK, "--episodes", "1", "--overwrite"]) == 0
    assert ReplayBuffer.load(out).n_episodes == 1


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["collect", "OUT", "--action_noise", "-0.1"], "--action_noise"),
        (["collect", "OUT", "--max_steps", "501"], "--max_steps"),
        (["collect", "OUT", "--env", "nonexistent-v3", "--episodes", "1"], "nonexistent-v3"),
        (["eval", "--ckpt", "x", "--rti_steps", "2", "0"], "--rti_steps"),
        (["eval", "--ckpt", "x", "--window", "0"], "--window"),
        (["eval", "--ckpt", "x", "--tolerance", "0"], "--tolerance"),
    ],
)
def test_bad_arguments_are_one_line(argv, needle, tmp_path, capsys):
    argv = [str(tmp_path / "o.zarr") if a == "OUT" else a for a in argv]
    assert needle in one_line_error(capsys, argv)
    assert not (tmp_path / "o.zarr").exists()


def test_readme_own_data_commands(tmp_path, monkeypatch, capsys):
    """The README's commands for one's own replay buffer, as written, on the smoke recipe (two
    steps) and one evaluation episode."""
    monkeypatch.chdir(tmp_path)
    collect(tmp_path / "my.zarr")
    smoke = {"diffusion_policy_push": "smoke_diffusion_policy"}

    def fit_warns(argv: list[str]):
        return pytest.warns(UserWarning) if argv[0] == "fit" else contextlib.nullcontext()

    run_readme_commands(README, main, "difflab-robotics", {"50": "1"}, smoke, around=fit_warns)
    assert f"{TASK}: 1 episodes" in capsys.readouterr().out


def test_data_of_another_size_is_one_line_naming_the_options(tmp_path):
    """Outside the command line (which links the data's sizes into the policy) a policy built for other
    sizes than the data's is one error naming every option to set."""
    import numpy as np

    from difflab.core.lightning.train import train_briefly
    from difflab.robotics.data import DemoDataModule, ReplayBuffer
    from difflab.robotics.models import DiffusionPolicy
    from difflab.robotics.models.diffusion_policy import PolicyDataError
    from difflab.robotics.networks import ConditionalUnet1D

    rng = np.random.default_rng(0)
    episodes = [{"obs": rng.normal(size=(30, 10)), "action": rng.normal(size=(30, 4))} for _ in range(3)]
    ReplayBuffer.from_episodes(episodes, attrs={"env": "reach-v3"}).save(tmp_path / "small.zarr")
    data = DemoDataModule(path=str(tmp_path / "small.zarr"), val_episodes=1, batch_size=8)
    policy = DiffusionPolicy(ConditionalUnet1D(4, 78, down_dims=(8, 16)), obs_dim=39, action_dim=4)
    with pytest.raises(PolicyDataError) as err:
        train_briefly(policy, data, max_steps=1)
    assert "observations of 10 and actions of 4 dimensions, the policy is built for 39 and 4" in str(err.value)
    assert "--model.init_args.obs_dim 10" in str(err.value) and "global_cond_dim 20" in str(err.value)


def _push_t_like(path: Path, steps: int = 30, episodes: int = 4) -> None:
    """A replay buffer in Push-T's layout: ``state`` (5), ``keypoint`` (9, 2), ``action`` (2), ``img``."""
    import numpy as np
    import zarr

    rng = np.random.default_rng(0)
    n = steps * episodes
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    data, meta = root.create_group("data"), root.create_group("meta")
    fields = {
        "state": rng.uniform(0, 512, (n, 5)),
        "keypoint": rng.uniform(0, 512, (n, 9, 2)),
        "action": rng.uniform(0, 512, (n, 2)),
        "img": rng.uniform(0, 255, (n, 8, 8, 3)).astype(np.float32),
    }
    for key, arr in fields.items():
        data.create_array(key, shape=arr.shape, dtype=arr.dtype)[...] = arr
    ends = np.arange(1, episodes + 1, dtype=np.int64) * steps
    meta.create_array("episode_ends", shape=ends.shape, dtype=ends.dtype)[...] = ends


def test_replay_buffer_observation_fields_and_columns(tmp_path):
    import numpy as np
    import zarr

    from difflab.robotics.data import DemoDataError, ReplayBuffer

    _push_t_like(tmp_path / "pusht.zarr")
    buf = ReplayBuffer.load(tmp_path / "pusht.zarr", ["keypoint", "state[0:2]"])
    root = zarr.open_group(str(tmp_path / "pusht.zarr"), mode="r")
    want = np.concatenate([root["data/keypoint"][...].reshape(-1, 18), root["data/state"][:, :2]], 1)
    assert buf.obs_dim == 20 and buf.action_dim == 2 and np.allclose(buf.obs, want)
    assert "img" not in buf.extras  # images are not read
    with pytest.raises(DemoDataError, match=r"missing field 'data/obs' \(its fields: action, img, keypoint, state\)"):
        ReplayBuffer.load(tmp_path / "pusht.zarr")
    with pytest.raises(DemoDataError, match="selects no column"):
        ReplayBuffer.load(tmp_path / "pusht.zarr", ["state[7:9]"])


def test_the_data_decides_the_policy_sizes(tmp_path, monkeypatch, capsys):
    """A shipped config trains on a Push-T-style buffer (20-D observations, 2-D actions) with no model
    option; the diffusion policy's Meta-World gripper dimension is a one-line error naming its option."""
    import torch

    monkeypatch.chdir(tmp_path)
    _push_t_like(tmp_path / "pusht.zarr")
    data = ["--data.init_args.path", "pusht.zarr", "--data.init_args.obs_keys", '[keypoint, "state[0:2]"]']
    with pytest.warns(UserWarning, match="records no task"):
        assert main(["fit", "--config", "smoke_bc", *data, *quiet()]) == 0
    (last,) = (tmp_path / "outputs/robotics/smoke_bc").rglob("last.ckpt")
    ckpt = torch.load(last, weights_only=False, map_location="cpu")
    hp = ckpt["hyper_parameters"]
    assert (hp["obs_dim"], hp["action_dim"], hp["network"]["init_args"]["global_cond_dim"]) == (20, 2, 40)
    err = one_line_error(capsys, ["fit", "--config", "smoke_diffusion_policy", *data, *quiet()])
    assert "--model.init_args.discrete_action_dims [3]: the actions have 2 dimensions" in err
    with pytest.warns(UserWarning, match="records no task"):
        args = ["fit", "--config", "smoke_diffusion_policy", *data, "--model.init_args.discrete_action_dims", "[]"]
        assert main([*args, *quiet()]) == 0
    err = one_line_error(capsys, ["validate", "--config", "smoke_bc", "--ckpt_path", "last", *quiet()], True)
    assert "checkpoint and data disagree" in err and "--data.init_args.obs_keys" in err
