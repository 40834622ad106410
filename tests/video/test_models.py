"""Networks and methods: shapes, losses, DiffTAD's sampling loop (renewal, selective conditioning)."""

import pytest
import torch

from difflab.video.data.datamodule import collate_videos
from difflab.video.demo import small_models
from difflab.video.networks.detr_tad import DetrTADNet, roi_align_1d


def fake_batch(b=2, t=40, c=12, k=3):
    items = []
    for i in range(b):
        n = t - 5 * i
        items.append(
            {
                "feats": torch.randn(n, c),
                "segments": torch.tensor([[0.3, 0.2], [0.7, 0.1]]),
                "labels": torch.tensor([0, k - 1]),
                "video_id": f"v{i}",
                "meta": {
                    "duration": n * 4 / 30,
                    "fps": 30.0,
                    "length": n,
                    "offset": 0,
                    "feat_stride": 4.0,
                    "num_frames": 8.0,
                    "resize_to": None,
                    "gt": [],
                },
            }
        )
    return collate_videos(items)


def test_roi_align_samples_inside_the_proposal():
    stem = torch.arange(10.0).reshape(1, 10, 1)
    out = roi_align_1d(stem, torch.tensor([10]), torch.tensor([[[0.5, 0.4]]]), 4)
    assert torch.allclose(out.flatten(), torch.tensor([3.0, 4.0, 5.0, 6.0]))


@pytest.mark.parametrize("encoder", ["transformer", "pyramid"])
def test_network_shapes_and_padding_invariance(encoder):
    torch.manual_seed(0)
    net = DetrTADNet(12, 3, d_model=32, encoder=encoder).eval()
    batch = fake_batch()
    props = torch.rand(2, 7, 2) * 0.5 + 0.25
    out = net(batch["feats"], batch["mask"], props, torch.rand(2))
    assert out["logits"].shape == (3, 2, 7, 3) and out["segments"].shape == (3, 2, 7, 2)
    assert ((out["segments"] > 0) & (out["segments"] < 1)).all()
    if encoder == "transformer":  # extra padding does not change a video's output
        n = int(batch["lengths"][1])
        alone = net(batch["feats"][1:, :n], batch["mask"][1:, :n], props[1:], torch.rand(1) * 0 + 0.5)
        padded = net(batch["feats"][1:], batch["mask"][1:], props[1:], torch.rand(1) * 0 + 0.5)
        assert torch.allclose(alone["logits"], padded["logits"], atol=1e-4)


def test_difftad_loss_backward_and_sampling_paths():
    torch.manual_seed(0)
    diff, det = small_models(12, 3, ["a", "b", "c"], d_model=32)
    batch = fake_batch()
    g = torch.Generator().manual_seed(0)
    loss = diff.training_loss(batch, g)
    loss.backward()
    assert torch.isfinite(loss) and all(
        p.grad is not None for n, p in diff.named_parameters() if "query" not in n and p.requires_grad
    )
    x0 = diff.padded_x0(batch, torch.Generator().manual_seed(1))
    assert x0.shape == (2, 30, 2) and torch.allclose(x0[0, :2], (2 * batch["gt_segments"][0] - 1) * 2.0)
    for steps, sel in [(1, False), (3, False), (3, True)]:
        raw = diff.raw_detections(batch, torch.Generator().manual_seed(0), steps=steps, selective_conditioning=sel)
        assert len(raw) == 2 and raw[0][0].shape == (30 * steps, 2) and raw[0][1].shape == (30 * steps, 3)
    a = diff.detect(batch, torch.Generator().manual_seed(5), steps=2)
    b = diff.detect(batch, torch.Generator().manual_seed(5), steps=2)
    assert a == b  # reproducible from the generator
    assert all(d["segment"][0] >= 0 and d["segment"][1] <= 40 * 4 / 30 + 1e-6 for d in a["v0"])
    dl = det.training_loss(batch)
    dl.backward()
    assert torch.isfinite(dl) and len(det.detect(batch)["v1"]) > 0


@pytest.mark.parametrize(("sampler", "calls_per_step"), [("dpm_solver", 1), ("euler", 1), ("heun", 2)])
def test_difftad_samples_with_any_core_sampler(sampler, calls_per_step):
    """Another core sampler moves the proposals over the same grid; the detections of every network call
    (each sampler step's, then the final decode) are ensembled."""
    torch.manual_seed(0)
    diff, _ = small_models(12, 3, ["a", "b", "c"], d_model=32)
    steps = 3
    raw = diff.raw_detections(fake_batch(), torch.Generator().manual_seed(0), steps=steps, sampler=sampler)
    calls = raw[0][0].shape[0] // 30
    assert calls == (steps - 1) * calls_per_step + 1
    assert torch.isfinite(raw[0][0]).all() and raw[0][1].shape == (30 * calls, 3)


def test_selective_conditioning_keeps_settled_proposals_noise_free(monkeypatch):
    """With every proposal agreeing with its previous estimate and scoring high, the next state is a_s x0_hat."""
    torch.manual_seed(0)
    diff, _ = small_models(12, 3, ["a", "b", "c"], d_model=32)
    fixed = torch.tensor([0.4, 0.2]).expand(2, 30, 2)

    def decode(enc, proposals, t=None):
        return {"segments": fixed[None].clone(), "logits": torch.full((1, 2, 30, 3), 5.0)}

    monkeypatch.setattr(diff.network, "decode", decode)
    seen = []
    real = diff.proposals_from_x
    monkeypatch.setattr(diff, "proposals_from_x", lambda x: seen.append(x.clone()) or real(x))
    diff.raw_detections(fake_batch(), torch.Generator().manual_seed(0), steps=4, selective_conditioning=True)
    grid = torch.linspace(1.0, 0.0, 5, dtype=torch.float64)
    a2 = diff.process.coefficients(grid[2:3])[0].float()
    x0 = (2 * fixed - 1) * 2.0
    assert torch.allclose(seen[2], a2 * x0, atol=1e-5)  # step 2 starts from the settled, noise-free state
