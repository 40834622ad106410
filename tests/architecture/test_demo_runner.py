"""``make demo``'s runner: packages without a demo say so in one line and the run ends with a table."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_runner_reports_unbuilt_packages_in_its_table(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts/demo_all.py"), "audio", "robotics", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "difflab-audio: not built yet" in out.stdout
    table = out.stdout[out.stdout.index("| package |") :].splitlines()
    assert table[2].startswith("| audio | not built yet |")
    assert table[3].startswith("| robotics | not built yet |")
