r"""The offline default data: real motion-capture clips composed into untrimmed action videos.

Source: the DeepMimic humanoid clips shipped in ``pybullet_data/data/motions/humanoid3d_*.txt``
(``pip install pybullet``). Each file is JSON ``{"Loop": "wrap"|"none", "Frames": [[dt, ...43]]}``
with, per frame, the frame duration ``dt``, the root position (x, y, z; y up), the root orientation
quaternion (w, x, y, z) and the joint rotations in the order

=========  =====  ==========================================
slice      size   joint
=========  =====  ==========================================
8:12       4      chest (quaternion w, x, y, z)
12:16      4      neck
16:20      4      right hip
20         1      right knee (angle, rad)
21:25      4      right ankle
25:29      4      right shoulder
29         1      right elbow
30:34      4      left hip
34         1      left knee
35:39      4      left ankle
39:43      4      left shoulder
43         1      left elbow
=========  =====  ==========================================

Composition (:func:`compose_sequence`). A video is a 30 Hz pose stream: background motion (walking,
or standing with a small sway) between action instances. An instance is one clip of an action class,
played at a random speed in [0.8, 1.25], repeated 1 to 3 times when the clip loops; its root path is
translated so that it starts where the previous piece ended, and consecutive pieces are cross-faded
over a few frames. The labelled segment ``[start, end]`` (seconds) is the exact span of the inserted
action frames (the middle of each cross-fade).

Features (:func:`pose_features`, per 30 Hz frame, heading-invariant): the world up-axis in the root
frame (3), root height (1), horizontal speed (1), vertical velocity (1), yaw rate (1), the 8 joint
quaternions with ``w >= 0`` (32) and 4 joint angles, and the frame-to-frame change of the 36 joint
values; then, as in ActionFormer's clip features, feature ``i`` summarises frames
``[i * stride, i * stride + num_frames)`` by their mean and standard deviation (``2 x 79`` values).

Rendering (:func:`render_features`, ``make-dataset --render``): the pose stream drives pybullet's
``humanoid/humanoid.urdf`` in DIRECT mode, frames are rendered headlessly by the TinyRenderer with a
camera following the root, and frame features are the down-sampled grey image and its temporal
difference, pooled per clip window like the pose features.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FPS = 30.0
ACTIONS = (
    "backflip",
    "cartwheel",
    "crawl",
    "dance_a",
    "dance_b",
    "getup_facedown",
    "getup_faceup",
    "jump",
    "kick",
    "punch",
    "roll",
    "run",
    "spin",
    "spinkick",
)
BACKGROUND = ("walk", "idle")
QUAT_SLICES = [(4, 8), (8, 12), (12, 16), (16, 20), (21, 25), (25, 29), (30, 34), (35, 39), (39, 43)]
ANGLE_INDEX = [20, 29, 34, 43]
INSTALL = "pip install pybullet"


def motions_dir() -> Path:
    """Folder of the DeepMimic clips in pybullet_data; a missing install names the command."""
    try:
        import pybullet_data
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(f"the default video data needs pybullet_data: {INSTALL}") from err
    folder = Path(pybullet_data.getDataPath()) / "data" / "motions"
    if not folder.is_dir():  # pragma: no cover
        raise FileNotFoundError(f"{folder} is missing from this pybullet install; reinstall with: {INSTALL}")
    return folder


@dataclass
class Clip:
    """One mocap clip resampled to :data:`FPS`: ``poses`` (N, 43) without the ``dt`` column."""

    name: str
    poses: np.ndarray
    loops: bool


def _normalise_quats(p: np.ndarray) -> np.ndarray:
    for a, b in QUAT_SLICES:
        q = p[..., a:b]
        p[..., a:b] = q / np.linalg.norm(q, axis=-1, keepdims=True).clip(1e-8)
    return p


def _align_signs(p: np.ndarray) -> np.ndarray:
    """Flip quaternion signs along time so consecutive frames lie in the same hemisphere."""
    for a, b in QUAT_SLICES:
        q = p[:, a:b]
        for i in range(1, len(q)):
            if np.dot(q[i], q[i - 1]) < 0:
                q[i] = -q[i]
    return p


def resample(poses: np.ndarray, times: np.ndarray, new_times: np.ndarray) -> np.ndarray:
    """Linear interpolation of every pose value at ``new_times`` (quaternions renormalised)."""
    out = np.stack([np.interp(new_times, times, poses[:, j]) for j in range(poses.shape[1])], axis=1)
    return _normalise_quats(out)


def load_clip(name: str, folder: Path | None = None) -> Clip:
    """Read ``humanoid3d_<name>.txt`` and resample it to 30 Hz."""
    path = (folder or motions_dir()) / f"humanoid3d_{name}.txt"
    data = json.loads(path.read_text())
    frames = np.asarray(data["Frames"], dtype=np.float64)
    if frames.ndim != 2 or frames.shape[1] != 44:
        raise ValueError(f"{path}: expected frames of 44 values, got shape {frames.shape}")
    times = np.concatenate([[0.0], np.cumsum(frames[:-1, 0])])
    poses = _align_signs(frames[:, 1:].copy())
    n = max(2, int(round(times[-1] * FPS)) + 1)
    return Clip(name, resample(poses, times, np.arange(n) / FPS), data.get("Loop") == "wrap")


def load_clips(names: tuple[str, ...] | list[str] = ACTIONS + ("walk",)) -> dict[str, Clip]:
    folder = motions_dir()
    return {n: load_clip(n, folder) for n in names}


def _play(clip: Clip, speed: float, repeats: int) -> np.ndarray:
    """The clip's poses at ``speed`` times real time, repeated (root path continued across loops)."""
    base = clip.poses
    pieces = []
    offset = np.zeros(3)
    for _ in range(repeats):
        part = base.copy()
        part[:, 0] += offset[0]
        part[:, 2] += offset[2]
        pieces.append(part)
        step = base[-1, :3] - base[0, :3]
        offset = offset + np.array([step[0], 0.0, step[2]])
    poses = np.concatenate(pieces)
    n_out = max(2, int(round(len(poses) / speed)))
    return resample(poses, np.arange(len(poses), dtype=np.float64), np.linspace(0, len(poses) - 1, n_out))


def _idle(template: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Standing still with a slow sway: the first walking pose with small smooth perturbations."""
    poses = np.repeat(template[None], n, axis=0)
    t = np.arange(n) / FPS
    for j in range(7, 43):
        amp, freq, ph = rng.uniform(0.0, 0.03), rng.uniform(0.1, 0.5), rng.uniform(0, 2 * math.pi)
        poses[:, j] += amp * np.sin(2 * math.pi * freq * t + ph)
    return _normalise_quats(poses)


def _attach(sequence: list[np.ndarray], piece: np.ndarray, fade: int) -> np.ndarray:
    """``piece`` translated to start where the sequence ends, its first ``fade`` frames blended in."""
    piece = piece.copy()
    if not sequence:
        return piece
    last = sequence[-1][-1]
    piece[:, 0] += last[0] - piece[0, 0]
    piece[:, 2] += last[2] - piece[0, 2]
    k = min(fade, len(piece))
    if k > 0:
        w = (np.arange(1, k + 1) / (k + 1))[:, None]
        blend = (1 - w) * last[None] + w * piece[:k]
        for a, b in QUAT_SLICES:  # keep hemispheres consistent before blending
            flip = np.sum(last[a:b] * piece[:k, a:b], axis=-1) < 0
            blend[flip, a:b] = (1 - w[flip]) * last[a:b] - w[flip] * piece[:k][flip, a:b]
        piece[:k] = _normalise_quats(blend)
    return piece


def compose_sequence(
    clips: dict[str, Clip],
    classes: tuple[str, ...] | list[str],
    rng: np.random.Generator,
    *,
    num_actions: tuple[int, int] = (2, 4),
    gap_s: tuple[float, float] = (1.0, 4.0),
    fade: int = 4,
) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """One untrimmed pose stream ``(N, 43)`` at 30 Hz and its segments ``[(start_s, end_s, label)]``."""
    walk = clips["walk"]
    sequence: list[np.ndarray] = []
    segments: list[tuple[float, float, str]] = []
    n_frames = 0

    def background() -> None:
        nonlocal n_frames
        n = int(round(rng.uniform(*gap_s) * FPS))
        if rng.random() < 0.5:
            reps = int(math.ceil(n / len(walk.poses))) + 1
            piece = _play(walk, rng.uniform(0.8, 1.2), reps)[:n]
        else:
            piece = _idle(walk.poses[0], n, rng)
        sequence.append(_attach(sequence, piece, fade))
        n_frames += len(piece)

    background()
    for _ in range(int(rng.integers(num_actions[0], num_actions[1] + 1))):
        label = str(classes[int(rng.integers(len(classes)))])
        clip = clips[label]
        repeats = int(rng.integers(1, 4)) if clip.loops and len(clip.poses) < 60 else 1
        piece = _play(clip, rng.uniform(0.8, 1.25), repeats)
        sequence.append(_attach(sequence, piece, fade))
        segments.append((n_frames / FPS, (n_frames + len(piece)) / FPS, label))
        n_frames += len(piece)
        background()
    return np.concatenate(sequence), segments


def _heading_frame(quat: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(N, 3, 3)`` of unit quaternions ``(N, 4)`` in (w, x, y, z) order."""
    w, x, y, z = quat[:, 0], quat[:, 1], quat[:, 2], quat[:, 3]
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=1,
    )


def frame_features(poses: np.ndarray) -> np.ndarray:
    """Heading-invariant per-frame pose features ``(N, 79)`` (see the module docstring)."""
    rot = _heading_frame(poses[:, 3:7])
    up_local = rot[:, 1, :]  # world y axis in root coordinates: R^T e_y
    vel = np.gradient(poses[:, 0:3], axis=0) * FPS
    speed = np.linalg.norm(vel[:, [0, 2]], axis=1, keepdims=True)
    fwd = rot[:, :, 2]  # root z axis in world coordinates
    yaw = np.unwrap(np.arctan2(fwd[:, 0], fwd[:, 2]))
    yaw_rate = np.gradient(yaw) * FPS / 10.0
    joints = poses[:, 7:].copy()
    for a, b in QUAT_SLICES[1:]:
        q = joints[:, a - 7 : b - 7]
        q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    dj = np.gradient(poses[:, 7:], axis=0) * FPS / 10.0
    return np.concatenate(
        [up_local, poses[:, 1:2], speed / 3.0, vel[:, 1:2] / 3.0, yaw_rate[:, None], joints, dj], axis=1
    ).astype(np.float32)


def pool_windows(frames: np.ndarray, stride: int, num_frames: int) -> np.ndarray:
    """Clip features: mean and std of frames ``[i*stride, i*stride+num_frames)`` -> ``(T, 2C)``."""
    n = frames.shape[0]
    count = max(1, (n - num_frames) // stride + 1)
    out = np.empty((count, 2 * frames.shape[1]), dtype=np.float32)
    for i in range(count):
        w = frames[i * stride : i * stride + num_frames]
        out[i, : frames.shape[1]] = w.mean(0)
        out[i, frames.shape[1] :] = w.std(0)
    return out


def pose_features(
    poses: np.ndarray, stride: int, num_frames: int, rng: np.random.Generator | None = None, noise: float = 0.02
) -> np.ndarray:
    """Clip features ``(T, 158)`` of a pose stream, with optional per-frame sensor noise."""
    f = frame_features(poses)
    if rng is not None and noise > 0:
        f = f + noise * rng.standard_normal(f.shape).astype(np.float32)
    return pool_windows(f, stride, num_frames)


# -------------------------------------------------------------------------------- rendering
def _pybullet_joint_map(p, body) -> dict[str, int]:
    return {p.getJointInfo(body, j)[1].decode(): j for j in range(p.getNumJoints(body))}


def render_frames(poses: np.ndarray, size: int = 48) -> np.ndarray:
    """Render the pose stream with pybullet (DIRECT, TinyRenderer): grey frames ``(N, size, size)``."""
    try:
        import pybullet as p
        import pybullet_data
    except ImportError as err:  # pragma: no cover
        raise ImportError(f"rendering needs pybullet: {INSTALL}") from err
    client = p.connect(p.DIRECT)
    try:
        urdf = str(Path(pybullet_data.getDataPath()) / "humanoid" / "humanoid.urdf")
        body = p.loadURDF(urdf, [0, 0.9, 0], globalScaling=0.25, useFixedBase=False, physicsClientId=client)
        plane = p.loadURDF(
            str(Path(pybullet_data.getDataPath()) / "plane.urdf"),
            [0, 0, 0],
            p.getQuaternionFromEuler([-math.pi / 2, 0, 0]),
            physicsClientId=client,
        )
        del plane
        jmap = _pybullet_joint_map(p, body)
        spherical = [
            "chest",
            "neck",
            "right_hip",
            "right_ankle",
            "right_shoulder",
            "left_hip",
            "left_ankle",
            "left_shoulder",
        ]
        revolute = ["right_knee", "right_elbow", "left_knee", "left_elbow"]
        q_slices = QUAT_SLICES[1:]
        proj = p.computeProjectionMatrixFOV(60, 1.0, 0.1, 20, physicsClientId=client)
        frames = np.empty((len(poses), size, size), dtype=np.float32)
        for i, pose in enumerate(poses):
            root = pose[0:3]
            w, x, y, z = pose[3:7]
            p.resetBasePositionAndOrientation(body, root.tolist(), [x, y, z, w], physicsClientId=client)
            for name, (a, b) in zip(spherical, q_slices):
                if name in jmap:
                    qw, qx, qy, qz = pose[a - 1 : b - 1]
                    p.resetJointStateMultiDof(body, jmap[name], [qx, qy, qz, qw], physicsClientId=client)
            for name, k in zip(revolute, ANGLE_INDEX):
                if name in jmap:
                    p.resetJointStateMultiDof(body, jmap[name], [pose[k - 1]], physicsClientId=client)
            eye = [root[0] + 1.3, 1.0, root[2] + 1.3]
            view = p.computeViewMatrix(eye, [root[0], root[1] * 0.8, root[2]], [0, 1, 0], physicsClientId=client)
            _, _, rgb, _, _ = p.getCameraImage(
                size, size, view, proj, renderer=p.ER_TINY_RENDERER, physicsClientId=client
            )
            rgb = np.asarray(rgb, dtype=np.float32).reshape(size, size, 4)[..., :3]
            frames[i] = rgb.mean(-1) / 255.0
        return frames
    finally:
        p.disconnect(client)


def render_features(poses: np.ndarray, stride: int, num_frames: int, size: int = 48, cells: int = 12) -> np.ndarray:
    """Clip features ``(T, 2 * 2 * cells^2)`` from rendered frames: pooled grey image and its change."""
    frames = render_frames(poses, size)
    k = size // cells
    small = frames[:, : k * cells, : k * cells].reshape(len(frames), cells, k, cells, k).mean((2, 4))
    flat = small.reshape(len(frames), -1)
    diff = np.abs(np.gradient(flat, axis=0)) * 10.0
    return pool_windows(np.concatenate([flat, diff], axis=1).astype(np.float32), stride, num_frames)


# -------------------------------------------------------------------------------- dataset writer
def make_dataset(
    out_dir: str | Path,
    *,
    n_train: int = 160,
    n_val: int = 32,
    n_test: int = 32,
    classes: tuple[str, ...] | list[str] = ACTIONS,
    feat_stride: int = 4,
    num_frames: int = 8,
    num_actions: tuple[int, int] = (2, 4),
    render: bool = False,
    seed: int = 0,
) -> Path:
    """Write the ActionFormer layout: ``out_dir/annotations.json`` and ``out_dir/features/<vid>.npy``.

    Subsets: ``training``, ``validation`` and ``testing`` (the ActivityNet names). Returns the JSON path.
    """
    unknown = sorted(set(classes) - set(ACTIONS))
    if unknown:
        from difflab.core.errors import UserError

        raise UserError(f"actions {unknown}: unknown action classes; available: {list(ACTIONS)}")
    out = Path(out_dir)
    (out / "features").mkdir(parents=True, exist_ok=True)
    clips = load_clips(tuple(classes) + ("walk",))
    rng = np.random.default_rng(seed)
    database = {}
    for subset, n in (("training", n_train), ("validation", n_val), ("testing", n_test)):
        for i in range(n):
            vid = f"mocap_{subset[:4]}_{i:04d}"
            poses, segs = compose_sequence(clips, classes, rng, num_actions=num_actions)
            if render:
                feats = render_features(poses, feat_stride, num_frames)
            else:
                feats = pose_features(poses, feat_stride, num_frames, rng)
            np.save(out / "features" / f"{vid}.npy", feats)
            database[vid] = {
                "subset": subset,
                "duration": round(len(poses) / FPS, 6),
                "fps": FPS,
                "feature_frames": len(poses),
                "annotations": [
                    {"label": lab, "label_id": list(classes).index(lab), "segment": [round(s, 6), round(e, 6)]}
                    for s, e, lab in segs
                ],
            }
    meta = {
        "source": "pybullet_data DeepMimic humanoid3d clips composed into untrimmed sequences",
        "feat_stride": feat_stride,
        "num_frames": num_frames,
        "fps": FPS,
        "features": "rendered" if render else "pose",
        "classes": list(classes),
        "seed": seed,
    }
    path = out / "annotations.json"
    path.write_text(json.dumps({"version": "difflab-mocap-1", "meta": meta, "database": database}, indent=1))
    return path


__all__ = [
    "ACTIONS",
    "BACKGROUND",
    "FPS",
    "Clip",
    "compose_sequence",
    "frame_features",
    "load_clip",
    "load_clips",
    "make_dataset",
    "motions_dir",
    "pool_windows",
    "pose_features",
    "render_features",
    "render_frames",
]
