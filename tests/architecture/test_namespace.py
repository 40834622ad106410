"""``difflab`` is a PEP 420 namespace shared by eight distributions; each domain stands on core alone."""

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["core", "audio", "vision", "text", "video", "pointcloud", "timeseries", "robotics"]
DOMAINS = PACKAGES[1:]


def test_difflab_is_a_namespace():
    import difflab

    assert getattr(difflab, "__file__", None) is None
    assert len(list(difflab.__path__)) >= 2


def test_no_package_ships_difflab_init():
    for pkg in PACKAGES:
        assert not (ROOT / pkg / "src/difflab/__init__.py").exists(), (
            f"{pkg}/src/difflab/__init__.py breaks the namespace"
        )
        assert (ROOT / pkg / "src/difflab" / pkg / "__init__.py").exists()
        assert (ROOT / pkg / "pyproject.toml").exists()
        assert (ROOT / "tests" / pkg).is_dir()


@pytest.mark.parametrize("pkg", DOMAINS)
def test_domain_imports_with_only_core_and_itself(pkg):
    """Run Python with site-packages but without the editable .pth entries of the other domains."""
    purelib = sysconfig.get_paths()["purelib"]
    code = (
        "import sys\n"
        f"sys.path[:0] = [{str(ROOT / 'core/src')!r}, {str(ROOT / pkg / 'src')!r}]\n"
        f"sys.path.append({purelib!r})\n"
        "import difflab, importlib, importlib.util\n"
        f"importlib.import_module('difflab.{pkg}')\n"
        f"importlib.import_module('difflab.{pkg}.cli')\n"
        f"others = [d for d in {DOMAINS!r} if d != {pkg!r}]\n"
        "leaked = [d for d in others if importlib.util.find_spec('difflab.' + d) is not None]\n"
        "assert not leaked, leaked\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
