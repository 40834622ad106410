"""Learning test: a diffusion policy trained briefly with TEDi's per-token noise levels solves reach-v3
when sampled as a stream (one denoising step of the rolling action buffer per control step, 1 NFE),
keeping most of the success of DDIM-10 on the same network.

40 expert demos, 800 training steps (EMA 0.99) with ``noise_levels="tedi"`` (0.8 shifted ladder,
0.2 constant level; 15 rungs of one action), evaluation on seeds 10000..10031 (32 episodes of at
most 100 steps). The stream's first call of an episode fills the buffer (14 NFE), every later call
costs exactly 1 NFE and executes one action. DDIM-10 runs on the same network (the constant-level
share of the training mix is what it needs) and executes 8 actions per chunk.

Bounds: DDIM-10 >= 0.4 (do-nothing scores 0) and stream >= 0.8 x DDIM-10 - 4/32 (one standard error
of the difference of two success rates over 32 episodes), as RTI-DP in test_learning.py.
Per-seed numbers (``python scripts/learning_spread.py tests/robotics/test_learning_stream.py --seeds 0-4``,
one thread, 92-131 s per run on a busy 2-core machine; seed 4 run 2026-12-06):

| seed | DDIM-10 success | stream success | stream / DDIM-10 |
|---|---|---|---|
| 0 | 0.78 | 0.84 | 1.08 |
| 1 | 0.78 | 0.88 | 1.12 |
| 2 | 0.88 | 0.91 | 1.04 |
| 3 | 0.84 | 0.78 | 0.93 |
| 4 | 0.88 | 0.81 | 0.93 |
| mean | 0.83 | 0.84 | 1.02 |
| min | 0.78 | 0.78 | 0.93 |
| max | 0.88 | 0.91 | 1.12 |
| seed 0, two threads | 0.78 | 0.84 | 1.08 |
| seed 1, two threads | 0.78 | 0.88 | 1.12 |

NFE per control step 1.27-1.30 overall
(the 14-NFE fill of each episode spread over its ~50 steps), exactly 1 after the fill.

The stream keeps all of DDIM-10's success on average; the lowest ratio (0.93) is well above the bound
(0.8 x 0.84 - 0.125 = 0.55 for seed 3), which is kept as loose as RTI-DP's since five seeds over 32
episodes do not pin the ratio down to better than about +-0.1.
"""

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

DDIM_MIN = 0.4
STREAM_KEEPS = 0.8
EPISODES = 32
SLACK = 4 / 32
FILL_NFE = 14  # ladder fill of 15 rungs: n - 1 steps


def test_tedi_policy_streams_reach_with_one_nfe_per_step(test_seed, record_property):
    from difflab.robotics.demo import train_policies
    from difflab.robotics.envs import MetaWorldEnv
    from difflab.robotics.policy import ChunkController, StillController, StreamController, evaluate

    run = train_policies("reach-v3", episodes=40, max_steps=800, bc=False, seed=test_seed, noise_levels="tedi")
    dp = run["dp"]
    env = MetaWorldEnv("reach-v3", max_steps=100)
    seeds = list(range(10_000, 10_000 + EPISODES))
    still = evaluate(StillController(), env, seeds, name="still", keep_paths=False).summary()
    ddim = evaluate(ChunkController(dp, "ddim", 10), env, seeds, name="ddim", keep_paths=False).summary()
    stream_run = evaluate(StreamController(dp), env, seeds, name="stream", keep_paths=False)
    stream = stream_run.summary()
    later_nfe = (stream_run.nfe - (FILL_NFE + 1) * EPISODES) / (stream_run.steps - EPISODES)
    print("still", still, "\nddim", ddim, "\nstream", stream, "\nstream NFE per later step", later_nfe)
    for name, res in (("ddim", ddim), ("stream", stream)):
        record_property(f"{name}_success", res["success_rate"])
    record_property("stream_over_ddim", stream["success_rate"] / max(ddim["success_rate"], 1e-9))
    record_property("stream_nfe_per_step", stream["nfe_per_step"])
    assert still["success_rate"] == 0.0
    assert ddim["success_rate"] >= DDIM_MIN
    assert stream["success_rate"] >= STREAM_KEEPS * ddim["success_rate"] - SLACK
    assert later_nfe == pytest.approx(1.0)
