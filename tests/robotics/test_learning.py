"""Learning test: a briefly trained Diffusion Policy solves reach-v3 far above a do-nothing policy,
and RTI-DP (the full DDPM chain on the first call of an episode, then 3 DDPM steps from the shifted
previous chunk at every control step) keeps at least 80 % of DDIM-10's success.

40 expert demos, 800 training steps (EMA 0.99), evaluation on seeds 10000..10031 (32 episodes of at
most 100 steps). A success rate over 32 episodes moves in steps of 0.031 and has a standard error of
about 0.08 near 0.75, so the comparison allows four episodes (one standard error of the difference):
RTI-DP >= 0.8 x DDIM-10 - 4/32. Per seed (``python scripts/learning_spread.py
tests/robotics/test_learning.py --seeds 0-4``, one thread, 2026-12-06; same table in robotics/README.md):

| seed | DDIM-10 success | RTI-DP success | RTI-DP / DDIM-10 |
|---|---|---|---|
| 0 | 0.78 | 0.91 | 1.16 |
| 1 | 0.88 | 0.78 | 0.89 |
| 2 | 0.72 | 0.78 | 1.09 |
| 3 | 0.63 | 0.84 | 1.35 |
| 4 | 0.84 | 0.63 | 0.74 |
| mean | 0.77 | 0.79 | 1.05 |
| min | 0.63 | 0.63 | 0.74 |
| max | 0.88 | 0.91 | 1.35 |
| seed 0, two threads | 0.78 | 0.91 | 1.16 |
| seed 1, two threads | 0.84 | 0.78 | 0.93 |

The tightest seed is 4 (RTI-DP 0.63 against its bound 0.55, two episodes above it). With the earlier
recipe (500 steps, 12 episodes, first RTI-DP call by DDIM-10) the ratio was 0.67-1.13.
"""

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

DDIM_MIN = 0.4  # do-nothing scores 0
RTI_KEEPS = 0.8  # RTI-DP success >= this fraction of DDIM-10's (the README says it keeps most of it)
EPISODES = 32
# one standard error of the difference of two success rates near 0.75 over 32 episodes (four episodes)
SLACK = 4 / 32
FIRST_CALL_NFE = 100  # RTIController's default first call: the full DDPM chain


def test_diffusion_policy_learns_reach_and_rti_keeps_it(test_seed, record_property):
    from difflab.robotics.demo import train_policies
    from difflab.robotics.envs import MetaWorldEnv
    from difflab.robotics.policy import ChunkController, RTIController, StillController, evaluate

    run = train_policies("reach-v3", episodes=40, max_steps=800, bc=False, seed=test_seed)
    dp = run["dp"]
    env = MetaWorldEnv("reach-v3", max_steps=100)
    seeds = list(range(10_000, 10_000 + EPISODES))
    still = evaluate(StillController(), env, seeds, name="still", keep_paths=False).summary()
    ddim = evaluate(ChunkController(dp, "ddim", 10), env, seeds, name="ddim", keep_paths=False).summary()
    rti_run = evaluate(RTIController(dp), env, seeds, name="rti", keep_paths=False)
    rti = rti_run.summary()
    # every call after an episode's first costs the 3 NFE of rti_steps [3, 2, 1]
    later_nfe = (rti_run.nfe - FIRST_CALL_NFE * EPISODES) / (rti_run.steps - EPISODES)
    print("still", still, "\nddim", ddim, "\nrti", rti, "\nRTI-DP NFE per later step", later_nfe)
    for name, res in (("ddim", ddim), ("rti", rti)):
        record_property(f"{name}_success", res["success_rate"])
    record_property("rti_over_ddim", rti["success_rate"] / max(ddim["success_rate"], 1e-9))
    record_property("rti_nfe_per_step", rti["nfe_per_step"])
    assert still["success_rate"] == 0.0
    assert ddim["success_rate"] >= DDIM_MIN
    assert rti["success_rate"] >= RTI_KEEPS * ddim["success_rate"] - SLACK
    assert later_nfe == pytest.approx(3.0)
