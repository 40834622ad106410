"""``difflab-timeseries``: command line of difflab.timeseries (probabilistic forecasting with diffusion).

The package is a skeleton: its training commands (``fit``, ``validate``, ``test``, ``predict``
through the Lightning CLI) and domain verbs arrive with its methods.
"""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """difflab-timeseries: probabilistic forecasting with diffusion.

Status: not built yet. This package currently provides its layout and this command only;
the Lightning CLI commands (fit, validate, test, predict) and the demo arrive with its methods."""


def main(args: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="difflab-timeseries", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("demo", help="run the package demo on its offline default data (not built yet)")
    ns = parser.parse_args(sys.argv[1:] if args is None else args)
    if ns.command == "demo":
        print("difflab-timeseries: not built yet (no demo)")
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
