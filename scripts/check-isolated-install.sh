#!/usr/bin/env bash
# Proves that one domain's declared dependencies are enough: a fresh venv with only
# `pip install -e core -e <pkg>` (plus test tools), then `pytest tests/core tests/<pkg>`.
# Usage: scripts/check-isolated-install.sh <pkg> [venv-dir]
set -euo pipefail
pkg=${1:?usage: check-isolated-install.sh <audio|vision|text|video|pointcloud|timeseries|robotics> [venv-dir]}
case "$pkg" in
  audio|vision|text|video|pointcloud|timeseries|robotics) ;;
  *) echo "check-isolated-install.sh: unknown package '$pkg'" >&2; exit 2 ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${2:-}" ]; then
  venv=$2
else
  # A throw-away venv (several GB with torch) is removed when the check ends.
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  venv=$tmp/venv-$pkg
fi
python=${PYTHON:-python3}

echo "== isolated install of difflab-$pkg in $venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade 'pip>=25.1'
"$venv/bin/python" -m pip install -q -c "$root/constraints.txt" -e "$root/core[lightning,test]" -e "$root/$pkg[test]" pytest-timeout

others=$(for p in audio vision text video pointcloud timeseries robotics; do if [ "$p" != "$pkg" ]; then echo "$p"; fi; done)
for p in $others; do
  if "$venv/bin/python" -c "import difflab.$p" 2>/dev/null; then
    echo "difflab.$p is importable in the isolated venv of $pkg: the install is not isolated" >&2
    exit 1
  fi
done

cd "$root"
"$venv/bin/python" -m pytest tests/core "tests/$pkg" -q -m "not slow" ${PYTEST_ARGS:-}
