"""``make demo``'s runner: packages without a demo say so in one line and the run ends with a table."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _runner():
    spec = importlib.util.spec_from_file_location("demo_all", ROOT / "scripts/demo_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_runner_reports_unbuilt_packages_in_its_table(tmp_path, monkeypatch, capsys):
    runner = _runner()
    monkeypatch.setattr(runner, "is_built", lambda pkg: False)  # as if neither package were built yet
    monkeypatch.setattr(sys, "argv", ["demo_all.py", "audio", "robotics", "--out", str(tmp_path)])
    assert runner.main() == 0
    out = capsys.readouterr().out
    assert "difflab-audio: not built yet" in out
    table = out[out.index("| package |") :].splitlines()
    assert table[2].startswith("| audio | not built yet |")
    assert table[3].startswith("| robotics | not built yet |")


def test_every_domain_declares_whether_it_is_built():
    runner = _runner()
    for pkg in runner.PACKAGES:
        assert isinstance(runner.is_built(pkg), bool), pkg
