r"""Negative log-likelihood of held-out clouds under a DDPM point generator, through its probability-flow ODE.

A cloud ``x`` ``(N, 3)`` (normalised as the training data: unit sphere, times the data's ``scale``)
is carried by the PF-ODE of :class:`~difflab.pointcloud.models.PointDDPM` from its smallest trained
time ``t_0 = 1 / T`` to ``t = 1`` (:meth:`difflab.core.lightning.DiffusionModule.log_likelihood`, RK4,
Hutchinson's divergence estimate: ``3N`` dimensions are too many for the exact trace), and

.. math:: \mathrm{NLL} = -\log p_{t_0}(x), \qquad \text{per point} = \mathrm{NLL} / N,
          \qquad \text{bits/dim} = \mathrm{NLL} / (3 N \log 2).

Units: nats of a density over the ``3N`` coordinates of the cloud as an ordered array (the network
is permutation-equivariant, so every order has the same density; the set's density adds
``-log N!``). PointFlow's per-point NLL is another quantity (the density of one point given a shape
latent), so the numbers are comparable between difflab models, not to PointFlow's tables. Lower is
better; it is negative when the density is concentrated (clouds on a surface of a unit sphere).

Cost: ``4 * steps`` network evaluations, each with one backward pass per Hutchinson probe, per batch
of clouds.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from difflab.core.errors import UserError
from difflab.core.progress import StepProgress, artifact, note


def cloud_log_likelihood(
    model,
    clouds: Tensor,
    *,
    labels: Tensor | None = None,
    steps: int = 32,
    probes: int = 1,
    batch: int = 8,
    generator: torch.Generator | None = None,
    progress: StepProgress | None = None,
) -> Tensor:
    """``log p(x)`` in nats per cloud, ``(S,)``, of clouds ``(S, N, 3)`` under a generator's PF-ODE,
    ``batch`` clouds at a time (``labels`` ``(S,)`` for a class-conditional network)."""
    out = []
    for lo in range(0, len(clouds), batch):
        part = {"x0": clouds[lo : lo + batch].to(model.device, model.dtype)}
        if labels is not None:
            part["label"] = labels[lo : lo + batch].to(model.device)
        out.append(
            model.log_likelihood(
                part, steps=steps, divergence="hutchinson", probes=probes, generator=generator, callback=progress
            ).cpu()
        )
    return torch.cat(out)


def read_clouds(source: Path, points: int, scale: float, seed: int = 0) -> tuple[list[Path], Tensor]:
    """The point files of ``source`` (a file or a folder), each resampled to ``points`` points,
    normalised to the unit sphere and multiplied by ``scale`` (as the training data), ``(S, points, 3)``."""
    from difflab.core.verbs import folder_inputs
    from difflab.pointcloud.io import CLOUD_FORMATS, normalize_unit_sphere, read_points, resample

    if source.is_dir():
        files = folder_inputs(source, CLOUD_FORMATS, "point files")
    else:
        if source.suffix.lower() not in CLOUD_FORMATS:
            raise UserError(f"{source}: not a point file ({', '.join(CLOUD_FORMATS)})")
        files = [source]
    clouds = []
    for i, f in enumerate(files):
        pts = resample(read_points(f), points, rng=np.random.default_rng([seed, i]), source=str(f))
        clouds.append(normalize_unit_sphere(pts)[0] * scale)
    return files, torch.as_tensor(np.stack(clouds), dtype=torch.float32)


def nll_files(
    source: Path,
    ckpt: str | Path,
    *,
    points: int = 2048,
    steps: int = 32,
    probes: int = 1,
    batch: int = 8,
    scale: float = 1.0,
    label: int | None = None,
    seed: int = 0,
    out: Path | None = None,
    overwrite: bool = False,
) -> int:
    """The ``nll`` verb: print the NLL of every cloud of ``source`` (nats per point and per cloud,
    bits per dimension) and their mean; ``out``: the same table as CSV."""
    from difflab.core.verbs import check_output
    from difflab.pointcloud.inference import check_label, load_model
    from difflab.pointcloud.models import PointCloudDiffusion, PointDDPM

    if out is not None:
        check_output(out, overwrite)
    files, clouds = read_clouds(Path(source), points, scale, seed)
    model = load_model(ckpt, PointCloudDiffusion)
    if not isinstance(model, PointDDPM):
        raise UserError(
            f"{ckpt}: a {type(model).__name__} checkpoint; nll needs a PointDDPM (a diffusion whose "
            "probability-flow ODE is the model's density)"
        )
    check_label(model, label)
    labels = None if label is None else torch.full((len(clouds),), label, dtype=torch.long)
    g = torch.Generator(device=model.device).manual_seed(seed)
    bar = StepProgress(f"nll of {len(clouds)} clouds", steps * -(-len(clouds) // batch), unit="RK4 steps")
    log_p = cloud_log_likelihood(
        model, clouds, labels=labels, steps=steps, probes=probes, batch=batch, generator=g, progress=bar
    )
    bar.close()
    nll = (-log_p).double()
    rows = [(f.name, float(v) / points, float(v), float(v) / (3 * points * math.log(2))) for f, v in zip(files, nll)]
    for name, per_point, per_cloud, bpd in rows:
        note(f"{name}: NLL {per_point:.4f} nats/point, {per_cloud:.2f} nats/cloud, {bpd:.4f} bits/dim")
    mean = nll.mean().item()
    note(
        f"mean NLL over {len(rows)} clouds of {points} points: {mean / points:.4f} nats/point, "
        f"{mean / (3 * points * math.log(2)):.4f} bits/dim ({steps} RK4 steps, {probes} Hutchinson probe(s), "
        f"scale {scale:g})"
    )
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["cloud", "nll_nats_per_point", "nll_nats_per_cloud", "bits_per_dim"])
            w.writerows(rows)
        artifact(out, "NLL per cloud (CSV)")
    return 0


__all__ = ["cloud_log_likelihood", "nll_files", "read_clouds"]
