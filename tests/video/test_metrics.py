"""Detection mAP on hand-computed cases, segment operations, NMS and the Hungarian set loss."""

import numpy as np
import pytest
import torch

from difflab.video.matching import hungarian_match, set_loss, sigmoid_focal_loss
from difflab.video.metrics import ANET_TIOUS, THUMOS_TIOUS, detection_map, interpolated_ap, results_json
from difflab.video.segments import (
    batched_nms_1d,
    cw_to_se,
    nms_1d,
    pairwise_giou,
    pairwise_tiou,
    se_to_cw,
    soft_nms_1d,
)


def gt(*items):
    out = {}
    for vid, label, s, e in items:
        out.setdefault(vid, []).append({"label": label, "segment": [s, e]})
    return out


def pred(*items):
    out = {}
    for vid, label, score, s, e in items:
        out.setdefault(vid, []).append({"label": label, "score": score, "segment": [s, e]})
    return out


def test_thresholds():
    assert np.allclose(THUMOS_TIOUS, [0.3, 0.4, 0.5, 0.6, 0.7])
    assert len(ANET_TIOUS) == 10 and ANET_TIOUS[0] == 0.5 and ANET_TIOUS[-1] == 0.95


def test_perfect_detection_is_one():
    g = gt(("v", "a", 0, 10), ("v", "b", 20, 30))
    p = pred(("v", "a", 0.9, 0, 10), ("v", "b", 0.8, 20, 30))
    res = detection_map(g, p, ANET_TIOUS)
    assert np.allclose(res["mAP"], 1.0) and res["average_mAP"] == pytest.approx(1.0)


def test_hand_computed_duplicate_and_interpolation():
    # p1 TP, p2 overlaps the already matched GT -> FP, p3 TP: precision 1, 1/2, 2/3; recall 1/2, 1/2, 1
    # all-point interpolation: 0.5 * 1 + 0.5 * 2/3 = 5/6
    g = gt(("v", "a", 0, 10), ("v", "a", 20, 30))
    p = pred(("v", "a", 0.9, 0, 10), ("v", "a", 0.8, 1, 11), ("v", "a", 0.7, 20, 30))
    res = detection_map(g, p, [0.5, 0.9])
    assert np.allclose(res["mAP"], [5 / 6, 5 / 6])


def test_threshold_is_inclusive_and_fp_in_video_without_gt():
    g = gt(("v", "a", 0, 10))
    p = pred(("v", "a", 0.9, 0, 5))  # tIoU exactly 0.5
    res = detection_map(g, p, [0.5, 0.55])
    assert np.allclose(res["mAP"], [1.0, 0.0])
    # a higher-scored FP in another video: precision 0 then 1/2 at recall 1 -> AP 1/2
    p2 = pred(("w", "a", 0.95, 0, 10), ("v", "a", 0.9, 0, 10))
    assert detection_map(g | {"w": []}, p2, [0.5])["mAP"][0] == pytest.approx(0.5)


def test_classes_without_gt_are_ignored_and_missing_predictions_score_zero():
    g = gt(("v", "a", 0, 10), ("v", "b", 20, 30))
    p = pred(("v", "a", 0.9, 0, 10), ("v", "zzz", 0.99, 0, 10))
    res = detection_map(g, p, [0.5])
    assert res["classes"] == ["a", "b"]
    assert res["ap"][:, 0].tolist() == [1.0, 0.0] and res["mAP"][0] == pytest.approx(0.5)


def test_interpolated_ap_closed_form():
    assert interpolated_ap(np.array([1.0, 0.5, 2 / 3]), np.array([0.5, 0.5, 1.0])) == pytest.approx(5 / 6)
    assert interpolated_ap(np.array([0.0, 0.5]), np.array([0.0, 1.0])) == pytest.approx(0.5)


def test_results_json_layout():
    out = results_json({"v": []})
    assert set(out) == {"version", "results", "external_data"}


def test_segment_conversions_and_ious():
    se = torch.tensor([[0.0, 10.0], [5.0, 15.0], [20.0, 30.0]])
    assert torch.allclose(cw_to_se(se_to_cw(se)), se)
    iou = pairwise_tiou(se, se)
    assert iou[0, 1] == pytest.approx(5 / 15) and iou[0, 2] == 0 and torch.allclose(iou.diagonal(), torch.ones(3))
    giou = pairwise_giou(se, se)
    assert giou[0, 2] == pytest.approx(0 - (30 - 20) / 30)  # hull 30, union 20
    assert giou[0, 1] == pytest.approx(5 / 15)  # hull equals union


def test_nms_and_soft_nms():
    seg = torch.tensor([[0.0, 10.0], [1.0, 10.0], [20.0, 30.0], [0.0, 4.0]])
    sc = torch.tensor([0.9, 0.8, 0.7, 0.6])
    assert nms_1d(seg, sc, 0.5).tolist() == [0, 2, 3]  # 1 overlaps 0 at 0.9
    keep, new = soft_nms_1d(seg, sc, sigma=0.5)
    assert keep.tolist()[:2] == [0, 2]
    # segment 1 is decayed by segment 0 (tIoU 0.9), then by segment 3 (tIoU 0.3)
    expected = 0.8 * np.exp(-(0.9**2) / 0.5) * np.exp(-(0.3**2) / 0.5)
    assert new[keep.tolist().index(1)] == pytest.approx(expected, rel=1e-5)
    s, scores, labels = batched_nms_1d(seg, sc, torch.tensor([0, 1, 0, 0]), kind="nms", iou_threshold=0.5)
    assert len(s) == 4  # different classes never suppress each other
    assert torch.all(scores[:-1] >= scores[1:])


def test_hungarian_matching_finds_the_obvious_assignment():
    gt_seg = torch.tensor([[0.2, 0.1], [0.7, 0.2]])
    gt_lab = torch.tensor([1, 0])
    seg = torch.tensor([[0.7, 0.2], [0.5, 0.5], [0.2, 0.1]])
    logits = torch.full((3, 2), -4.0)
    logits[0, 0] = 4.0
    logits[2, 1] = 4.0
    q, g = hungarian_match(logits, seg, gt_seg, gt_lab)
    assert dict(zip(q.tolist(), g.tolist())) == {0: 1, 2: 0}


def test_set_loss_is_small_for_perfect_predictions():
    gt_seg = torch.tensor([[[0.2, 0.1], [0.7, 0.2]]])
    gt_lab = torch.tensor([[1, 0]])
    valid = torch.tensor([[True, True]])
    seg = torch.tensor([[[0.7, 0.2], [0.5, 0.5], [0.2, 0.1]]])[None]
    good = torch.full((1, 1, 3, 2), -8.0)
    good[0, 0, 0, 0] = 8.0
    good[0, 0, 2, 1] = 8.0
    bad = -good
    lg, lb = set_loss(good, seg, gt_seg, gt_lab, valid), set_loss(bad, seg, gt_seg, gt_lab, valid)
    assert lg["l1"] == pytest.approx(0, abs=1e-6) and lg["giou"] == pytest.approx(0, abs=1e-6)
    assert lg["loss"] < 1e-3 < lb["loss"]


def test_focal_loss_reduces_to_weighted_bce_for_gamma_zero():
    x = torch.randn(10)
    y = (torch.rand(10) > 0.5).float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(x, y, reduction="none")
    assert torch.allclose(sigmoid_focal_loss(x, y, alpha=-1, gamma=0.0), bce)
