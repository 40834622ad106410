"""``difflab-robotics``: command line of difflab.robotics (diffusion policy, RTI-DP, ParaDiGMS).

Lightning verbs (``fit``, ``validate``, ``test``, ``predict``) through core's ``run_cli`` with the
shipped configs (``--config diffusion_policy_reach``), and the domain verbs:

* ``collect --env push-v3 --episodes 100 OUT.zarr``: expert demonstrations in the zarr replay-buffer
  layout (``--action_noise``, ``--seed``; episode seeds recorded in ``meta/episode_seeds``);
* ``eval --ckpt CKPT --env push-v3 --episodes 50 --sampler ddim|ddpm|dpm_solver|rti|paradigms|stream``:
  rollouts over the fixed seed list ``seed0, seed0 + 1, ...``: success rate, mean return, latency
  and NFE per control step (a BC checkpoint ignores ``--sampler``); without ``--ckpt`` the shipped
  pretrained policy of the task, with its recorded sampler unless ``--sampler`` is given;
* ``demo``: collect, train briefly, evaluate full sampling, DDIM, RTI-DP and BC, write a figure.

The data decides the policy's sizes: the command line links the data module's observation and
action sizes into the policy and its network (:data:`LINKS`), so a shipped config trains on a
replay buffer of any task.

This module parses arguments only; loading and the verbs live in :mod:`difflab.robotics.inference`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from difflab.core.cli import PackageCLI
from difflab.core.verbs import VerbParser, check_output, count, non_negative_float, positive_float, seed_option

LINKS = [
    ("data.obs_dim", "model.init_args.obs_dim"),
    ("data.action_dim", "model.init_args.action_dim"),
    ("data.action_dim", "model.init_args.network.init_args.action_dim"),
    ("data.global_cond_dim", "model.init_args.network.init_args.global_cond_dim"),
]
"""What the data decides: the observation and action sizes of the policy and its network's condition
(``global_cond_dim = n_obs_steps * obs_dim``, of the U-Net and of BC's MLP alike) and action sizes.
A checkpoint restored onto data of other sizes is refused by its normalisers (one line)."""

DESCRIPTION = (
    "difflab-robotics: Diffusion Policy on Meta-World (state observations) with RTI-DP warm starts, "
    "ParaDiGMS parallel sampling and a behaviour-cloning baseline."
)


def episode_limit(text: str) -> int:
    """Argument type: an episode step limit in [1, 500] (Meta-World's own limit is 500)."""
    value = count(1)(text)
    if value > 500:
        raise argparse.ArgumentTypeError(f"{value}: must be at most 500 (Meta-World's limit)")
    return value


def collect_main(argv: list[str]) -> int:
    """collect expert demonstrations from Meta-World into a zarr replay buffer"""
    p = VerbParser(prog="difflab-robotics collect", description=collect_main.__doc__)
    p.add_argument("out", type=Path, help="output zarr folder (e.g. push.zarr)")
    p.add_argument("--env", default="reach-v3", help="Meta-World v3 task (reach-v3, push-v3, ...)")
    p.add_argument("--episodes", type=count(1), default=100, help="successful episodes to record")
    p.add_argument(
        "--action_noise", type=non_negative_float, default=0.0, help="std of Gaussian noise on the expert action"
    )
    seed_option(p, "the first episode's reset")
    p.add_argument("--max_steps", type=episode_limit, default=200, help="episode step limit (at most 500)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing replay buffer at OUT")
    ns = p.parse_args(argv)
    check_output(ns.out, ns.overwrite)
    from difflab.robotics.data.collect import collect_demos

    buf = collect_demos(ns.env, ns.episodes, seed=ns.seed, action_noise=ns.action_noise, max_steps=ns.max_steps)
    buf.save(ns.out)
    lengths = buf.lengths()
    print(
        f"wrote {ns.out}: {buf.n_episodes} episodes of {ns.env} ({int(lengths.sum())} steps, "
        f"length {lengths.min()}-{lengths.max()}), obs {buf.obs_dim}-D, action {buf.action_dim}-D, "
        f"{buf.attrs['attempts']} attempts"
    )
    return 0


def eval_main(argv: list[str]) -> int:
    """evaluate a checkpoint by rollouts over a fixed seed list (success, return, latency, NFE)"""
    from difflab.robotics.inference import EVAL_SAMPLERS

    p = VerbParser(prog="difflab-robotics eval", description=eval_main.__doc__)
    p.add_argument(
        "--ckpt",
        default=None,
        help="checkpoint written by fit, or its run folder (default: the shipped pretrained diffusion policy "
        "of --env, reach-v3 when --env is not given; shipped for reach-v3 and push-v3)",
    )
    p.add_argument("--env", default=None, help="task (default: the checkpoint's training task)")
    p.add_argument("--allow_other_env", action="store_true", help="evaluate on an --env other than the training task")
    p.add_argument("--episodes", type=count(1), default=50, help="evaluation episodes per sampler")
    p.add_argument(
        "--sampler",
        nargs="+",
        default=None,
        choices=EVAL_SAMPLERS,
        help="one or more samplers (default: the one recorded with a pretrained checkpoint, else ddim)",
    )
    p.add_argument(
        "--steps",
        type=count(1),
        default=None,
        help="sampler steps (default: the pretrained checkpoint's recorded count for its sampler, else 10 for "
        "ddim, 100 for ddpm/paradigms)",
    )
    p.add_argument(
        "--rti_steps",
        type=count(1),
        nargs="+",
        default=None,
        help="RTI-DP chain steps, e.g. 3 2 1 (default: a pretrained checkpoint's, else the model's)",
    )
    p.add_argument("--window", type=count(1), default=20, help="ParaDiGMS window")
    p.add_argument("--tolerance", type=positive_float, default=0.1, help="ParaDiGMS tolerance")
    p.add_argument("--max_steps", type=episode_limit, default=150, help="episode step limit")
    p.add_argument("--seed0", type=int, default=10_000, help="first evaluation seed (demos use 0, 1, ...)")
    seed_option(p, "the sampling noise")
    p.add_argument("--out", type=Path, default=None, help="folder for the rollout figure")
    p.add_argument("--overwrite", action="store_true", help="replace an existing rollout figure in --out")
    ns = p.parse_args(argv)
    if ns.out is not None:
        check_output(ns.out / "rollouts.png", ns.overwrite)
    from difflab.robotics.inference import evaluate_checkpoint

    options = vars(ns)
    for key in ("overwrite", "debug"):
        options.pop(key)
    return evaluate_checkpoint(options.pop("ckpt"), **options)


main = PackageCLI(
    "robotics",
    DESCRIPTION,
    {"collect": collect_main, "eval": eval_main},
    "collect demos, train briefly, compare full sampling, DDIM, RTI-DP and BC, write figures",
    datamodule="difflab.robotics.data:DemoDataModule",
    links=LINKS,
).main
"""``difflab-robotics``: the package's command line (Lightning verbs and the domain verbs)."""


if __name__ == "__main__":
    raise SystemExit(main())
