r"""ActivityNet-protocol temporal detection mAP (the evaluator behind ActivityNet and THUMOS14 numbers).

For each class, over all videos:

1. predictions of the class are sorted by descending score; ties are ordered as the official
   ``eval_detection.py`` orders them (``np.argsort(scores)[::-1]`` over the predictions in file order),
   so that the two give the same numbers also when scores tie;
2. for each tIoU threshold, each prediction is matched greedily to the not yet matched ground-truth
   segment of its video and class with the highest tIoU; below the threshold, or when the video has
   no ground truth of that class, it is a false positive;
3. precision ``TP_cum / (TP_cum + FP_cum)`` and recall ``TP_cum / n_gt``;
4. all-point interpolated AP: ``sum_k (r_k - r_{k-1}) * max_{k' >= k} p_{k'}`` with ``r_0 = 0``.

mAP is the mean over the classes that have ground truth; predictions of other classes are ignored.
Thresholds: THUMOS14 ``0.3:0.1:0.7``, ActivityNet ``0.5:0.05:0.95``. Results JSON format:
``{"version", "results": {video_id: [{"label", "score", "segment": [s, e]}]}, "external_data"}``.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

THUMOS_TIOUS = np.round(np.arange(0.3, 0.71, 0.1), 2)
ANET_TIOUS = np.round(np.arange(0.5, 0.951, 0.05), 2)


def segment_tiou(segment: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """tIoU of one ``(2,)`` segment with ``(N, 2)`` candidates."""
    inter = (np.minimum(segment[1], candidates[:, 1]) - np.maximum(segment[0], candidates[:, 0])).clip(0)
    union = (candidates[:, 1] - candidates[:, 0]) + (segment[1] - segment[0]) - inter
    return inter / np.maximum(union, 1e-12)


def interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """All-point interpolated average precision (VOC 2010+ / ActivityNet)."""
    mprec = np.concatenate([[0.0], precision, [0.0]])
    mrec = np.concatenate([[0.0], recall, [1.0]])
    for i in range(len(mprec) - 2, -1, -1):
        mprec[i] = max(mprec[i], mprec[i + 1])
    idx = np.where(mrec[1:] != mrec[:-1])[0] + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx]))


def class_ap(gt: dict[str, np.ndarray], preds: list[tuple[str, float, np.ndarray]], tious: np.ndarray) -> np.ndarray:
    """AP of one class at each threshold: ``gt`` {video: (n, 2)}, ``preds`` [(video, score, (2,))]."""
    npos = sum(len(v) for v in gt.values())
    ap = np.zeros(len(tious))
    if npos == 0 or not preds:
        return ap
    order = np.asarray([p[1] for p in preds]).argsort()[::-1]  # the official evaluator's tie order
    tp = np.zeros((len(tious), len(preds)))
    fp = np.zeros((len(tious), len(preds)))
    locked = {v: np.zeros((len(tious), len(s)), dtype=bool) for v, s in gt.items()}
    for rank, i in enumerate(order):
        vid, _, seg = preds[i]
        g = gt.get(vid)
        if g is None or len(g) == 0:
            fp[:, rank] = 1
            continue
        iou = segment_tiou(np.asarray(seg, dtype=np.float64), g)
        by_iou = iou.argsort()[::-1]
        for k, thr in enumerate(tious):
            for j in by_iou:
                if iou[j] < thr:
                    fp[k, rank] = 1
                    break
                if locked[vid][k, j]:
                    continue
                tp[k, rank] = 1
                locked[vid][k, j] = True
                break
            if tp[k, rank] == 0 and fp[k, rank] == 0:
                fp[k, rank] = 1
    tp_c, fp_c = np.cumsum(tp, axis=1), np.cumsum(fp, axis=1)
    recall = tp_c / npos
    precision = tp_c / (tp_c + fp_c)
    for k in range(len(tious)):
        ap[k] = interpolated_ap(precision[k], recall[k])
    return ap


def detection_map(
    ground_truth: dict[str, list[dict]],
    predictions: dict[str, list[dict]],
    tious: np.ndarray | list[float] = THUMOS_TIOUS,
) -> dict[str, object]:
    """Detection mAP (ActivityNet protocol).

    Args:
        ground_truth: ``{video_id: [{"label", "segment": [s, e]}]}``.
        predictions: ``{video_id: [{"label", "score", "segment": [s, e]}]}`` (the ``results`` field).
        tious: thresholds.

    Returns:
        ``{"mAP": (K,) per threshold, "average_mAP": float, "ap": (classes, K), "classes": [...],
        "tious": (K,)}``.
    """
    tious = np.asarray(tious, dtype=np.float64)
    gt_by_class: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for vid, anns in ground_truth.items():
        for a in anns:
            gt_by_class[a["label"]][vid].append(a["segment"])
    classes = sorted(gt_by_class)
    pred_by_class: dict[str, list] = defaultdict(list)
    for vid, dets in predictions.items():
        for d in dets:
            pred_by_class[d["label"]].append((vid, float(d["score"]), np.asarray(d["segment"], dtype=np.float64)))
    ap = np.zeros((len(classes), len(tious)))
    for c, label in enumerate(classes):
        gt = {v: np.asarray(s, dtype=np.float64).reshape(-1, 2) for v, s in gt_by_class[label].items()}
        ap[c] = class_ap(gt, pred_by_class.get(label, []), tious)
    m = ap.mean(0) if len(classes) else np.zeros(len(tious))
    return {"mAP": m, "average_mAP": float(m.mean()), "ap": ap, "classes": classes, "tious": tious}


def results_json(predictions: dict[str, list[dict]], version: str = "VERSION 1.3") -> dict:
    """The ActivityNet results file content for ``predictions``."""
    return {"version": version, "results": predictions, "external_data": {"used": False, "details": ""}}


__all__ = [
    "ANET_TIOUS",
    "THUMOS_TIOUS",
    "class_ap",
    "detection_map",
    "interpolated_ap",
    "results_json",
    "segment_tiou",
]
