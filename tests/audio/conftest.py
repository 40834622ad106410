"""Shared fixtures: small default datasets written once per test session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory):
    """A tiny denoising dataset in the default layout (8 / 2 / 2 pairs; test = real speech)."""
    from difflab.audio.data.synth import make_dataset

    root = tmp_path_factory.mktemp("audio_data") / "denoise"
    make_dataset(root, "denoise", num_train=8, num_valid=2, num_test=2, seed=1, verbose=False)
    return root


@pytest.fixture(scope="session")
def reverb_root(tmp_path_factory):
    from difflab.audio.data.synth import make_dataset

    root = tmp_path_factory.mktemp("audio_data") / "dereverb"
    make_dataset(root, "dereverb", num_train=2, num_valid=1, num_test=1, seed=2, verbose=False)
    return root


@pytest.fixture
def default_data_env(tiny_root, monkeypatch):
    """Point the default data module at the tiny dataset (``$DIFFLAB_AUDIO_DATA/denoise``)."""
    monkeypatch.setenv("DIFFLAB_AUDIO_DATA", str(tiny_root.parent))
    return tiny_root
