"""Every domain verb of every package checks its arguments before it loads anything: a count below 1
(or a negative one), a missing input file, each exit with status 2, print one line on stderr that
names the option or the file, and write nothing.

The checkpoint passed is an empty file: a verb that got as far as loading it would fail with another
message, so these errors are the argument checks themselves.
"""

from __future__ import annotations

import importlib

import pytest

# (package, argv with {ckpt}, {inp} and {out} placeholders, the option or file the error must name)
BAD_COUNTS = [
    ("audio", "enhance {inp}.wav {out} --ckpt {ckpt} --steps 0", "--steps"),
    ("audio", "make-dataset {out} --num_train 0", "--num_train"),
    ("vision", "upscale {inp}.png {out} --ckpt {ckpt} --steps 0", "--steps"),
    ("vision", "upscale {inp}.png {out} --ckpt {ckpt} --scale 0", "--scale"),
    ("vision", "upscale {inp}.png {out} --ckpt {ckpt} --tile -4", "--tile"),
    ("text", "generate --ckpt {ckpt} --num 0", "--num"),
    ("text", "generate --ckpt {ckpt} --length 0", "--length"),
    ("text", "generate --ckpt {ckpt} --steps 0", "--steps"),
    ("text", "seq2seq {inp}.jsonl {out} --ckpt {ckpt} --draws 0", "--draws"),
    ("text", "seq2seq {inp}.jsonl {out} --ckpt {ckpt} --batch_size -1", "--batch_size"),
    ("text", "train-tokenizer {inp}.txt --vocab_size 0 --out {out}", "--vocab_size"),
    ("text", "evaluate {inp}.txt --ckpt {ckpt} --draws 0", "--draws"),
    ("text", "evaluate {inp}.txt --ckpt {ckpt} --batch_size 0", "--batch_size"),
    ("text", "evaluate {inp}.txt --ckpt {ckpt} --block_size 2", "--block_size"),
    ("video", "detect {inp}.npy --ckpt {ckpt} --steps 0 --out {out}", "--steps"),
    ("video", "make-dataset {out} --n_train 0", "--n_train"),
    ("pointcloud", "sample {out} --ckpt {ckpt} --num 0", "--num"),
    ("pointcloud", "sample {out} --ckpt {ckpt} --points -5", "--points"),
    ("pointcloud", "denoise {inp}.ply {out} --ckpt {ckpt} --repeat 0", "--repeat"),
    ("pointcloud", "make-pairs {out} --ckpt {ckpt} --steps 0", "--steps"),
    ("pointcloud", "nll {inp}.ply --ckpt {ckpt} --steps 0", "--steps"),
    ("pointcloud", "nll {inp}.ply --ckpt {ckpt} --probes 0", "--probes"),
    ("timeseries", "forecast {inp}.csv {out} --ckpt {ckpt} --horizon 0", "--horizon"),
    ("timeseries", "forecast {inp}.csv {out} --ckpt {ckpt} --horizon -5", "--horizon"),
    ("timeseries", "forecast {inp}.csv {out} --ckpt {ckpt} --samples 0", "--samples"),
    ("timeseries", "online --ckpt {ckpt} --samples 0 --out {out}", "--samples"),
    ("timeseries", "nll --ckpt {ckpt} --steps 0", "--steps"),
    ("timeseries", "nll --ckpt {ckpt} --probes -1", "--probes"),
    ("robotics", "collect {out} --episodes 0", "--episodes"),
    ("robotics", "eval --ckpt {ckpt} --episodes -5 --out {out}", "--episodes"),
    ("robotics", "eval --ckpt {ckpt} --steps 0 --out {out}", "--steps"),
]

BAD_VALUES = [
    ("audio", "enhance {inp}.wav {out} --ckpt {ckpt} --chunk_seconds 0", "--chunk_seconds"),
    ("audio", "enhance {inp}.wav {out}.mp3 --ckpt {ckpt}", ".mp3"),
    ("vision", "upscale {inp}.png {out} --ckpt {ckpt} --tile 8 --overlap 8", "--overlap"),
    ("vision", "upscale {inp}.png {out} --ckpt {ckpt} --sampler foo", "--sampler"),
    ("pointcloud", "sample {out} --ckpt {ckpt} --sampler foo", "--sampler"),
    ("video", "detect {inp}.npy --ckpt {ckpt} --sampler foo --out {out}", "--sampler"),
    ("robotics", "eval --ckpt {ckpt} --sampler foo --out {out}", "--sampler"),
    ("text", "seq2seq {inp}.jsonl {out} --ckpt {ckpt} --sampler foo", "--sampler"),
    ("text", "evaluate {inp}.txt --ckpt {ckpt} --encoding nonsense", "--encoding"),
    ("timeseries", "forecast {inp}.csv {out} --ckpt {ckpt} --freq 2H", "--freq"),
    ("timeseries", "forecast {inp}.csv {out} --ckpt {ckpt} --sampler foo", "--sampler"),
    ("timeseries", "forecast {inp}.csv {out} --ckpt {ckpt} --columns", "--columns"),
]
"""Values of the right type that the verb cannot use: an option's value out of range, an output format
it cannot write, an encoding or frequency that does not exist, an unknown sampler, an empty list."""

MISSING_INPUTS = [
    ("audio", "enhance {missing}.wav {out} --ckpt {ckpt}"),
    ("vision", "upscale {missing}.png {out} --ckpt {ckpt}"),
    ("text", "seq2seq {missing}.jsonl {out} --ckpt {ckpt}"),
    ("text", "train-tokenizer {missing}.txt --out {out}"),
    ("text", "evaluate {missing}.txt --ckpt {ckpt}"),
    ("video", "detect {missing}.npy --ckpt {ckpt} --out {out}"),
    ("pointcloud", "denoise {missing}.ply {out} --ckpt {ckpt}"),
    ("pointcloud", "nll {missing}.ply --ckpt {ckpt}"),
    ("timeseries", "forecast {missing}.csv {out} --ckpt {ckpt}"),
]


def _run(pkg: str, argv: list[str], capsys) -> tuple[int, list[str]]:
    main = importlib.import_module(f"difflab.{pkg}.cli").main
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(argv)
    return stop.value.code, capsys.readouterr().err.strip().splitlines()


def _setup(tmp_path):
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"")
    inp = tmp_path / "input"
    for ext in ("wav", "png", "jsonl", "txt", "npy", "ply", "csv"):
        (tmp_path / f"input.{ext}").write_bytes(b"")
    before = {p for p in tmp_path.rglob("*")}
    return dict(ckpt=ckpt, inp=inp, out=tmp_path / "out", missing=tmp_path / "missing"), before


@pytest.mark.parametrize(
    ("pkg", "template", "option"), BAD_COUNTS, ids=[f"{p}:{t.split()[0]}:{o}" for p, t, o in BAD_COUNTS]
)
def test_a_count_below_one_is_one_line_naming_the_option(pkg, template, option, tmp_path, capsys):
    paths, before = _setup(tmp_path)
    code, err = _run(pkg, template.format(**paths).split(), capsys)
    assert code == 2
    assert len(err) == 1 and err[0].startswith(f"difflab-{pkg} ") and "error: " in err[0], err
    assert option in err[0], err
    assert {p for p in tmp_path.rglob("*")} == before, "an argument error must write nothing"


@pytest.mark.parametrize(
    ("pkg", "template", "option"), BAD_VALUES, ids=[f"{p}:{t.split()[0]}:{o}" for p, t, o in BAD_VALUES]
)
def test_a_value_the_verb_cannot_use_is_one_line_naming_it(pkg, template, option, tmp_path, capsys):
    paths, before = _setup(tmp_path)
    code, err = _run(pkg, template.format(**paths).split(), capsys)
    assert code == 2
    assert len(err) == 1 and err[0].startswith(f"difflab-{pkg}") and "error: " in err[0], err
    assert option in err[0], err
    assert {p for p in tmp_path.rglob("*")} == before, "an argument error must write nothing"


@pytest.mark.parametrize(("pkg", "template"), MISSING_INPUTS, ids=[f"{p}:{t.split()[0]}" for p, t in MISSING_INPUTS])
def test_a_missing_input_is_one_line_naming_the_file(pkg, template, tmp_path, capsys):
    paths, before = _setup(tmp_path)
    code, err = _run(pkg, template.format(**paths).split(), capsys)
    assert code == 2
    assert len(err) == 1 and err[0].startswith(f"difflab-{pkg}") and "error: " in err[0], err
    assert "missing" in err[0], err
    assert {p for p in tmp_path.rglob("*")} == before, "an argument error must write nothing"
