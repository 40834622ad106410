"""The core samplers across domains: each domain's main metric at NFE 5, 10 and 20 per sampler.

Every domain samples through core's registry (``DiffusionModule.sample(..., sampler=, steps=)``), so
one briefly trained model per domain can be sampled by every sampler that fits its process. For
each domain this script trains (or loads from ``--cache``) the demo's small model, then scores it on
the same held-out examples with the same seed for each sampler at the step counts whose NFE is
nearest to 5, 10 and 20 (a sampler with two evaluations per step, such as Heun, gets fewer steps;
the NFE actually used, ``SampleResult.nfe``, is printed in every cell):

=============  =====================================  ===================================================
domain         model (demo's brief CPU training)      metric on held-out examples
=============  =====================================  ===================================================
audio          SGMSE+ (OUVE, x0_residual, EMA)        SI-SDR (dB) on real speech + held-out noise
vision         SR3 (DiscreteVP cosine, T = 1000)      PSNR-Y gain over bicubic (dB), x2
timeseries     DSPD-GP (GP-correlated DDPM, T = 50)   CRPS (mean weighted quantile loss), taylor test
pointcloud     PointDDPM (linear DDPM, T = 1000)      MMD-CD (x 1e3) against held-out shapes
robotics       Diffusion Policy (cosine DDPM, T=100)  action-chunk MSE (normalised) on held-out demos
video          DiffTAD (proposal denoising)           mAP@0.5 on held-out videos
text           DiffuSeq (embedding diffusion)         BLEU on KJV restoration test verses
=============  =====================================  ===================================================

A cell is the metric, ``n/a`` when the sampler does not fit the domain's sampling (a footnote says
why), or ``error`` when it raised (the traceback is printed). Robotics scores predicted action
chunks against held-out demonstrations instead of environment rollouts (rollouts cost minutes per
cell on a shared CPU).

    python benchmarks/sampler_matrix.py                       # every domain, cached models
    python benchmarks/sampler_matrix.py --domains audio vision --quick
    python benchmarks/sampler_matrix.py --cache outputs/sampler_matrix --out table.md
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

NFE_TARGETS = (5, 10, 20)
SAMPLERS = (
    "ddim",
    "dpm_solver",
    "unipc",
    "deis",
    "euler",
    "heun",
    "euler_ancestral",
    "dpmpp_2m_sde",
    "lms",
    "pndm",
)


# ---------------------------------------------------------------------------------------------------- NFE
def nfe_for_steps(sampler: str, steps: int) -> int:
    """The NFE of ``sampler`` with ``steps`` steps, counted on a VP SDE with a zero network (the
    count depends on the sampler and the steps only: Heun's last step is one evaluation, PNDM's
    Runge-Kutta warm-up four per step, ...)."""
    from difflab.core.processes import VPSDE
    from difflab.core.samplers.base import Denoiser
    from difflab.core.samplers.select import run_sampler

    den = Denoiser(lambda x, t: torch.zeros_like(x), VPSDE(), "eps")
    x = torch.zeros(1, 2)
    return int(run_sampler(sampler, den, x, steps=steps, generator=torch.Generator().manual_seed(0)).nfe)


def steps_for_nfe(sampler: str, target: int) -> int:
    """The step count whose NFE is nearest ``target`` (the smaller one on a tie)."""
    best, best_gap = 1, math.inf
    for steps in range(1, target + 1):
        gap = abs(nfe_for_steps(sampler, steps) - target)
        if gap < best_gap:
            best, best_gap = steps, gap
    return best


@contextlib.contextmanager
def record_nfe(model):
    """Record the ``SampleResult.nfe`` of every ``model.sample`` call made inside the block.

    Yields a list that receives one NFE per call; the instance attribute shadowing the method is
    removed afterwards."""
    seen: list[int] = []
    inner = model.sample

    def sample(*args, **kwargs):
        result = inner(*args, **kwargs)
        seen.append(int(result.nfe))
        return result

    model.sample = sample
    try:
        yield seen
    finally:
        del model.sample


# ---------------------------------------------------------------------------------------------------- domains
@dataclass
class Settings:
    """``quick``: fewer held-out examples; ``seed``: training and sampling seed; ``scale``: factor on
    every domain's training steps (1 is the benchmark; the test uses a tiny one)."""

    quick: bool = False
    seed: int = 0
    scale: float = 1.0

    def steps(self, n: int) -> int:
        return max(2, int(n * self.scale))


@dataclass
class Domain:
    """One domain's benchmark: how to get its trained model and how to score one cell.

    ``prepare(cache, settings)`` returns a context dict (holding at least ``"model"``, a
    :class:`~difflab.core.lightning.DiffusionModule`); ``score(ctx, sampler, steps, seed)`` returns the
    metric of the held-out examples sampled with ``sampler`` at ``steps`` steps and the NFE used. ``not_applicable``
    maps a sampler to the reason it does not fit; ``only`` (if set) lists the only samplers that fit.
    """

    name: str
    model: str
    metric: str
    higher_is_better: bool
    prepare: Callable[[Path, Settings], dict[str, Any]]
    score: Callable[[dict[str, Any], str, int, int], tuple[float, int]]
    not_applicable: dict[str, str] = field(default_factory=dict)
    only: tuple[str, ...] | None = None
    only_reason: str = ""

    def reason(self, sampler: str) -> str | None:
        if self.only is not None and sampler not in self.only:
            return self.only_reason
        return self.not_applicable.get(sampler)


def save_module(model, path: Path) -> None:
    """Weights plus what the module's ``on_save_checkpoint`` adds (normalisers, data settings)."""
    ckpt: dict[str, Any] = {"state_dict": model.state_dict()}
    model.on_save_checkpoint(ckpt)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, path)


def load_module(model, path: Path) -> bool:
    """Load what :func:`save_module` wrote into ``model`` built the same way; False if no file."""
    if not path.is_file():
        return False
    ckpt = torch.load(path, weights_only=True, map_location="cpu")
    model.on_load_checkpoint(ckpt)
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return True


NETWORK_VARIANT: dict[str, Any] = {"wrap": None, "suffix": ""}
"""A network wrapper class put around every domain model's network before it is trained or loaded
(``wrap``, e.g. core's ``NoiseUnconditional``), with the cache-file suffix of that variant; set by
``benchmarks/accelerators.py --noise_unconditional``. ``None``: the models as they are."""


def variant_path(path: Path) -> Path:
    """``path`` of the current :data:`NETWORK_VARIANT`'s cache file."""
    return path.with_name(f"{path.stem}{NETWORK_VARIANT['suffix']}{path.suffix}")


def train_or_load(model, dm, path: Path, train: Callable[[], Any]) -> float:
    """Load ``model``'s cached weights, else train it (``train()``) and cache them; training seconds.
    Under a :data:`NETWORK_VARIANT` the network is wrapped first and the cache file is the variant's."""
    wrap = NETWORK_VARIANT["wrap"]
    if wrap is not None:
        if not isinstance(model.network, wrap):
            model.network = wrap(model.network)
        path = variant_path(path)
    if load_module(model, path):
        print(f"  loaded {path}", flush=True)
        return 0.0
    t0 = time.perf_counter()
    train()
    secs = time.perf_counter() - t0
    model.eval()
    save_module(model, path)
    print(f"  trained in {secs:.0f} s, cached {path}", flush=True)
    return secs


# --- audio: SGMSE+ on the offline default denoising data, SI-SDR on real recorded speech
AUDIO_STEPS = 800


def audio_prepare(cache: Path, st: Settings) -> dict[str, Any]:
    from difflab.audio.demo import TRAINING, build, method_args
    from difflab.core.lightning import train_briefly

    model, dm = build(
        "sgmse_denoise",
        seed=st.seed,
        lr=TRAINING["lr"],
        batch_size=TRAINING["batch_size"],
        extra=method_args("sgmse", cache),
    )
    steps = st.steps(AUDIO_STEPS)

    def train() -> None:
        ema = TRAINING["sgmse"]["ema"]
        train_briefly(model, dm, max_steps=steps, seed=st.seed, gradient_clip_val=1.0, ema_decay=ema)

    train_or_load(model, dm, cache / f"audio_sgmse_{steps}.pt", train)
    dm.setup("test")
    ds = dm.test_set or dm.val_set
    n = min(4 if st.quick else 8, len(ds))
    return {"model": model, "items": [ds[i] for i in range(n)]}


@torch.no_grad()
def audio_score(ctx: dict[str, Any], sampler: str, steps: int, seed: int) -> tuple[float, int]:
    from difflab.audio.metrics import si_sdr

    model, gen, vals = ctx["model"], torch.Generator().manual_seed(seed), []
    with record_nfe(model) as nfe:
        for item in ctx["items"]:
            out = model.enhance(item["noisy"], sampler=sampler, steps=steps, generator=gen)
            vals.append(float(si_sdr(out, item["clean"])))
    return sum(vals) / len(vals), max(nfe)


# --- vision: SR3 (the learning test's recipe), PSNR-Y gain over bicubic on the held-out photographs
VISION_STEPS = 300


def vision_prepare(cache: Path, st: Settings) -> dict[str, Any]:
    from difflab.core.lightning import train_briefly
    from difflab.vision.data import SRDataModule
    from difflab.vision.evaluate import BRIEF_TRAINING, brief_schedule
    from difflab.vision.models import SR3
    from difflab.vision.networks import UNet

    steps = st.steps(VISION_STEPS)
    torch.manual_seed(st.seed)
    dm = SRDataModule(
        scale=2,
        patch_size=32,
        batch_size=16,
        eval_size=64 if st.quick else 96,
        eval_batch_size=4,
        samples_per_epoch=16 * steps,
    )
    model = SR3(UNet.from_preset("small"), scale=2, schedule="cosine", num_train_steps=1000, **brief_schedule(steps))

    def train() -> None:
        train_briefly(model, dm, max_steps=steps, seed=st.seed, ema_decay=BRIEF_TRAINING["ema_decay"])

    train_or_load(model, dm, cache / f"vision_sr3_{steps}.pt", train)
    return {"model": model, "data": dm}


def vision_score(ctx: dict[str, Any], sampler: str, steps: int, seed: int) -> tuple[float, int]:
    from difflab.vision.evaluate import evaluate_heldout

    model = ctx["model"]
    with record_nfe(model) as nfe:
        res = evaluate_heldout(
            lambda y, g: model.super_resolve(y, steps=steps, sampler=sampler, generator=g).sample,
            ctx["data"],
            2,
            seed=seed,
        )
    return res["sr"]["psnr_y"] - res["bicubic"]["psnr_y"], max(nfe)


# --- timeseries: the demo's DSPD-GP on taylor electricity demand, CRPS on the test windows
TIMESERIES_STEPS = 600


def timeseries_prepare(cache: Path, st: Settings) -> dict[str, Any]:
    from difflab.timeseries.data import ForecastDataModule
    from difflab.timeseries.demo import CONTEXT, HORIZON, build, train

    steps = st.steps(TIMESERIES_STEPS)
    dm = ForecastDataModule("taylor", context_length=CONTEXT, prediction_length=HORIZON, batch_size=32, seed=st.seed)
    dm.setup()
    model = build("spd_gp", st.seed)
    train_or_load(model, dm, cache / f"timeseries_spd_gp_{steps}.pt", lambda: train(model, dm, steps, st.seed))
    return {"model": model, "test": dm.test_set, "samples": 16 if st.quick else 32}


def timeseries_score(ctx: dict[str, Any], sampler: str, steps: int, seed: int) -> tuple[float, int]:
    from difflab.timeseries.evaluate import model_samples, score

    model = ctx["model"]
    with record_nfe(model) as nfe:
        paths = model_samples(model, ctx["test"], num_samples=ctx["samples"], seed=seed, sampler=sampler, steps=steps)
    return score(paths, ctx["test"])["crps"], max(nfe)


# --- pointcloud: the demo's PointDDPM baseline (256 points), MMD-CD against the held-out shapes
POINTCLOUD_STEPS = 300


def pointcloud_prepare(cache: Path, st: Settings) -> dict[str, Any]:
    import functools

    from difflab.core.lightning import train_briefly
    from difflab.pointcloud.data import ShapeDataModule
    from difflab.pointcloud.demo import GEN_POINTS
    from difflab.pointcloud.models import PointDDPM
    from difflab.pointcloud.networks import PointSetDenoiser

    steps = st.steps(POINTCLOUD_STEPS)
    torch.manual_seed(st.seed)
    dm = ShapeDataModule(num_points=GEN_POINTS, num_shapes=32, num_val_shapes=16, batch_size=16, seed=st.seed)
    dm.setup()
    opt = functools.partial(torch.optim.Adam, lr=2e-3)
    model = PointDDPM(PointSetDenoiser("tiny"), num_steps=1000, sample_steps=100, optimizer=opt)
    path = cache / f"pointcloud_ddpm_{steps}.pt"
    train_or_load(model, dm, path, lambda: train_briefly(model, dm, max_steps=steps, seed=st.seed))
    return {"model": model, "ref": dm.val_set.clouds, "num": 8 if st.quick else 16, "points": GEN_POINTS}


def pointcloud_score(ctx: dict[str, Any], sampler: str, steps: int, seed: int) -> tuple[float, int]:
    from difflab.pointcloud.metrics import generation_metrics

    gen = torch.Generator().manual_seed(seed)
    res = ctx["model"].generate(ctx["num"], ctx["points"], sampler=sampler, steps=steps, generator=gen)
    m = generation_metrics(res.sample, ctx["ref"], metrics=("cd",))
    return 1e3 * m["mmd_cd"], res.nfe


# --- robotics: the demo's Diffusion Policy on reach-v3, action-chunk MSE on held-out demonstrations
ROBOTICS_STEPS = 600


def robotics_prepare(cache: Path, st: Settings) -> dict[str, Any]:
    from difflab.robotics.data import DemoDataModule
    from difflab.robotics.demo import train_policies

    steps = st.steps(ROBOTICS_STEPS)
    path = cache / f"robotics_dp_{steps}.pt"
    episodes = 50 if st.scale >= 1 else 4
    cached = variant_path(path).is_file()
    wrap = NETWORK_VARIANT["wrap"]
    run = train_policies("reach-v3", episodes, 1 if cached else steps, bc=False, seed=st.seed, network_wrapper=wrap)
    model = run["dp"]
    if not cached:
        print(f"  diffusion policy trained {steps} steps in {run['seconds']['dp']:.0f} s", flush=True)
    train_or_load(model, run["data"], path, lambda: None)  # trained by train_policies unless cached
    held = DemoDataModule(env="reach-v3", episodes=2 if st.quick else 4, collect_seed=10_000, val_episodes=0)
    held.setup("fit")
    windows = held.train_set
    idx = torch.linspace(0, len(windows) - 1, 32 if st.quick else 64).long().unique().tolist()
    items = [windows[i] for i in idx]
    obs = torch.stack([torch.as_tensor(it["obs"]) for it in items]).float()
    act = torch.stack([torch.as_tensor(it["action"]) for it in items]).float()
    return {"model": model, "obs": obs, "action": model.action_normalizer.normalize(act)}


@torch.no_grad()
def robotics_score(ctx: dict[str, Any], sampler: str, steps: int, seed: int) -> tuple[float, int]:
    gen = torch.Generator().manual_seed(seed)
    res = ctx["model"].sample_chunk(ctx["obs"], sampler=sampler, steps=steps, generator=gen)
    return float(((res.sample - ctx["action"]) ** 2).mean()), res.nfe


# --- video: the demo's DiffTAD on the mocap default data, mAP@0.5 on the held-out videos
VIDEO_STEPS = 150


def video_prepare(cache: Path, st: Settings) -> dict[str, Any]:
    from difflab.video.data.datamodule import MocapTADDataModule
    from difflab.video.demo import fit, small_models

    steps = st.steps(VIDEO_STEPS)
    dm = MocapTADDataModule(
        root=str(cache / "video_data"), n_train=160, n_val=16, n_test=32, batch_size=8, seed=st.seed
    )
    dm.setup()
    torch.manual_seed(st.seed)
    model, _ = small_models(dm.input_dim, dm.num_classes, dm.classes)
    train_or_load(model, dm, cache / f"video_difftad_{steps}.pt", lambda: fit(model, dm, steps, st.seed))
    return {"model": model, "data": dm}


def video_score(ctx: dict[str, Any], sampler: str, steps: int, seed: int) -> tuple[float, int]:
    from difflab.video.demo import evaluate

    model, calls = ctx["model"], []
    decode = model.network.decode
    model.network.decode = lambda *a, **k: calls.append(1) or decode(*a, **k)
    try:
        options = dict(steps=steps, selective_conditioning=False, sampler=sampler)
        _, maps, *_ = evaluate(model, ctx["data"], seed=seed, **options)
    finally:
        del model.network.decode
    batches = math.ceil(len(ctx["data"].test_set) / ctx["data"].batch_size)
    return maps["mAP@0.5"], len(calls) // batches


# --- text: the demo's DiffuSeq on KJV case and punctuation restoration, BLEU of one draw per source
TEXT_STEPS = 1600


def text_prepare(cache: Path, st: Settings) -> dict[str, Any]:
    from difflab.text.data.seq2seq import Seq2SeqDataModule
    from difflab.text.demo import _fit, brief_diffuseq

    steps = st.steps(TEXT_STEPS)
    n = 100 if st.quick else 200
    dm = Seq2SeqDataModule(
        vocab_size=1024, src_len=32, trg_len=32, batch_size=64, val_size=200, test_size=n, seed=st.seed
    )
    dm.setup()
    model = brief_diffuseq(steps, seed=st.seed)
    model.attach_tokenizer(dm.tokenizer)
    train_or_load(model, dm, cache / f"text_diffuseq_{steps}.pt", lambda: _fit(model, dm, steps, st.seed))
    _, trg = dm.references("test")
    return {"model": model, "src": dm.test_set.src, "mask": dm.test_set.src_mask, "trg": trg}


def text_score(ctx: dict[str, Any], sampler: str, steps: int, seed: int) -> tuple[float, int]:
    from difflab.text.metrics import corpus_bleu

    model, gen = ctx["model"], torch.Generator().manual_seed(seed)
    with record_nfe(model) as nfe:
        hyp = model.translate_texts(ctx["src"], ctx["mask"], sampler=sampler, steps=steps, generator=gen)
    return corpus_bleu(hyp, ctx["trg"]), max(nfe)


# ---------------------------------------------------------------------------------------------------- registry
DOMAINS: dict[str, Domain] = {
    "audio": Domain("audio", "SGMSE+ (OUVE SDE)", "SI-SDR dB", True, audio_prepare, audio_score),
    "vision": Domain("vision", "SR3 x2 (cosine DDPM)", "PSNR-Y gain dB", True, vision_prepare, vision_score),
    "timeseries": Domain("timeseries", "DSPD-GP (GP-noise DDPM)", "CRPS", False, timeseries_prepare, timeseries_score),
    "pointcloud": Domain("pointcloud", "PointDDPM", "MMD-CD x1e3", False, pointcloud_prepare, pointcloud_score),
    "robotics": Domain(
        "robotics", "Diffusion Policy (reach-v3)", "action MSE", False, robotics_prepare, robotics_score
    ),
    "video": Domain(
        "video",
        "DiffTAD",
        "mAP@0.5",
        True,
        video_prepare,
        video_score,
    ),
    "text": Domain(
        "text",
        "DiffuSeq (continuous embeddings)",
        "BLEU",
        True,
        text_prepare,
        text_score,
        not_applicable={"paradigms": "DiffuSeq's self-conditioning evaluates one state per source"},
    ),
}
NOTE_TEXT_DISCRETE = (
    "text's discrete masked model (MDLM / GIDD) has its own samplers (masked, gidd) on token processes; "
    "the continuous samplers are measured on DiffuSeq instead"
)


# ---------------------------------------------------------------------------------------------------- running
@dataclass
class Cell:
    value: float | None = None
    nfe: int | None = None
    status: str = "ok"  # ok, n/a, error
    note: str = ""

    def text(self, fmt: str = ".3g") -> str:
        if self.status != "ok":
            return self.status
        return f"{self.value:{fmt}} ({self.nfe})"


def default_sampler(ctx: dict[str, Any]) -> str:
    """The domain model's own sampler (``ctx["default"]`` for results read back from the cache)."""
    return str(ctx["default"]) if "default" in ctx else str(ctx["model"].sampler_name)


def save_results(path: Path, ctx: dict[str, Any], table: dict[str, dict[int, Cell]]) -> None:
    """Write a domain's evaluated cells as JSON (``--from_results`` rebuilds the tables from it)."""
    cells = {s: {str(t): dataclasses.asdict(c) for t, c in row.items()} for s, row in table.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"default": default_sampler(ctx), "cells": cells}, indent=1))


def load_results(path: Path) -> tuple[dict[str, Any], dict[str, dict[int, Cell]]]:
    data = json.loads(path.read_text())
    table = {s: {int(t): Cell(**c) for t, c in row.items()} for s, row in data["cells"].items()}
    return {"default": data["default"]}, table


def evaluate_domain(
    domain: Domain,
    ctx: dict[str, Any],
    samplers: tuple[str, ...] = SAMPLERS,
    targets: tuple[int, ...] = NFE_TARGETS,
    seed: int = 0,
) -> dict[str, dict[int, Cell]]:
    """``{sampler: {target NFE: Cell}}`` for ``samplers`` plus the model's default sampler, every cell
    sampled from the same seed on the same held-out examples; one progress line per cell."""
    rows = list(samplers)
    own = default_sampler(ctx)
    if own not in rows:
        rows.append(own)
    table: dict[str, dict[int, Cell]] = {}
    for sampler in rows:
        table[sampler] = {}
        for target in targets:
            reason = domain.reason(sampler)
            if reason:
                table[sampler][target] = Cell(status="n/a", note=reason)
                continue
            steps = steps_for_nfe(sampler, target)
            t0 = time.perf_counter()
            try:
                torch.manual_seed(seed)
                value, nfe = domain.score(ctx, sampler, steps, seed)
                cell = Cell(float(value), int(nfe))
                if not math.isfinite(cell.value):
                    cell.status, cell.note = "error", f"non-finite metric {value}"
            except Exception as err:  # a sampler failing in a domain is a finding: print it, keep going
                cell = Cell(status="error", note=f"{type(err).__name__}: {err}")
                traceback.print_exc()
            secs = time.perf_counter() - t0
            print(
                f"  {domain.name:10s} {sampler:16s} NFE~{target:<3d} steps {steps:<3d} -> {cell.text()} ({secs:.1f} s)",
                flush=True,
            )
            table[sampler][target] = cell
    return table


# ---------------------------------------------------------------------------------------------------- tables
def _label(sampler: str, ctx: dict[str, Any]) -> str:
    return f"{sampler} (default)" if sampler == default_sampler(ctx) else sampler


def domain_table(domain: Domain, ctx: dict[str, Any], table: dict[str, dict[int, Cell]]) -> str:
    """Markdown: one row per sampler, one column per NFE target; each cell ``metric (NFE used)``."""
    from difflab.core.tables import markdown_table

    targets = sorted({t for row in table.values() for t in row})
    better = "higher" if domain.higher_is_better else "lower"
    rows = [[_label(s, ctx), *(row[t].text() for t in targets)] for s, row in table.items()]
    head = f"**{domain.name}**: {domain.model}, {domain.metric} ({better} is better); cell = metric (NFE used)\n\n"
    return head + markdown_table(rows, ["sampler", *(f"NFE {t}" for t in targets)])


def combined_table(results: dict[str, tuple[Domain, dict[str, Any], dict[str, dict[int, Cell]]]]) -> str:
    """Markdown: one row per sampler, one column per domain, each cell ``NFE5 / NFE10 / NFE20`` values,
    then the footnotes of the ``n/a`` and ``error`` cells."""
    from difflab.core.tables import markdown_table

    samplers: list[str] = []
    for _, _, table in results.values():
        samplers += [s for s in table if s not in samplers]
    notes: list[str] = []

    def cell_text(name: str, sampler: str, table: dict[str, dict[int, Cell]]) -> str:
        row = table.get(sampler)
        if row is None:
            return "-"
        parts = []
        for cell in row.values():
            text = cell.text(".3g").split(" (")[0]
            if cell.status != "ok":
                note = f"{name}, {sampler}: {cell.note}" if cell.status == "error" else f"{name}: {cell.note}"
                if note not in notes:
                    notes.append(note)
                text += f"[{notes.index(note) + 1}]"
            parts.append(text)
        if len(set(parts)) == 1 and row and next(iter(row.values())).status == "n/a":
            return parts[0]
        return " / ".join(parts)

    heads = ["sampler"]
    for name, (domain, _ctx, _) in results.items():
        arrow = "↑" if domain.higher_is_better else "↓"
        heads.append(f"{name}: {domain.metric} {arrow}")
    rows = []
    for s in samplers:
        rows.append([s, *(cell_text(n, s, t) for n, (_, _, t) in results.items())])
    defaults = ", ".join(f"{n} {default_sampler(c)}" for n, (_, c, _) in results.items())
    text = markdown_table(rows, heads)
    targets = " / ".join(str(t) for t in sorted({t for *_, tb in results.values() for r in tb.values() for t in r}))
    text += f"\n\nCells: NFE {targets} (nearest step counts). Domain defaults: {defaults}.\n"
    text += "".join(f"\n[{i + 1}] {n}" for i, n in enumerate(notes))
    return text


# ---------------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--domains", nargs="+", choices=list(DOMAINS), default=list(DOMAINS))
    p.add_argument("--samplers", nargs="+", default=list(SAMPLERS), help="samplers besides each domain's default")
    p.add_argument("--nfe", nargs="+", type=int, default=list(NFE_TARGETS), help="target NFE per column")
    p.add_argument("--quick", action="store_true", help="fewer held-out examples per cell")
    p.add_argument("--cache", type=Path, default=Path("outputs/sampler_matrix"), help="trained-model cache")
    p.add_argument("--train_scale", type=float, default=1.0, help="factor on every domain's training steps")
    p.add_argument("--out", type=Path, default=None, help="also write the tables to this markdown file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--from_results",
        action="store_true",
        help="only print the tables of the domains' saved results (<cache>/results_<domain>.json)",
    )
    return p.parse_args(argv)


def run_domain(name: str, ns: argparse.Namespace, st: Settings):
    """Prepare and evaluate one domain (or read its saved results): ``(domain, ctx, table)`` or None."""
    domain = DOMAINS[name]
    saved = ns.cache / f"results_{name}.json"
    if ns.from_results:
        if not saved.is_file():
            print(f"  {name} left out: no saved results {saved}", flush=True)
            return None
        return (domain, *load_results(saved))
    print(f"== {name}: {domain.model}, {domain.metric}", flush=True)
    t0 = time.perf_counter()
    try:
        ctx = domain.prepare(ns.cache, st)
    except Exception as err:  # a domain whose data or model cannot be built is left out, with the reason
        traceback.print_exc()
        print(f"  {name} left out: {type(err).__name__}: {err}", flush=True)
        return None
    print(f"  model ready in {time.perf_counter() - t0:.0f} s", flush=True)
    t0 = time.perf_counter()
    table = evaluate_domain(domain, ctx, tuple(ns.samplers), tuple(ns.nfe), ns.seed)
    print(f"  {name} evaluated in {time.perf_counter() - t0:.0f} s\n", flush=True)
    save_results(saved, ctx, table)
    print(domain_table(domain, ctx, table) + "\n", flush=True)
    return domain, ctx, table


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(argv)
    torch.set_num_threads(1)
    from difflab.core.samplers.select import SAMPLER_NAMES

    unknown = [s for s in ns.samplers if s not in SAMPLER_NAMES]
    if unknown:
        print(f"sampler_matrix: error: --samplers: unknown {unknown}; expected names from {SAMPLER_NAMES}")
        return 2
    st = Settings(quick=ns.quick, seed=ns.seed, scale=ns.train_scale)
    results: dict[str, tuple[Domain, dict[str, Any], dict[str, dict[int, Cell]]]] = {}
    for name in ns.domains:
        got = run_domain(name, ns, st)
        if got is not None:
            results[name] = got
    if not results:
        return 1
    out = "\n\n".join(domain_table(d, c, t) for d, c, t in results.values())
    combined = combined_table(results)
    if "text" in results:
        combined += f"\n\nNote: {NOTE_TEXT_DISCRETE}."
    print("== all domains\n\n" + combined)
    if ns.out is not None:
        ns.out.parent.mkdir(parents=True, exist_ok=True)
        ns.out.write_text(out + "\n\n" + combined + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
