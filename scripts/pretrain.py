"""Train a package's pretrained default(s) and write them into the package, where its verbs find them.

Usage: ``python scripts/pretrain.py PKG [--seed 0] [--out DIR] [--minutes M]``.

Each domain package has a module ``difflab.<pkg>.pretrain`` with ``pretrain(out_dir, *, seed, minutes)``
that trains on the package's full offline default data, evaluates against the classical baseline,
writes slim checkpoints (:func:`difflab.core.lightning.pretrained.write_pretrained`) into ``out_dir``
and returns their paths. Without ``--out`` the files go to ``difflab/<pkg>/pretrained/``, the folder
the verbs read when they get no ``--ckpt``. The run is seeded; its wall and CPU time are printed.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

DOMAINS = ["audio", "vision", "text", "video", "pointcloud", "timeseries", "robotics"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("package", choices=DOMAINS, help="the domain package whose default to train")
    p.add_argument("--seed", type=int, default=0, help="seed of data order, initialisation and noise")
    p.add_argument("--out", type=Path, default=None, help="folder to write to (default: the package's own)")
    p.add_argument("--minutes", type=float, default=None, help="training budget (default: the package's recipe)")
    args = p.parse_args(argv)
    try:
        module = importlib.import_module(f"difflab.{args.package}.pretrain")
    except ModuleNotFoundError as err:
        print(f"difflab-{args.package}: no pretraining recipe ({err.name})", file=sys.stderr)
        return 2
    from difflab.core.lightning.pretrained import shipped_path

    out = args.out or shipped_path(args.package, "x").parent
    wall, cpu = time.perf_counter(), time.process_time()
    written = module.pretrain(out, seed=args.seed, minutes=args.minutes)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    for path in written:
        print(f"wrote {path} ({Path(path).stat().st_size / 2**20:.1f} MiB)")
    print(f"difflab-{args.package} pretraining: wall {wall / 60:.1f} min, CPU {cpu / 60:.1f} min, seed {args.seed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
