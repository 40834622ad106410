"""The package imports as a namespace portion, its command answers --help and lists its verbs."""

import subprocess
import sys

import pytest


def test_imports_as_namespace_portion():
    import difflab
    import difflab.vision

    assert getattr(difflab, "__file__", None) is None
    assert difflab.vision.__version__
    assert difflab.vision.BUILT


def test_cli_help_lists_verbs_and_configs(capsys):
    from difflab.vision.cli import main

    assert main([]) == 0
    out = capsys.readouterr().out
    for word in ("fit", "upscale", "demo", "resshift4_photos", "sr3_photos"):
        assert word in out


def test_fit_help():
    from difflab.vision.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["fit", "--help"])
    assert exc.value.code == 0


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "difflab.vision.cli"], capture_output=True, text=True, check=True)
    assert "difflab-vision" in out.stdout
