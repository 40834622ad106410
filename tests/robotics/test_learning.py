"""Learning test: a briefly trained Diffusion Policy solves reach-v3 far above a do-nothing policy,
and RTI-DP (warm-started, 3 NFE per control step) keeps most of that success.

Measured on the shared 2-core CPU (40 demos, 500 training steps, seeds 10000..10011, limit 100 steps):
do-nothing 0/12, DDIM-10 8/12 (0.67), RTI-DP [3, 2, 1] 9/12 (0.75) at 3.1 NFE per control step.
Thresholds are about half the measured gain. About 55 s of CPU time (5 min wall on the busy machine).
"""

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

DDIM_MIN = 0.3
RTI_KEEPS = 0.5  # RTI-DP success >= this fraction of DDIM-10's


class _Still:
    nfe = 0

    def reset(self, seed):
        pass

    def act(self, obs):
        return np.zeros(4)


def test_diffusion_policy_learns_reach_and_rti_keeps_it(test_seed, record_property):
    from difflab.robotics.demo import train_policies
    from difflab.robotics.envs import MetaWorldEnv
    from difflab.robotics.policy import ChunkController, RTIController, evaluate

    run = train_policies("reach-v3", episodes=40, max_steps=500, bc=False, seed=test_seed)
    dp = run["dp"]
    env = MetaWorldEnv("reach-v3", max_steps=100)
    seeds = list(range(10_000, 10_012))
    still = evaluate(_Still(), env, seeds, name="still").summary()
    ddim = evaluate(ChunkController(dp, "ddim", 10), env, seeds, name="ddim").summary()
    # first call with DDIM-10 instead of the full chain keeps the test short; later calls are RTI-DP
    rti = evaluate(RTIController(dp, initial_sampler="ddim", initial_steps=10), env, seeds, name="rti").summary()
    print("still", still, "\nddim", ddim, "\nrti", rti)
    for name, res in (("ddim", ddim), ("rti", rti)):
        record_property(f"{name}_success", res["success_rate"])
    record_property("rti_nfe_per_step", rti["nfe_per_step"])
    assert still["success_rate"] == 0.0
    assert ddim["success_rate"] >= DDIM_MIN
    assert rti["success_rate"] >= RTI_KEEPS * ddim["success_rate"]
    assert rti["nfe_per_step"] < 3.5  # 3 NFE per call after the first
