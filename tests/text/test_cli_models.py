"""Model behaviour, train-tokenizer and the generate verb (every config's fast_dev_run, the checkpoint
round trip and help are in tests/architecture/test_contracts.py)."""

from pathlib import Path

import pytest
import torch

from difflab.core.cli import builtin_configs
from difflab.text.cli import main
from difflab.text.models import GIDDLM, MaskedDiffusionLM

CONFIGS = builtin_configs("text")


def test_configs_ship():
    for name in (
        "mdlm_kjv",
        "gidd_kjv",
        "ar_kjv",
        "mdlm_wiki",
        "diffuseq_kjv",
        "smoke_mdlm",
        "smoke_gidd",
        "smoke_ar",
        "smoke_diffuseq",
    ):
        assert name in CONFIGS


def test_train_tokenizer_verb(tmp_path):
    f = tmp_path / "c.txt"
    f.write_text("\n".join(f"the light of day {i} and the dark of night" for i in range(50)))
    assert main(["train-tokenizer", str(f), "--vocab_size", "300", "--out", str(tmp_path / "tok.json")]) == 0
    from difflab.text.tokenizer import TextTokenizer

    tok = TextTokenizer.from_file(tmp_path / "tok.json")
    assert tok.mask_id == 1 and tok.vocab_size <= 300


def _tiny(cls, **kw):
    torch.manual_seed(0)
    return cls(vocab_size=64, max_len=16, dim=32, depth=1, heads=2, **kw)


@pytest.mark.parametrize("cls", [MaskedDiffusionLM, GIDDLM])
def test_prefix_and_infilling_keep_given_tokens(cls):
    m = _tiny(cls)
    g = torch.Generator().manual_seed(0)
    prefix = torch.tensor([10, 11, 12])
    r = m.generate(3, 16, steps=8, prefix=prefix, generator=g)
    assert r.sample.shape == (3, 16)
    assert (r.sample[:, 0] == 2).all() and (r.sample[:, 1:4] == prefix).all()
    assert not (r.sample == m.mask_id).any()
    x = torch.randint(4, 64, (2, 16))
    keep = torch.zeros(2, 16, dtype=torch.bool)
    keep[:, 8:] = True
    r = m.generate(2, 16, steps=8, x=x, keep_mask=keep, generator=g)
    assert (r.sample[:, 8:] == x[:, 8:]).all()


def test_mdlm_cache_gives_same_samples_with_fewer_evaluations():
    m = _tiny(MaskedDiffusionLM)
    a = m.generate(1, 16, steps=128, cache=True, generator=torch.Generator().manual_seed(3))
    b = m.generate(1, 16, steps=128, cache=False, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.sample, b.sample)
    assert a.nfe < b.nfe == 128


def test_losses_finite_and_spindle_from_data():
    from difflab.core.processes.discrete import SpindleMaskedDiffusion

    x0 = torch.randint(4, 64, (4, 16))
    batch = {"x0": x0, "attention_mask": torch.ones_like(x0)}
    g = torch.Generator().manual_seed(0)
    for m in (_tiny(MaskedDiffusionLM), _tiny(GIDDLM, p_u=0.2), _tiny(MaskedDiffusionLM, schedule="spindle")):
        if m.schedule == "spindle":
            m.token_frequencies.copy_(torch.bincount(x0.flatten(), minlength=64).double())
            m._build_spindle()
            assert isinstance(m.process, SpindleMaskedDiffusion)
        loss = m.training_loss(batch, g)
        assert torch.isfinite(loss) and loss > 0
        loss.backward()
        s, n = m.elbo_nll(x0, n_times=2, generator=g)
        assert n == 4 * 15 and s > 0


def test_gidd_self_correction_runs():
    m = _tiny(GIDDLM, p_u=0.1)
    r = m.generate(2, 16, steps=4, generator=torch.Generator().manual_seed(0), self_correction_steps=3)
    assert r.nfe <= 4 + 1 + 3 and "correction_steps" in r.info


def test_checkpoint_roundtrip_and_generate_verb(tmp_path, capsys):
    args = [
        "fit",
        "--config",
        "smoke_mdlm",
        "--trainer.accelerator=cpu",
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.enable_progress_bar=false",
        "--trainer.max_steps=2",
        "--data.init_args.max_documents=600",
    ]
    assert main(args) == 0
    ckpts = sorted(Path(tmp_path).rglob("*.ckpt"))
    assert ckpts, "fit wrote no checkpoint"
    out = tmp_path / "samples.jsonl"
    assert (
        main(
            [
                "generate",
                "--ckpt",
                str(ckpts[-1]),
                "--num",
                "2",
                "--length",
                "16",
                "--steps",
                "4",
                "--prefix",
                "And God said",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "sample 1" in text and out.is_file()
    assert all(line.startswith('{"text": "And God said') for line in out.read_text().splitlines())
