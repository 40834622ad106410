"""What every package's command line promises, checked the same way for all of them.

* every shipped config (``<pkg>/src/difflab/<pkg>/configs/*.yaml``) runs ``fit --trainer.fast_dev_run``
  (the full-size configs with shrunk data and networks: only the wiring is under test);
* every ``smoke_*`` config trains to a checkpoint that core's one loader
  (:func:`difflab.core.lightning.load_checkpoint`) reads back as the config's class, weights unchanged;
* the package's main verb runs on a smoke checkpoint, and every verb that reads a checkpoint answers
  a missing file, random bytes or another package's checkpoint with one line on stderr and exit
  status 2;
* ``difflab-<pkg>`` with no arguments lists every verb, ``--help`` exits 0;
* a method class that takes a ``sampler`` accepts exactly the names of one of core's sampler registries.

The per-package ``RECIPES`` hold what differs: the base class of its methods, the arguments that
shrink a config, and how to call its verb. Package-specific behaviour stays in ``tests/<pkg>/``.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from difflab.core.cli import builtin_configs, config_dir

pytestmark = pytest.mark.usefixtures("one_thread")

QUIET = ["--trainer.accelerator=cpu", "--trainer.enable_progress_bar=false"]


# ---------------------------------------------------------------------------------------------------- recipes
def _audio_args(name: str, ctx: Context) -> list[str]:
    shrink = [
        "--data.init_args.batch_size=2",
        "--data.init_args.crop_samples=8064",
        "--data.init_args.limit_eval_files=1",
        "--data.init_args.num_workers=0",
        "--model.init_args.network.init_args.channels=8",
        "--model.init_args.network.init_args.channel_mults=[1, 2]",
        "--model.init_args.network.init_args.num_res_blocks=1",
        "--model.init_args.network.init_args.attention_resolutions=[]",
        "--model.init_args.sample_steps=2",
    ]
    args = [] if name.startswith("smoke") else list(shrink)
    if "storm" in name and not name.startswith("smoke"):
        args += [s.replace(".network.", ".predictor.") for s in shrink if ".network." in s]
    if name.endswith("vbdmd"):
        args.append(f"--data.init_args.root={ctx.audio_data() / 'denoise'}")
    return args


def _vision_args(name: str, ctx: Context) -> list[str]:
    args = []
    if not name.startswith("smoke"):
        args += [
            "--data.init_args.patch_size=32",
            "--data.init_args.batch_size=2",
            "--data.init_args.eval_batch_size=2",
            "--data.init_args.eval_size=32",
            "--data.init_args.num_workers=0",
            "--model.init_args.num_val_samples=1",
            "--model.init_args.network.init_args.channels=8",
            "--model.init_args.network.init_args.channel_mults=[1, 2]",
            "--model.init_args.network.init_args.num_res_blocks=1",
            "--model.init_args.network.init_args.attention_levels=[]",
        ]
    if name.startswith("invsr"):
        args.append(f"--model.init_args.teacher_ckpt={ctx.checkpoint('vision', 'smoke_sr3')}")
    if name.endswith("div2k"):
        for split, n in (("train", 2), ("valid", 1)):
            for i in range(n):
                _png(Path("DIV2K") / f"DIV2K_{split}_HR" / f"{i:04d}.png", (64, 64, 3), i)
                _png(Path("DIV2K") / f"DIV2K_{split}_LR_bicubic" / "X4" / f"{i:04d}x4.png", (16, 16, 3), 9 + i)
        args += ["--data.init_args.eval_size=null", "--data.init_args.eval_batch_size=1"]
    return args


def _text_args(name: str, ctx: Context) -> list[str]:
    seq2seq = _config_class_name("text", name, "data") == "Seq2SeqDataModule"
    args = ["--data.init_args.batch_size=4", "--trainer.max_steps=2"]
    args.append("--data.init_args.max_train_pairs=600" if seq2seq else "--data.init_args.max_documents=600")
    if not name.startswith("smoke") and seq2seq:
        args += ["--model.init_args.enc_depth=1", "--model.init_args.dec_depth=1", "--model.init_args.dim=32"]
        args += ["--model.init_args.sample_steps=2", "--model.init_args.num_val_samples=2"]
    elif not name.startswith("smoke"):
        args += ["--model.init_args.depth=1", "--model.init_args.dim=32"]
    return args


def _video_args(name: str, ctx: Context) -> list[str]:
    if "thumos" in name:
        _fake_thumos(Path.cwd())
        return ["--model.init_args.network.init_args.num_classes=2", "--model.init_args.network.init_args.d_model=32"]
    if not name.startswith("smoke"):
        return ["--data.init_args.n_train=8", "--data.init_args.n_val=4", "--data.init_args.n_test=4"]
    return []


def _pointcloud_args(name: str, ctx: Context) -> list[str]:
    if "reflow" in name or "distill" in name:
        flow = ctx.checkpoint("pointcloud", "smoke_psf")
        pairs = ctx.pointcloud_pairs(flow)
        return [
            f"--data.init_args.pairs={pairs}",
            "--data.init_args.batch_size=2",
            f"--model.init_args.init_from={flow}",
            "--model.init_args.network.init_args.preset=tiny",
        ]
    if name.startswith("smoke"):
        return []
    if "psf" in name or "ddpm" in name:
        return [
            "--model.init_args.network.init_args.preset=tiny",
            "--data.init_args.num_points=64",
            "--data.init_args.num_shapes=4",
            "--data.init_args.num_val_shapes=2",
            "--data.init_args.batch_size=2",
        ]
    return [
        "--data.init_args.num_points=1024",
        "--data.init_args.patches_per_epoch=4",
        "--data.init_args.val_patches=2",
        "--data.init_args.batch_size=2",
        "--data.init_args.meshes=[elephant]",
        "--data.init_args.val_meshes=[hand]",
    ]


def _timeseries_args(name: str, ctx: Context) -> list[str]:
    if name.startswith("smoke"):
        return []
    return [
        "--model.init_args.val_samples=2",
        "--model.init_args.sample_steps=2",
        "--data.init_args.max_eval_windows=2",
    ]


def _robotics_args(name: str, ctx: Context) -> list[str]:
    if name.startswith("smoke"):
        return []
    return ["--data.init_args.episodes=2", "--data.init_args.val_episodes=1", "--data.init_args.batch_size=4"]


@dataclass
class Recipe:
    """What differs between packages: ``bases`` of the methods, the arguments that shrink a config
    (``args(name, ctx)``, run in the fit's folder), the main verb on a smoke checkpoint
    (``verb(ckpt, model, folder) -> (argv, expected output)``), and an argv per checkpoint verb."""

    bases: tuple[str, ...]
    args: Callable[[str, Context], list[str]]
    verb_config: str
    verb: Callable[[Path, object, Path], tuple[list[str], Path]]
    checkpoint_verbs: dict[str, Callable[[Path], list[str]]] = field(default_factory=dict)
    imports: tuple[str, ...] = ()


def _wav(folder: Path) -> Path:
    import soundfile as sf

    path = folder / "noisy.wav"
    sf.write(path, np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32), 16000)
    return path


def _png(path: Path, shape, seed) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.random.default_rng(seed).random(shape) * 255).astype(np.uint8)).save(path)
    return path


def _npy(folder: Path, channels: int) -> Path:
    path = folder / "video_0.npy"
    np.save(path, np.random.default_rng(0).standard_normal((40, channels)).astype(np.float32))
    return path


def _csv(folder: Path) -> Path:
    from difflab.timeseries.data import load_builtin

    path = folder / "series.csv"
    load_builtin("taylor").to_frame().iloc[:500].to_csv(path)
    return path


def _jsonl(folder: Path) -> Path:
    path = folder / "in.jsonl"
    path.write_text('{"src": "in the beginning"}\n')
    return path


def _txt(folder: Path) -> Path:
    path = folder / "held_out.txt"
    path.write_text("in the beginning was the word\nand the word was short\n")
    return path


def _xyz(folder: Path) -> Path:
    path = folder / "noisy.xyz"
    np.savetxt(path, np.random.default_rng(0).normal(size=(300, 3)))
    return path


def _audio_verb(ck: Path, model, d: Path) -> tuple[list[str], Path]:
    return ["enhance", str(_wav(d)), str(d / "clean.wav"), "--ckpt", str(ck), "--steps", "2"], d / "clean.wav"


def _vision_verb(ck: Path, model, d: Path) -> tuple[list[str], Path]:
    lr = _png(d / "lr.png", (12, 12, 3), 0)
    tiles = ["--tile", "8", "--overlap", "2", "--device", "cpu"]
    argv = ["upscale", str(lr), str(d / "hr.png"), "--ckpt", str(ck), "--scale", str(model.scale), "--steps", "2"]
    return [*argv, *tiles], d / "hr.png"


def _text_verb(ck: Path, model, d: Path) -> tuple[list[str], Path]:
    out = d / "samples.jsonl"
    return ["generate", "--ckpt", str(ck), "--num", "2", "--length", "16", "--steps", "4", "--out", str(out)], out


def _video_verb(ck: Path, model, d: Path) -> tuple[list[str], Path]:
    feats = _npy(d, model.network.input_dim)
    return ["detect", str(feats), "--ckpt", str(ck), "--steps", "2", "--out", str(d / "det.json")], d / "det.json"


def _pointcloud_verb(ck: Path, model, d: Path) -> tuple[list[str], Path]:
    argv = ["sample", "--ckpt", str(ck), "--num", "2", "--steps", "1", "--points", "64", str(d / "out")]
    return argv, d / "out" / "sample_001.ply"


def _timeseries_verb(ck: Path, model, d: Path) -> tuple[list[str], Path]:
    argv = ["forecast", str(_csv(d)), str(d / "fc"), "--ckpt", str(ck), "--horizon", "12", "--samples", "4"]
    return [*argv, "--steps", "2"], d / "fc" / "forecast.csv"


def _robotics_verb(ck: Path, model, d: Path) -> tuple[list[str], Path]:
    argv = ["eval", "--ckpt", str(ck), "--episodes", "1", "--max_steps", "5", "--steps", "2", "--out", str(d / "ev")]
    return argv, d / "ev" / "rollouts.png"


RECIPES: dict[str, Recipe] = {
    "audio": Recipe(
        bases=("difflab.audio.models.base.SpeechEnhancer",),
        args=_audio_args,
        verb_config="smoke_sgmse",
        verb=_audio_verb,
        checkpoint_verbs={"enhance": lambda d: ["enhance", str(_wav(d)), str(d / "out.wav")]},
        imports=("difflab.audio.models",),
    ),
    "vision": Recipe(
        bases=("difflab.vision.models.base.SRDiffusion",),
        args=_vision_args,
        verb_config="smoke_resshift",
        verb=_vision_verb,
        checkpoint_verbs={"upscale": lambda d: ["upscale", str(_png(d / "lr.png", (8, 8, 3), 0)), str(d / "o.png")]},
        imports=("difflab.vision.models",),
    ),
    "text": Recipe(
        bases=(
            "difflab.text.models.MaskedDiffusionLM",
            "difflab.text.models.ARLanguageModel",
            "difflab.text.models.DiffuSeq",
        ),
        args=_text_args,
        verb_config="smoke_mdlm",
        verb=_text_verb,
        checkpoint_verbs={
            "generate": lambda d: ["generate"],
            "seq2seq": lambda d: ["seq2seq", str(_jsonl(d)), str(d / "out.jsonl")],
            "evaluate": lambda d: ["evaluate", str(_txt(d))],
        },
    ),
    "video": Recipe(
        bases=("difflab.video.models.DiffTAD", "difflab.video.models.DeterministicTAD"),
        args=_video_args,
        verb_config="smoke_difftad",
        verb=_video_verb,
        checkpoint_verbs={"detect": lambda d: ["detect", str(_npy(d, 8))]},
    ),
    "pointcloud": Recipe(
        bases=("difflab.pointcloud.models.PointCloudDiffusion", "difflab.pointcloud.models.PointFilter"),
        args=_pointcloud_args,
        verb_config="smoke_psf",
        verb=_pointcloud_verb,
        checkpoint_verbs={
            "sample": lambda d: ["sample", str(d / "out")],
            "denoise": lambda d: ["denoise", str(_xyz(d)), str(d / "den.ply")],
            "make-pairs": lambda d: ["make-pairs", str(d / "pairs.pt")],
            "nll": lambda d: ["nll", str(_xyz(d))],
        },
    ),
    "timeseries": Recipe(
        bases=("difflab.timeseries.models.spd.StochasticProcessDiffusion",),
        args=_timeseries_args,
        verb_config="smoke_spd",
        verb=_timeseries_verb,
        checkpoint_verbs={
            "forecast": lambda d: ["forecast", str(_csv(d)), str(d / "fc")],
            "online": lambda d: ["online"],
            "nll": lambda d: ["nll"],
        },
        imports=("difflab.timeseries.models.falda",),
    ),
    "robotics": Recipe(
        bases=("difflab.robotics.models.DiffusionPolicy", "difflab.robotics.models.BCPolicy"),
        args=_robotics_args,
        verb_config="smoke_diffusion_policy",
        verb=_robotics_verb,
        checkpoint_verbs={"eval": lambda d: ["eval"]},
    ),
}
PACKAGES = tuple(RECIPES)
CONFIGS = [(pkg, name) for pkg in PACKAGES for name in builtin_configs(pkg)]
SMOKE = [(pkg, name) for pkg, name in CONFIGS if name.startswith("smoke")]


def _fake_thumos(root: Path) -> None:
    """A tiny set in the THUMOS14 ActionFormer layout (2048-d features, stride 4, 16-frame clips)."""
    rng = np.random.default_rng(0)
    feat_dir = root / "data/thumos/i3d_features"
    feat_dir.mkdir(parents=True, exist_ok=True)
    db = {}
    for i, subset in enumerate(["validation", "validation", "test", "test"]):
        vid = f"video_{subset}_{i}"
        np.save(feat_dir / f"{vid}.npy", rng.standard_normal((60, 2048)).astype(np.float32))
        labels = [{"label": "BaseballPitch", "segment": [1.0, 3.0]}, {"label": "CliffDiving", "segment": [4.0, 7.5]}]
        db[vid] = {"subset": subset, "duration": 8.5, "fps": 30.0, "annotations": labels}
    (root / "data/thumos/annotations").mkdir(parents=True, exist_ok=True)
    (root / "data/thumos/annotations/thumos14.json").write_text(json.dumps({"database": db}))


# ---------------------------------------------------------------------------------------------------- running
def cli_main(pkg: str) -> Callable[[list[str]], int]:
    return importlib.import_module(f"difflab.{pkg}.cli").main


def base_classes(pkg: str) -> tuple[type, ...]:
    for module in RECIPES[pkg].imports:
        importlib.import_module(module)
    out = []
    for dotted in RECIPES[pkg].bases:
        module, _, name = dotted.rpartition(".")
        out.append(getattr(importlib.import_module(module), name))
    return tuple(out)


class Context:
    """Smoke checkpoints fitted once per test module, each in its own folder, and shared inputs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._checkpoints: dict[tuple[str, str], Path] = {}
        self._audio: Path | None = None
        self._pairs: Path | None = None

    def audio_data(self) -> Path:
        """Tiny denoising and dereverberation sets as ``<root>/denoise`` and ``<root>/dereverb``."""
        if self._audio is None:
            from difflab.audio.data.synth import make_dataset

            root = self.root / "audio_data"
            make_dataset(root / "denoise", "denoise", num_train=8, num_valid=2, num_test=2, seed=1, verbose=False)
            make_dataset(root / "dereverb", "dereverb", num_train=2, num_valid=1, num_test=1, seed=2, verbose=False)
            self._audio = root
        return self._audio

    def fit(self, pkg: str, name: str, folder: Path, extra: list[str]) -> int:
        """``difflab-<pkg> fit --config name`` run inside ``folder`` (audio reads the tiny sets)."""
        folder.mkdir(parents=True, exist_ok=True)
        old_cwd, old_env = os.getcwd(), os.environ.get("DIFFLAB_AUDIO_DATA")
        os.chdir(folder)
        if pkg == "audio":
            os.environ["DIFFLAB_AUDIO_DATA"] = str(self.audio_data())
        try:
            args = ["fit", "--config", name, *QUIET, "--trainer.default_root_dir=run"]
            return cli_main(pkg)(args + RECIPES[pkg].args(name, self) + extra)
        finally:
            os.chdir(old_cwd)
            if old_env is None:
                os.environ.pop("DIFFLAB_AUDIO_DATA", None)
            else:
                os.environ["DIFFLAB_AUDIO_DATA"] = old_env

    def checkpoint(self, pkg: str, name: str) -> Path:
        """The newest checkpoint of a full (smoke-sized) ``fit`` of ``name``."""
        if (pkg, name) not in self._checkpoints:
            folder = self.root / "smoke" / pkg / name
            assert self.fit(pkg, name, folder, []) == 0
            found = sorted(folder.rglob("*.ckpt"), key=lambda p: p.stat().st_mtime)
            assert found, f"{pkg} fit --config {name} wrote no checkpoint"
            self._checkpoints[pkg, name] = found[-1]
        return self._checkpoints[pkg, name]

    def pointcloud_pairs(self, flow: Path) -> Path:
        if self._pairs is None:
            self._pairs = self.root / "pairs.pt"
            argv = ["make-pairs", "--ckpt", str(flow), "--num", "12", "--steps", "2", "--points", "64"]
            assert cli_main("pointcloud")([*argv, str(self._pairs)]) == 0
        return self._pairs


@pytest.fixture(scope="module")
def ctx(tmp_path_factory) -> Context:
    return Context(tmp_path_factory.mktemp("contracts"))


# ---------------------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize(("pkg", "name"), CONFIGS, ids=[f"{p}-{n}" for p, n in CONFIGS])
def test_every_config_fits_a_fast_dev_run(pkg, name, ctx, tmp_path):
    assert ctx.fit(pkg, name, tmp_path, ["--trainer.fast_dev_run=true"]) == 0


def _config_class_name(pkg: str, name: str, section: str = "model") -> str:
    """The class name of a shipped config's ``model`` (or ``data``) section."""
    config = yaml.safe_load((config_dir(pkg) / f"{name}.yaml").read_text())
    return config[section]["class_path"].rpartition(".")[2]


@pytest.mark.parametrize(("pkg", "name"), SMOKE, ids=[f"{p}-{n}" for p, n in SMOKE])
def test_smoke_checkpoint_round_trip_through_the_core_loader(pkg, name, ctx):
    from difflab.core.lightning import load_checkpoint, read_checkpoint

    ckpt = ctx.checkpoint(pkg, name)
    model = load_checkpoint(ckpt, base_classes(pkg))
    assert type(model).__name__ == _config_class_name(pkg, name) and not model.training
    saved = read_checkpoint(ckpt)["state_dict"]
    loaded = model.state_dict()
    assert saved.keys() == loaded.keys()
    for key, value in saved.items():
        assert torch.equal(loaded[key], value), key


@pytest.mark.parametrize("pkg", PACKAGES)
def test_main_verb_on_a_smoke_checkpoint(pkg, ctx, tmp_path, monkeypatch):
    from difflab.core.lightning import load_checkpoint

    recipe = RECIPES[pkg]
    ckpt = ctx.checkpoint(pkg, recipe.verb_config)
    argv, output = recipe.verb(ckpt, load_checkpoint(ckpt, base_classes(pkg)), tmp_path)
    monkeypatch.chdir(tmp_path)
    assert cli_main(pkg)(argv) == 0
    assert output.is_file() and output.stat().st_size > 0


VERBS = [(pkg, verb) for pkg in PACKAGES for verb in RECIPES[pkg].checkpoint_verbs]
BAD = [(pkg, verb, kind) for pkg, verb in VERBS for kind in ("missing", "garbage", "foreign")]


def _bad_checkpoint(kind: str, pkg: str, ctx: Context, folder: Path) -> tuple[Path, str]:
    """A checkpoint path the verbs of ``pkg`` must refuse, and the start of the problem they report."""
    if kind == "missing":
        return folder / "no_such.ckpt", "no such file"
    if kind == "garbage":
        path = folder / "garbage.ckpt"
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
        return path, "not a checkpoint"
    other = PACKAGES[(PACKAGES.index(pkg) + 1) % len(PACKAGES)]
    return ctx.checkpoint(other, RECIPES[other].verb_config), f"a checkpoint of difflab.{other}."


@pytest.mark.parametrize(("pkg", "verb", "kind"), BAD, ids=[f"{p}-{v}-{k}" for p, v, k in BAD])
def test_a_bad_checkpoint_is_one_line_and_status_2(pkg, verb, kind, ctx, tmp_path, monkeypatch, capsys):
    """A missing file, random bytes and another package's checkpoint: one line naming the file, exit 2."""
    ckpt, problem = _bad_checkpoint(kind, pkg, ctx, tmp_path)
    monkeypatch.chdir(tmp_path)
    argv = RECIPES[pkg].checkpoint_verbs[verb](tmp_path) + ["--ckpt", str(ckpt)]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        cli_main(pkg)(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    # checked by the verb's parser ("difflab-<pkg> <verb>: error: argument --ckpt: ...") or by the loader
    assert err.startswith(f"difflab-{pkg}") and "error: " in err and "\n" not in err, err
    assert f"{ckpt}: {problem}" in err, err
    assert "weights_only=False" not in err
    assert not (tmp_path / "out.wav").exists() and not (tmp_path / "fc").exists()


@pytest.mark.parametrize("pkg", PACKAGES)
def test_help_lists_every_verb(pkg, capsys):
    """Every verb is listed with its whole summary (a docstring's first paragraph, wrapped; never cut)."""
    from difflab.core.cli import _help_line

    main = cli_main(pkg)
    assert main([]) == 0
    out = capsys.readouterr().out
    for verb in ("fit", "validate", "test", "predict", "demo", *RECIPES[pkg].checkpoint_verbs):
        assert re.search(rf"^  {re.escape(verb)}( |$)", out, re.M), verb
    for verb, fn in main.__self__.verbs.items():
        summary = _help_line(fn)
        assert summary and summary in " ".join(out.split()), verb
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0


@pytest.mark.parametrize("pkg", PACKAGES)
def test_every_verb_option_says_what_it_does(pkg, monkeypatch, capsys):
    """``difflab-<pkg> VERB --help`` explains every argument (no bare ``--seed SEED`` line)."""
    import argparse

    parsers: list[argparse.ArgumentParser] = []
    original = argparse.ArgumentParser.parse_known_args

    def record(self, *args, **kwargs):
        parsers.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", record)
    main = cli_main(pkg)
    bare = []
    for verb in [*main.__self__.verbs, "demo"]:
        parsers.clear()
        with pytest.raises(SystemExit):
            main([verb, "--help"])
        assert parsers, verb
        bare += [f"{verb} {a.dest}" for a in parsers[-1]._actions if not (a.help or "").strip()]
    capsys.readouterr()
    assert not bare, f"arguments without help: {', '.join(bare)}"


def _sampler_names(cls: type) -> set[str] | None:
    """The values ``cls(sampler=...)`` accepts by its annotation (``None``: no ``sampler`` argument)."""
    import inspect

    if "sampler" not in inspect.signature(cls.__init__).parameters:
        return None
    annotation = typing.get_type_hints(cls.__init__).get("sampler")
    args = set(typing.get_args(annotation)) - {type(None)}
    return {a for arg in args for a in (typing.get_args(arg) or (arg,))}


@pytest.mark.parametrize("pkg", PACKAGES)
def test_methods_accept_exactly_the_core_sampler_names(pkg):
    """A method's ``sampler`` takes the names of one of core's registries (continuous or discrete)."""
    from difflab.core.samplers import select

    registries = [set(select.SAMPLER_NAMES), set(getattr(select, "DISCRETE_SAMPLER_NAMES", ()))]
    for name in builtin_configs(pkg):
        config = yaml.safe_load((config_dir(pkg) / f"{name}.yaml").read_text())
        module, _, cls_name = config["model"]["class_path"].rpartition(".")
        names = _sampler_names(getattr(importlib.import_module(module), cls_name))
        if names is None:
            continue
        assert names in registries, f"{name}: sampler takes {sorted(map(str, names))}"
        chosen = (config["model"].get("init_args") or {}).get("sampler")
        assert chosen is None or chosen in names, f"{name}: sampler {chosen!r}"
