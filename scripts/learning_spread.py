"""Spread of the learning tests over seeds and thread counts.

Runs the given learning tests once per (``DIFFLAB_TEST_SEED``, ``DIFFLAB_TEST_THREADS``) pair, each
run a pytest process of its own, and prints one markdown table per test: the numbers it records with
pytest's ``record_property`` (per seed and thread count), their mean, min and max, and whether the
test passed. The tables in the package READMEs come from this command, for example::

    python scripts/learning_spread.py tests/audio/test_learning.py --seeds 0-4 --threads 1 2 --jobs 2

``--jobs`` runs that many pytest processes at once (use no more than the cores divided by the
thread count).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` -> [0, 1, 2, 3, 4]; ``"0,3,7"`` -> [0, 3, 7]."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def run_one(tests: list[str], seed: int, threads: int, extra: list[str]) -> dict[str, dict]:
    """One pytest run; ``{test name: {"passed": bool, "seconds": float, **recorded properties}}``."""
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "report.xml"
        env = {**os.environ, "DIFFLAB_TEST_SEED": str(seed), "DIFFLAB_TEST_THREADS": str(threads)}
        cmd = [sys.executable, "-m", "pytest", "-q", f"--junitxml={xml}", *extra, *tests]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if not xml.is_file():
            tail = proc.stdout[-3000:] + proc.stderr[-3000:]
            raise SystemExit(f"pytest wrote no report (exit {proc.returncode}):\n{tail}")
        results: dict[str, dict] = {}
        for case in ET.parse(xml).getroot().iter("testcase"):
            failed = case.find("failure") is not None or case.find("error") is not None
            skipped = case.find("skipped") is not None
            row: dict = {"passed": "skip" if skipped else not failed, "seconds": float(case.get("time", 0.0))}
            for prop in case.iter("property"):
                row[prop.get("name")] = float(prop.get("value"))
            results[case.get("name")] = row
    print(f"seed {seed}, {threads} thread(s): {wall:.0f} s, exit {proc.returncode}", file=sys.stderr, flush=True)
    for name, row in results.items():  # as each run ends, so a stopped sweep keeps what it measured
        values = " ".join(f"{k}={v:.4g}" for k, v in row.items() if k not in ("passed", "seconds"))
        print(f"  {name}: passed={row['passed']} {values}", file=sys.stderr, flush=True)
    return results


def table(name: str, runs: dict[tuple[int, int], dict]) -> str:
    keys = sorted({k for r in runs.values() for k in r if k not in ("passed", "seconds")})
    lines = [f"### {name}", "", "| seed | threads | " + " | ".join(keys) + " | passed | s |"]
    lines.append("|" + "---|" * (len(keys) + 4))
    for (seed, threads), r in sorted(runs.items()):
        vals = " | ".join(f"{r[k]:.4g}" if k in r else "" for k in keys)
        lines.append(f"| {seed} | {threads} | {vals} | {r['passed']} | {r['seconds']:.0f} |")
    for label, fn in (("mean", lambda v: sum(v) / len(v)), ("min", min), ("max", max)):
        cells = []
        for k in keys:
            v = [r[k] for r in runs.values() if k in r]
            cells.append(f"{fn(v):.4g}" if v else "")
        lines.append(f"| {label} | | " + " | ".join(cells) + " | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("tests", nargs="+", help="test files or node ids")
    p.add_argument("--seeds", default="0-4", help="seeds, such as 0-4 or 0,3,7 (default 0-4)")
    p.add_argument("--threads", type=int, nargs="+", default=[1], help="torch thread counts (default 1)")
    p.add_argument("--jobs", type=int, default=1, help="pytest processes at once (default 1)")
    p.add_argument("--out", type=Path, help="also write the tables to this markdown file")
    args, extra = p.parse_known_args(argv)
    grid = [(s, t) for t in args.threads for s in parse_seeds(args.seeds)]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        done = list(pool.map(lambda st: run_one(args.tests, st[0], st[1], extra), grid))
    per_test: dict[str, dict[tuple[int, int], dict]] = {}
    for (seed, threads), results in zip(grid, done):
        for name, row in results.items():
            per_test.setdefault(name, {})[(seed, threads)] = row
    text = "\n\n".join(table(name, runs) for name, runs in per_test.items())
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
