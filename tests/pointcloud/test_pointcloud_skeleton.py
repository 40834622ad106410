"""The difflab-pointcloud package imports and its command answers --help."""

import subprocess
import sys

import pytest


def test_imports_as_namespace_portion():
    import difflab
    import difflab.pointcloud

    assert getattr(difflab, "__file__", None) is None
    assert difflab.pointcloud.__version__


def test_cli_help():
    from difflab.pointcloud.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0


def test_console_script_help():
    out = subprocess.run(
        [sys.executable, "-m", "difflab.pointcloud.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "difflab-pointcloud" in out.stdout
