"""Replay buffer (zarr layout), edge-padded windows, min-max normaliser, expert collection, bad input."""

import numpy as np
import pytest
import torch

from difflab.robotics.data import DemoDataError, MinMaxNormalizer, ReplayBuffer, SequenceWindows, window_indices


def _buffer(lengths=(5, 7), do=3, da=2, seed=0):
    rng = np.random.default_rng(seed)
    eps = [{"obs": rng.normal(size=(n, do)), "action": rng.normal(size=(n, da))} for n in lengths]
    return ReplayBuffer.from_episodes(eps)


def test_zarr_round_trip_in_reference_layout(tmp_path):
    import zarr

    buf = _buffer()
    buf.meta["episode_seeds"] = np.array([3, 4])
    path = buf.save(tmp_path / "demo.zarr")
    root = zarr.open_group(str(path), mode="r")
    assert root["data/obs"].shape == (12, 3) and root["data/action"].shape == (12, 2)
    assert root["meta/episode_ends"][...].tolist() == [5, 12]
    assert (path / "data" / "obs" / ".zarray").is_file()  # zarr format 2, as the reference reads
    back = ReplayBuffer.load(path)
    np.testing.assert_array_equal(back.obs, buf.obs)
    np.testing.assert_array_equal(back.action, buf.action)
    assert back.meta["episode_seeds"].tolist() == [3, 4]
    np.testing.assert_array_equal(back.episode(1)["obs"], buf.obs[5:12])


def test_mismatched_lengths_name_the_episode():
    with pytest.raises(DemoDataError, match=r"episode 1: field 'obs' has 4 steps but 'action' has 3"):
        ReplayBuffer.from_episodes(
            [
                {"obs": np.zeros((2, 3)), "action": np.zeros((2, 2))},
                {"obs": np.zeros((4, 3)), "action": np.zeros((3, 2))},
            ]
        )
    buf = _buffer()
    buf.episode_ends = np.array([5, 11])
    with pytest.raises(DemoDataError, match="episode 1 has a mismatched length"):
        buf.validate()
    buf.episode_ends = np.array([5, 5, 12])
    with pytest.raises(DemoDataError, match="episode 1 is empty"):
        buf.validate()


def test_nan_action_names_episode_and_field(tmp_path):
    buf = _buffer()
    buf.action[8, 1] = np.nan
    with pytest.raises(
        DemoDataError, match=r"episode 1, field 'data/action': non-finite value nan at step 3 \(dimension 1\)"
    ):
        buf.validate()
    # the same check runs when a file written by someone else is read
    import zarr

    root = zarr.open_group(str(tmp_path / "bad.zarr"), mode="w", zarr_format=2)
    root.create_array("data/obs", data=buf.obs)
    root.create_array("data/action", data=buf.action)
    root.create_array("meta/episode_ends", data=buf.episode_ends)
    with pytest.raises(DemoDataError, match="bad.zarr: episode 1, field 'data/action'"):
        ReplayBuffer.load(tmp_path / "bad.zarr")
    root2 = zarr.open_group(str(tmp_path / "nometa.zarr"), mode="w", zarr_format=2)
    root2.create_array("data/obs", data=buf.obs)
    with pytest.raises(DemoDataError, match="missing field 'data/action'"):
        ReplayBuffer.load(tmp_path / "nometa.zarr")


def test_windows_match_reference_padding():
    # reference sequence sampler: starts from -pad_before to L - horizon + pad_after, edge-padded
    idx = window_indices(np.array([5, 12]), horizon=4, pad_before=1, pad_after=2)
    assert len(idx) == (5 - 4 + 1 + 2 + 1) + (7 - 4 + 1 + 2 + 1)
    buf = _buffer()
    ds = SequenceWindows(buf, horizon=4, n_obs_steps=2, n_action_steps=3)
    assert len(ds) == len(idx)
    first = ds[0]
    np.testing.assert_allclose(first["obs"].numpy(), buf.obs[[0, 0]])  # o_0 repeated
    np.testing.assert_allclose(first["action"].numpy(), buf.action[[0, 0, 1, 2]])
    last = ds[len(ds) - 1]  # last window of episode 1 (rows 5..11): start 11 - 4 + 2 + 1 - 5 = ... edge padded
    np.testing.assert_allclose(last["action"].numpy(), buf.action[[10, 11, 11, 11]])
    # windows never cross an episode boundary
    last0 = ds[(5 - 4 + 1 + 2 + 1) - 1]
    np.testing.assert_allclose(last0["action"].numpy(), buf.action[[3, 4, 4, 4]])
    with pytest.raises(ValueError, match="n_action_steps"):
        SequenceWindows(buf, horizon=4, n_obs_steps=2, n_action_steps=4)


def test_minmax_normalizer_matches_reference_formula():
    rng = np.random.default_rng(1)
    x = rng.uniform(-3, 5, size=(200, 3))
    x[:, 2] = 0.7  # constant dimension: only centred
    norm = MinMaxNormalizer(3).fit(x)
    lo, hi = x.min(0), x.max(0)
    scale = 2 / (hi[:2] - lo[:2])
    offset = -1 - scale * lo[:2]
    xn = norm.normalize(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(xn[:, :2], x[:, :2] * scale + offset, rtol=1e-12)
    assert xn[:, :2].min() == pytest.approx(-1) and xn[:, :2].max() == pytest.approx(1)
    np.testing.assert_allclose(xn[:, 2], 0.0, atol=1e-12)
    np.testing.assert_allclose(norm.unnormalize(torch.from_numpy(xn)).numpy(), x, rtol=1e-12)
    assert norm.wide_dims().tolist() == [True, True, False]


def test_collect_expert_demos_records_seeds(tmp_path):
    from difflab.robotics.data.collect import collect_demos

    buf = collect_demos("reach-v3", 2, seed=7, action_noise=0.1)
    assert buf.n_episodes == 2 and buf.obs_dim == 39 and buf.action_dim == 4
    assert buf.meta["episode_seeds"].tolist() == [7, 8]
    assert buf.extras["success"][buf.episode_ends[0] - 1]  # episodes end after success
    assert np.abs(buf.action).max() <= 1.0
    assert buf.attrs["env"] == "reach-v3" and buf.attrs["action_noise"] == 0.1
    again = collect_demos("reach-v3", 2, seed=7, action_noise=0.1)
    np.testing.assert_array_equal(again.action, buf.action)  # reproducible from the recorded seeds
    ReplayBuffer.load(buf.save(tmp_path / "r.zarr"))
