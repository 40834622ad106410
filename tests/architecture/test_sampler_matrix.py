"""``benchmarks/sampler_matrix.py`` on one domain with a two-step model and two samplers: every cell of
its tables is a finite metric with its NFE, or ``n/a`` with a footnote (no timing, no quality)."""

import dataclasses
import importlib.util
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _matrix():
    spec = importlib.util.spec_from_file_location("sampler_matrix", ROOT / "benchmarks/sampler_matrix.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def one_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_steps_reach_the_target_nfe():
    m = _matrix()
    assert m.steps_for_nfe("ddim", 5) == 5
    assert m.nfe_for_steps("heun", m.steps_for_nfe("heun", 10)) in (9, 10, 11)


@pytest.mark.usefixtures("one_thread")
def test_pointcloud_cells_are_finite_or_na(tmp_path):
    m = _matrix()
    st = m.Settings(quick=True, seed=0, scale=1e-3)  # two training steps: an untrained network
    domain = dataclasses.replace(m.DOMAINS["pointcloud"], not_applicable={"heun": "left out by the test"})
    ctx = domain.prepare(tmp_path, st)
    ctx["num"] = 4
    assert any(tmp_path.glob("pointcloud_ddpm_*.pt")), "the trained model is cached"
    table = m.evaluate_domain(domain, ctx, ("ddim", "heun"), (5, 10), seed=0)
    assert set(table) == {"ddim", "heun", m.default_sampler(ctx)}
    for sampler, row in table.items():
        assert set(row) == {5, 10}
        for cell in row.values():
            if sampler == "heun":
                assert cell.status == "n/a" and cell.note
            else:
                assert cell.status == "ok" and math.isfinite(cell.value) and cell.nfe >= 1
    text = m.domain_table(domain, ctx, table)
    assert text.count("\n| ") == 1 + len(table)  # the header row and one row per sampler
    combined = m.combined_table({"pointcloud": (domain, ctx, table)})
    assert "n/a[1]" in combined and "[1] pointcloud: left out by the test" in combined
    again = domain.prepare(tmp_path, st)  # a rerun loads the cached weights
    assert all((a == b).all() for a, b in zip(again["model"].state_dict().values(), ctx["model"].state_dict().values()))
