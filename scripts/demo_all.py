"""Run every difflab demo on its offline default data and end with a table of what each produced.

Each package's demo (``difflab-<pkg> demo``) prints one line per artifact it wrote, of the form
``artifact: <path> | <what it shows>``. Packages not built yet say so in one line.
Usage: ``python scripts/demo_all.py [pkg ...] [--out outputs/demo]``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from difflab.core.tables import markdown_header, markdown_row

PACKAGES = ["core", "audio", "vision", "text", "video", "pointcloud", "timeseries", "robotics"]


def is_built(pkg: str) -> bool:
    """A domain declares ``BUILT = True`` in its ``__init__`` once its demo runs end to end."""
    import importlib

    if pkg == "core":
        return True
    return bool(getattr(importlib.import_module(f"difflab.{pkg}"), "BUILT", False))


def run_one(pkg: str, out: Path) -> tuple[str, float, list[tuple[str, str]]]:
    exe = shutil.which(f"difflab-{pkg}", path=str(Path(sys.executable).parent)) or shutil.which(f"difflab-{pkg}")
    if exe is None:
        return "not installed", 0.0, []
    if not is_built(pkg):
        print(f"difflab-{pkg}: not built yet (no demo)")
        return "not built yet", 0.0, []
    start = time.perf_counter()
    proc = subprocess.Popen(
        [exe, "demo", "--out", str(out / pkg)] if pkg_has_out(exe) else [exe, "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    artifacts: list[tuple[str, str]] = []
    status = "ok"
    assert proc.stdout is not None
    for line in proc.stdout:
        print(f"[{pkg}] {line}", end="", flush=True)
        if line.startswith("artifact:"):
            path, _, what = line[len("artifact:") :].strip().partition("|")
            artifacts.append((path.strip(), what.strip()))
        if "not built yet" in line:
            status = "not built yet"
    code = proc.wait()
    if code != 0:
        status = f"failed (exit {code})"
    return status, time.perf_counter() - start, artifacts


def pkg_has_out(exe: str) -> bool:
    """Whether ``<exe> demo --help`` offers ``--out``."""
    out = subprocess.run([exe, "demo", "--help"], capture_output=True, text=True)
    return "--out" in out.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("packages", nargs="*", default=PACKAGES, help="packages to run (default: all)")
    ap.add_argument(
        "--out", type=Path, default=Path("outputs/demo"), help="where the demos write (default outputs/demo)"
    )
    ns = ap.parse_args()
    rows = []
    for pkg in ns.packages:
        print(f"== difflab-{pkg} demo", flush=True)
        rows.append((pkg, *run_one(pkg, ns.out)))
    print("\n" + markdown_header(["package", "status", "time", "artifacts"], "l"))
    for pkg, status, secs, arts in rows:
        listed = "<br>".join(f"{p} ({w})" if w else p for p, w in arts) or "-"
        print(markdown_row([pkg, status, f"{secs:.0f} s", listed]))
    return 1 if any(r[1].startswith("failed") for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
