"""import-linter contracts of the root pyproject.toml: domains independent, core math free of Lightning."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert exe, "lint-imports (import-linter) is not installed: make install"
    out = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    print(out.stdout[-3000:])
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def test_contract_catches_a_cross_domain_import(tmp_path):
    """The layers contract is not vacuous: a domain importing another domain breaks it."""
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    # a throw-away copy of two domains where audio imports vision
    for pkg in ("core", "audio", "vision"):
        shutil.copytree(ROOT / pkg / "src", tmp_path / pkg / "src", dirs_exist_ok=True)
    (tmp_path / "audio/src/difflab/audio/bad.py").write_text("import difflab.vision\n")
    (tmp_path / ".importlinter").write_text(
        "[importlinter]\nroot_packages =\n    difflab.core\n    difflab.audio\n    difflab.vision\n\n"
        "[importlinter:contract:layers]\nname = domains\ntype = layers\n"
        "layers =\n    difflab.audio | difflab.vision\n    difflab.core\n"
    )
    pythonpath = ":".join(str(tmp_path / p / "src") for p in ("core", "audio", "vision"))
    out = subprocess.run(
        [exe, "--no-cache", "--config", ".importlinter"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": pythonpath, "PATH": str(Path(sys.executable).parent)},
    )
    print(out.stdout[-2000:])
    assert out.returncode != 0
    assert "broken" in out.stdout.lower()
