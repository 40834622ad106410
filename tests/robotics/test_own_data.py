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


def test_data_of_another_size_is_one_line_naming_the_option(tmp_path, monkeypatch, capsys):
    import numpy as np

    from difflab.robotics.data import ReplayBuffer

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    episodes = [{"obs": rng.normal(size=(30, 10)), "action": rng.normal(size=(30, 4))} for _ in range(3)]
    ReplayBuffer.from_episodes(episodes, attrs={"env": "reach-v3"}).save(tmp_path / "small.zarr")
    argv = ["fit", "--config", "smoke_diffusion_policy", "--data.init_args.path", "small.zarr", *quiet()]
    err = one_line_error(capsys, argv)
    assert "10 dimensions" in err and "obs_dim=39" in err and "--model.init_args.obs_dim" in err
    err = one_line_error(capsys, [*argv, "--model.init_args.obs_dim", "10"])
    assert "global_cond_dim 78" in err and "20" in err
