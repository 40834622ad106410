r"""The offline default data: synthetic speech mixed with real noise and simulated rooms, on disk.

:func:`make_dataset` writes a VoiceBank-DEMAND style tree that every data module reads::

    ROOT/{train,valid,test}/{clean,noisy}/<name>.wav   (16 kHz mono, 16-bit, identical names)
    ROOT/{train,valid,test}/meta.csv                    text/source, voice, SNR or RT60, noise

* **train / valid**: English sentences (King James Bible verses, split at punctuation, from Debian
  ``bible-kjv``; random word strings from ``/usr/share/dict`` if it is missing) spoken by
  ``espeak-ng`` (English accents x voice variants x pitch 20-80 x speed 120-190 wpm) and ``flite``
  (voices kal16, slt, rms, awb, with duration stretch 0.8-1.25).
* **test**: *real recorded speech*, the studio prompts of ``asterisk-core-sounds-en-g722`` (one
  female US speaker, 16 kHz G.722), so reported numbers are on real speech.
* **denoise** task: speech + noise at an SNR drawn from [-5, 15] dB. Noise is either a real
  recording from Debian ``sonic-pi-samples`` (ambience, hum, vinyl hiss, loops, percussion; looped
  and randomly offset) or coloured Gaussian noise with power spectrum ``1/f^k``, ``k`` in [-1, 2]
  (blue to brown). Every fourth sonic-pi file (by sorted name) is held out of train/valid and
  used for the test mixtures only.
* **dereverb** task: speech convolved with a room impulse response from ``pyroomacoustics``
  (random shoebox room, random source / microphone positions, RT60 drawn from [0.2, 0.9] s for
  train/valid and from [0.3, 1.0] s with other room sizes for test), shifted so that the direct
  path is at sample 0; the target is the anechoic speech.

Levels: clean speech is scaled to an RMS of -26 to -16 dBFS; a mixture that would clip is scaled
down together with its target. Everything depends only on ``seed`` (the same seed gives the same
files).
"""

from __future__ import annotations

import csv
import math
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from difflab.audio.data.io import load_audio, resample, write_wav

Task = Literal["denoise", "dereverb"]
SAMPLE_RATE = 16000
SONIC_PI_DIR = Path("/usr/share/sonic-pi/samples")
ASTERISK_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
INSTALL_HINT = "apt-get install -y espeak-ng flite sonic-pi-samples asterisk-core-sounds-en-g722 bible-kjv"

ESPEAK_LANGS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan"]
ESPEAK_VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2"]
FLITE_VOICES = ["kal16", "slt", "rms", "awb"]
BIBLE_REFS = [
    "Gen1:1-31",
    "Gen2:1-25",
    "Gen3:1-24",
    "Gen37:1-36",
    "Ex3:1-22",
    "Ruth1:1-22",
    "1Sam17:1-58",
    "Job38:1-41",
    "Ps1:1-6",
    "Ps8:1-9",
    "Ps23:1-6",
    "Ps104:1-35",
    "Ps119:1-80",
    "Prov3:1-35",
    "Prov4:1-27",
    "Eccl1:1-18",
    "Eccl3:1-22",
    "Is40:1-31",
    "Mt5:1-48",
    "Mt6:1-34",
    "Mk4:1-41",
    "Lk10:25-42",
    "Lk15:11-32",
    "John1:1-51",
    "Acts27:1-44",
    "1Cor13:1-13",
    "Rev21:1-27",
]


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"the offline audio data needs '{name}'; install it with: {INSTALL_HINT}")
    return path


# ---------------------------------------------------------------------------------------------------- text
def _split_phrases(text: str, rng: np.random.Generator) -> list[str]:
    """Split a verse into phrases of 4-16 words at punctuation."""
    parts = re.split(r"(?<=[;:.?!])\s+", text)
    out, cur = [], []
    for part in parts:
        words = part.split()
        cur += words
        if len(cur) >= 4 + int(rng.integers(0, 6)):
            out.append(" ".join(cur[:16]))
            cur = []
    if len(cur) >= 4:
        out.append(" ".join(cur[:16]))
    return out


def load_sentences(rng: np.random.Generator, n_min: int = 200) -> list[str]:
    """English sentences from the KJV (``bible`` command of Debian bible-kjv), else dictionary words."""
    sentences: list[str] = []
    if shutil.which("bible"):
        try:
            out = subprocess.run(["bible", "-f", *BIBLE_REFS], capture_output=True, text=True, timeout=60).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        for line in out.splitlines():
            verse = line.split(" ", 1)[1] if " " in line else ""
            sentences += _split_phrases(verse, rng)
    if len(sentences) < n_min:
        words_file = Path("/usr/share/dict/words")
        if not words_file.is_file():
            if not sentences:
                raise RuntimeError(f"no text source for the offline audio data; install it with: {INSTALL_HINT}")
        else:
            words = [w for w in words_file.read_text(errors="ignore").split() if w.isalpha() and w.islower()]
            for _ in range(n_min - len(sentences)):
                sentences.append(" ".join(rng.choice(words, size=int(rng.integers(4, 12)))))
    return sentences


# ---------------------------------------------------------------------------------------------------- speech
def synthesize(text: str, voice: str, rng: np.random.Generator, workdir: Path, tag: str) -> torch.Tensor:
    """Speak ``text`` with ``voice`` (``espeak:<lang>+<variant>`` or ``flite:<voice>``) -> 16 kHz ``(L,)``."""
    out = workdir / f"{tag}.wav"
    engine, name = voice.split(":", 1)
    if engine == "espeak":
        cmd = [
            require_tool("espeak-ng"),
            "-v",
            name,
            "-p",
            str(int(rng.integers(20, 81))),
            "-s",
            str(int(rng.integers(120, 191))),
            "-w",
            str(out),
            text,
        ]
    else:
        stretch = float(rng.uniform(0.8, 1.25))
        cmd = [
            require_tool("flite"),
            "-voice",
            name,
            "--setf",
            f"duration_stretch={stretch:.2f}",
            "-t",
            text,
            "-o",
            str(out),
        ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    wav, _ = load_audio(out, SAMPLE_RATE)
    out.unlink(missing_ok=True)
    return wav


def random_voice(rng: np.random.Generator) -> str:
    if rng.random() < 0.6:
        return f"espeak:{rng.choice(ESPEAK_LANGS)}+{rng.choice(ESPEAK_VARIANTS)}"
    return f"flite:{rng.choice(FLITE_VOICES)}"


def trim_silence(wav: torch.Tensor, threshold_db: float = -45.0, margin: int = 1600) -> torch.Tensor:
    """Cut leading / trailing stretches quieter than ``threshold_db`` relative to the peak (keep ``margin``)."""
    env = wav.abs()
    idx = torch.nonzero(env > env.max() * 10 ** (threshold_db / 20)).flatten()
    if idx.numel() == 0:
        return wav
    return wav[max(int(idx[0]) - margin, 0) : int(idx[-1]) + margin]


def real_speech_files() -> list[Path]:
    if not ASTERISK_DIR.is_dir():
        raise RuntimeError(
            f"the real-speech evaluation set needs asterisk-core-sounds-en-g722; install it with: {INSTALL_HINT}"
        )
    return sorted(ASTERISK_DIR.rglob("*.g722"))


# ---------------------------------------------------------------------------------------------------- noise
def noise_files(held_out: bool) -> list[Path]:
    """Sonic Pi sample files of the training pool (``held_out=False``) or of the held-out pool."""
    if not SONIC_PI_DIR.is_dir():
        raise RuntimeError(f"the offline audio data needs real noise recordings; install them with: {INSTALL_HINT}")
    files = sorted(SONIC_PI_DIR.glob("*.flac"))
    return [f for i, f in enumerate(files) if (i % 4 == 3) == held_out]


def coloured_noise(n: int, exponent: float, rng: np.random.Generator) -> torch.Tensor:
    """Gaussian noise with power spectrum ``1/f^exponent`` (0 white, 1 pink, 2 brown, -1 blue), unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1]
    spec = spec / f ** (exponent / 2)
    x = np.fft.irfft(spec, n)
    return torch.from_numpy(x / (x.std() + 1e-12)).float()


def noise_segment(n: int, pool: list[Path], rng: np.random.Generator, cache: dict) -> tuple[torch.Tensor, str]:
    """``n`` samples of noise: a real recording (looped, random offset) or coloured noise."""
    if rng.random() < 0.3 or not pool:
        k = float(rng.uniform(-1.0, 2.0))
        return coloured_noise(n, k, rng), f"coloured(1/f^{k:.2f})"
    path = pool[int(rng.integers(len(pool)))]
    if path not in cache:
        wav, _ = load_audio(path, SAMPLE_RATE, warn_stereo=False)
        cache[path] = wav / (wav.abs().max() + 1e-9)
    wav = cache[path]
    reps = math.ceil((n + wav.shape[0]) / wav.shape[0])
    long = wav.repeat(reps)
    start = int(rng.integers(wav.shape[0]))
    seg = long[start : start + n]
    if seg.pow(2).mean() < 1e-8:  # a silent stretch: fall back to coloured noise
        return coloured_noise(n, 1.0, rng), "coloured(1/f^1.00)"
    return seg, path.stem


def mix_at_snr(clean: torch.Tensor, noise: torch.Tensor, snr_db: float) -> torch.Tensor:
    p_s = clean.pow(2).mean()
    p_n = noise.pow(2).mean().clamp_min(1e-12)
    return clean + noise * torch.sqrt(p_s / (p_n * 10 ** (snr_db / 10)))


# ---------------------------------------------------------------------------------------------------- rooms
def room_impulse_response(
    rng: np.random.Generator, rt60_range: tuple[float, float], size_range: tuple[float, float]
) -> tuple[torch.Tensor, float]:
    """A shoebox RIR from pyroomacoustics (image source method), starting at its direct path."""
    try:
        import pyroomacoustics as pra
    except ImportError as err:
        raise RuntimeError("the dereverberation data needs pyroomacoustics: pip install 'difflab-audio[data]'") from err
    dims = np.array(
        [rng.uniform(*size_range), rng.uniform(size_range[0] * 0.8, size_range[1] * 0.8), rng.uniform(2.5, 4.0)]
    )
    rt60 = float(rng.uniform(*rt60_range))
    try:
        e_abs, max_order = pra.inverse_sabine(rt60, dims)
    except ValueError:  # RT60 too long for this room: use a shorter one
        rt60 = rt60_range[0]
        e_abs, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=SAMPLE_RATE, materials=pra.Material(e_abs), max_order=min(max_order, 40))
    src = rng.uniform([0.5, 0.5, 1.2], dims - [0.5, 0.5, 0.8])
    mic = rng.uniform([0.5, 0.5, 1.0], dims - [0.5, 0.5, 1.0])
    room.add_source(src)
    room.add_microphone(mic)
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float64)
    # start exactly at the direct path (from the geometry: with a distant source a reflection can be
    # louder than the direct sound, so the RIR's peak is not it). Any lead would delay the reverberant
    # signal against its anechoic target, a per-frequency phase rotation that a convolutional network
    # cannot learn: an 8-sample lead left the high frequencies unlearnable.
    distance = float(np.linalg.norm(np.asarray(src) - np.asarray(mic)))
    direct = int(round(distance / pra.constants.get("c") * SAMPLE_RATE)) + pra.constants.get("frac_delay_length") // 2
    direct = min(direct, rir.shape[0] - 1)
    rir = rir[direct:]
    return torch.from_numpy(rir / np.abs(rir).max()).float(), rt60


def reverberate(clean: torch.Tensor, rir: torch.Tensor) -> torch.Tensor:
    """``clean * rir`` cut to ``clean``'s length (the RIR starts at its direct path, so they stay aligned)."""
    n = clean.shape[0] + rir.shape[0] - 1
    nfft = 1 << (n - 1).bit_length()
    out = torch.fft.irfft(torch.fft.rfft(clean, nfft) * torch.fft.rfft(rir, nfft), nfft)[: clean.shape[0]]
    return out


# ---------------------------------------------------------------------------------------------------- writer
@dataclass
class SplitSpec:
    name: str
    count: int
    real_speech: bool
    held_out: bool


def _level(clean: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    rms = clean.pow(2).mean().sqrt().clamp_min(1e-9)
    return clean * (10 ** (rng.uniform(-26, -16) / 20) / rms)


def make_dataset(
    root: str | Path,
    task: Task = "denoise",
    *,
    num_train: int = 400,
    num_valid: int = 20,
    num_test: int = 24,
    seed: int = 0,
    snr_range: tuple[float, float] = (-5.0, 15.0),
    max_seconds: float = 5.0,
    workers: int = 2,
    verbose: bool = True,
) -> Path:
    """Write the default data of ``task`` under ``root`` (see the module docstring); returns ``root``.

    Args:
        root: output folder (``{train,valid,test}/{clean,noisy}`` are created in it).
        task: ``denoise`` or ``dereverb``.
        num_train, num_valid, num_test: numbers of pairs per split (test: real speech).
        seed: the only source of randomness.
        snr_range: SNR interval in dB for the denoising mixtures.
        max_seconds: longest utterance kept (longer ones are cut).
        workers: parallel TTS processes.

    The signal processing (resampling, levels, mixing, room convolution) runs on one torch thread:
    with more threads, reductions sum in another order and a few samples of the 16-bit files differ
    by one step with the machine's thread count, which is enough to change what a briefly trained
    model learns. The files are the same for the same arguments on any machine and thread count.
    """
    if task not in ("denoise", "dereverb"):
        raise ValueError(f"make_dataset: task must be 'denoise' or 'dereverb', got {task!r}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _make_dataset(
            Path(root), task, num_train, num_valid, num_test, seed, snr_range, max_seconds, workers, verbose
        )
    finally:
        torch.set_num_threads(threads)


def _make_dataset(
    root: Path,
    task: Task,
    num_train: int,
    num_valid: int,
    num_test: int,
    seed: int,
    snr_range: tuple[float, float],
    max_seconds: float,
    workers: int,
    verbose: bool,
) -> Path:
    master = np.random.default_rng(seed)
    sentences = load_sentences(master)
    order = master.permutation(len(sentences))
    real = real_speech_files() if num_test > 0 else []
    splits = [
        SplitSpec("train", num_train, False, False),
        SplitSpec("valid", num_valid, False, False),
        SplitSpec("test", num_test, True, True),
    ]
    text_cursor = 0
    noise_cache: dict = {}
    for sid, split in enumerate(splits):
        if split.count <= 0:
            continue
        rngs = [np.random.default_rng([seed, sid, i]) for i in range(split.count)]
        pool = noise_files(split.held_out) if task == "denoise" else []
        if split.real_speech:
            cleans = _real_cleans(real, seed, split.count, max_seconds)
        else:
            texts = [sentences[int(order[(text_cursor + i) % len(order)])] for i in range(split.count)]
            text_cursor += split.count
            cleans = _synthetic_cleans(split.name, texts, rngs, workers)
        rows = []
        for i, (wav, text, voice) in enumerate(cleans):
            rng = rngs[i]
            wav = trim_silence(resample(wav, SAMPLE_RATE, SAMPLE_RATE))[: int(max_seconds * SAMPLE_RATE)]
            clean = _level(wav, rng)
            if task == "denoise":
                noisy, info = _add_noise(clean, rng, snr_range, pool, noise_cache)
            else:
                noisy, info = _add_reverb(clean, rng, split.held_out)
            name = _write_pair(root / split.name, f"{split.name}_{i:05d}.wav", clean, noisy)
            rows.append({"file": name, "speech": text, "voice": voice, **info})
        _write_meta(root / split.name / "meta.csv", rows)
        if verbose:
            print(f"wrote {len(rows)} {task} pairs to {root / split.name}")
    (root / "README.txt").write_text(
        f"difflab-audio default data, task {task}, seed {seed}: train/valid synthetic speech (espeak-ng, flite), "
        "test real speech (asterisk-core-sounds-en-g722); see meta.csv in each split.\n"
    )
    return root


def _real_cleans(real: list[Path], seed: int, count: int, max_seconds: float) -> list[tuple[torch.Tensor, str, str]]:
    """``count`` recorded utterances of 1 s to ``max_seconds``, in a seeded order: ``(wav, stem, voice)``."""
    pick = np.random.default_rng([seed, 99]).permutation(len(real))
    cleans = []
    for path in [str(real[int(j)]) for j in pick]:
        wav, _ = load_audio(path, SAMPLE_RATE)
        if 1.0 * SAMPLE_RATE <= wav.shape[0] <= max_seconds * SAMPLE_RATE:
            cleans.append((wav, Path(path).stem, "asterisk:en_US_f_Allison"))
        if len(cleans) == count:
            break
    return cleans


def _synthetic_cleans(
    split: str, texts: list[str], rngs: list[np.random.Generator], workers: int
) -> list[tuple[torch.Tensor, str, str]]:
    """Each text spoken by a random TTS voice (one per generator), in parallel: ``(wav, text, voice)``."""
    voices = [random_voice(r) for r in rngs]
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max(1, workers)) as ex:
        wavs = list(
            ex.map(
                lambda a: synthesize(a[0], a[1], a[2], Path(tmp), a[3]),
                [(t, v, r, f"{split}{i}") for i, (t, v, r) in enumerate(zip(texts, voices, rngs))],
            )
        )
    return list(zip(wavs, texts, voices))


def _add_noise(
    clean: torch.Tensor, rng: np.random.Generator, snr_range: tuple[float, float], pool: list, noise_cache: dict
) -> tuple[torch.Tensor, dict[str, str]]:
    """A noise segment from ``pool`` mixed at an SNR drawn from ``snr_range``, and the meta.csv fields."""
    snr = float(rng.uniform(*snr_range))
    noise, noise_name = noise_segment(clean.shape[0], pool, rng, noise_cache)
    return mix_at_snr(clean, noise, snr), {"snr_db": f"{snr:.2f}", "noise": noise_name, "rt60_s": ""}


def _add_reverb(clean: torch.Tensor, rng: np.random.Generator, held_out: bool) -> tuple[torch.Tensor, dict[str, str]]:
    """``clean`` in a simulated room (larger, more reverberant rooms for held-out splits) at its own RMS."""
    rt60_range, size_range = ((0.3, 1.0), (6.0, 12.0)) if held_out else ((0.2, 0.9), (3.0, 9.0))
    rir, rt60 = room_impulse_response(rng, rt60_range, size_range)
    noisy = reverberate(clean, rir)
    noisy = noisy * (clean.pow(2).mean().sqrt() / noisy.pow(2).mean().sqrt().clamp_min(1e-9))
    return noisy, {"snr_db": "", "noise": "", "rt60_s": f"{rt60:.2f}"}


def _write_pair(folder: Path, name: str, clean: torch.Tensor, noisy: torch.Tensor) -> str:
    """Write ``clean/name`` and ``noisy/name`` under ``folder``, both scaled down if a peak passes 0.95."""
    peak = max(float(noisy.abs().max()), float(clean.abs().max()))
    if peak > 0.95:
        clean, noisy = clean * (0.95 / peak), noisy * (0.95 / peak)
    write_wav(folder / "clean" / name, clean, SAMPLE_RATE)
    write_wav(folder / "noisy" / name, noisy, SAMPLE_RATE)
    return name


def _write_meta(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["file", "speech", "voice", "snr_db", "noise", "rt60_s"])
        writer.writeheader()
        writer.writerows(rows)


def is_complete(root: str | Path) -> bool:
    root = Path(root)
    return all(
        (root / s / d).is_dir() and any((root / s / d).iterdir())
        for s in ("train", "valid")
        for d in ("clean", "noisy")
    )


__all__ = ["make_dataset", "is_complete", "coloured_noise", "mix_at_snr", "reverberate", "room_impulse_response"]
