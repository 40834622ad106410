"""DDPD's language model: its two losses, its sampler through the model, and the command line on tiny
data (fit the smoke config, generate with --sampler ddpd and auto, evaluate refused in one line, DDPD's
sampler on an MDLM checkpoint)."""

from pathlib import Path

import pytest
import torch

from difflab.core.testing import user_error_line
from difflab.text.cli import main
from difflab.text.models import DDPDLM
from difflab.text.models.ddpd import NO_BOUND

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()


def _tiny(**kw) -> DDPDLM:
    torch.manual_seed(0)
    return DDPDLM(vocab_size=64, max_len=16, dim=32, depth=1, heads=2, **kw)


def test_losses_are_finite_and_the_planner_target_is_the_resampled_flag():
    m = _tiny()
    x0 = torch.randint(4, 64, (6, 16))
    x0[:, 0] = 2
    am = torch.ones_like(x0)
    am[0, 10:] = 0
    ce, bce = m.loss_parts({"x0": x0, "attention_mask": am}, torch.Generator().manual_seed(0))
    assert torch.isfinite(ce) and torch.isfinite(bce) and ce > 0 and bce > 0
    (ce + bce).backward()
    t = torch.tensor([0.0, 1.0, 0.5])
    x_t, flags = m.corrupt_with_flags(x0[:3], t, torch.Generator().manual_seed(1))
    assert not flags[0].any() and flags[1, 1:].all() and not flags[:, 0].any()
    assert torch.equal(x_t[~flags], x0[:3][~flags]) and not (x_t == m.mask_id).any()


def test_generate_keeps_the_prefix_is_reproducible_and_counts_one_evaluation_per_step():
    m = _tiny()
    prefix = torch.tensor([10, 11, 12])
    a = m.generate(3, 16, steps=5, prefix=prefix, generator=torch.Generator().manual_seed(3))
    b = m.generate(3, 16, steps=5, prefix=prefix, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.sample, b.sample) and a.nfe == 5
    assert (a.sample[:, 0] == 2).all() and (a.sample[:, 1:4] == prefix).all() and not (a.sample == 1).any()
    assert (a.info["denoised"] >= 5).all()
    tau = m.generate(2, 16, steps=5, schedule="tau_leaping", generator=torch.Generator().manual_seed(3))
    assert tau.nfe == 5


def test_no_bound():
    from difflab.core.errors import UserError

    m = _tiny()
    with pytest.raises(UserError, match="no likelihood bound"):
        m.elbo_nll(torch.randint(4, 64, (2, 16)))


def _corpus(path: Path, lines: int = 300) -> Path:
    rows = (" ".join(WORDS[(i * k) % len(WORDS)] for k in range(1, 9)) for i in range(lines))
    path.write_text("\n".join(rows))
    return path


def _fit(config: str, tmp_path: Path) -> Path:
    data = [f"--data.init_args.train_files=[{_corpus(tmp_path / 'c.txt')}]", "--data.init_args.vocab_size=300"]
    root = tmp_path / config
    argv = ["fit", "--config", config, f"--trainer.default_root_dir={root}", "--trainer.enable_progress_bar=false"]
    assert main([*argv, *data, "--trainer.max_steps=2"]) == 0
    return root


def test_fit_generate_and_evaluate_refused(tmp_path, capsys):
    run = _fit("smoke_ddpd", tmp_path)
    out = tmp_path / "s.jsonl"
    for sampler in ("ddpd", "auto"):
        capsys.readouterr()
        argv = ["generate", "--ckpt", str(run), "--num", "2", "--length", "16", "--steps", "3", "--sampler", sampler]
        assert main([*argv, "--prefix", "alpha beta", "--out", str(out), "--overwrite"]) == 0
        assert "nfe: 3" in capsys.readouterr().out
        assert all(line.startswith('{"text": "alpha beta') for line in out.read_text().splitlines())
    err = user_error_line(main, capsys, ["generate", "--ckpt", str(run), "--sampler", "masked"])
    assert "needs a MaskedDiffusionLM checkpoint, got DDPDLM" in err
    held = _corpus(tmp_path / "held.txt", 20)
    err = user_error_line(main, capsys, ["evaluate", "--ckpt", str(run), str(held)], keep=lambda line: "error" in line)
    assert NO_BOUND in err


def test_ddpd_sampler_on_an_mdlm_checkpoint(tmp_path, capsys):
    run = _fit("smoke_mdlm", tmp_path)
    capsys.readouterr()
    argv = ["generate", "--ckpt", str(run), "--num", "2", "--length", "16", "--steps", "4", "--sampler", "ddpd"]
    assert main(argv) == 0
    assert "nfe: 4" in capsys.readouterr().out


def test_sample_entropy_is_the_mean_entropy_of_each_samples_tokens():
    import math

    from difflab.text.metrics import sample_entropy

    assert math.isclose(sample_entropy([[1, 1, 2, 2], [5, 5, 5, 5]]), math.log(2) / 2)
    assert math.isclose(sample_entropy([[1, 2, 3, 4]]), math.log(4))
