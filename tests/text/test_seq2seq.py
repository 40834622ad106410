"""DiffuSeq-style seq2seq: schedule, data, loss terms, sampling with clamping, and the CLI verbs."""

import json
from pathlib import Path

import pytest
import torch

from difflab.core.schedules import sqrt_betas
from difflab.text.cli import main
from difflab.text.data.seq2seq import Seq2SeqDataModule, strip_case_and_punctuation
from difflab.text.models import DiffuSeq


def test_sqrt_schedule_matches_its_alpha_bar():
    T = 2000
    betas = sqrt_betas(T)
    ab = torch.cumprod(1 - betas, 0)
    tau = torch.arange(1, T + 1, dtype=torch.float64) / T
    closed = (1 - torch.sqrt(tau + 1e-4)) / (1 - 1e-2)  # alpha_bar(tau) / alpha_bar(0)
    k = T // 2
    assert float(ab[k - 1]) == pytest.approx(float(closed[k - 1]), rel=1e-9)
    assert float(betas.max()) == pytest.approx(0.999) and bool((betas > 0).all())
    m = DiffuSeq(vocab_size=32, emb_dim=4, dim=16, enc_depth=1, dec_depth=1, heads=2, max_src_len=8, max_trg_len=8)
    a, _, s = m.process.coefficients(torch.tensor([0.5, 1.0]))
    assert float(a[0] ** 2) == pytest.approx(float(ab[k - 1]), rel=1e-6)
    assert float(a[1]) < 1e-3 and float(s[1]) > 0.999


def test_strip_case_and_punctuation():
    assert strip_case_and_punctuation("And God said, Let there be light: and there was light.") == (
        "and god said let there be light and there was light"
    )
    assert strip_case_and_punctuation("the LORD's house; (selah)") == "the lord's house selah"


def test_datamodule_files_and_errors(tmp_path, small_tokenizer):
    rows = [{"src": f"and god said {i}", "trg": f"And God said, {i}."} for i in range(40)]
    f = tmp_path / "train.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    small_tokenizer.save(tmp_path / "tok.json")
    dm = Seq2SeqDataModule(
        task=None, train_files=[str(f)], tokenizer=str(tmp_path / "tok.json"), src_len=16, trg_len=16, batch_size=4
    )
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["x0"].shape == (4, 16) and batch["src"].shape == (4, 16) and batch["src_mask"].shape == (4, 16)
    eos = small_tokenizer.eos_id
    assert ((batch["x0"] == eos).sum(1) == 1).all()
    assert len(dm.val_set) == 2 and len(dm.train_set) == 38
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(rows[0]) + "\n" + json.dumps({"src": "only"}) + "\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: missing key 'trg'"):
        Seq2SeqDataModule(task=None, train_files=[str(bad)], tokenizer=str(tmp_path / "tok.json")).setup()
    long = tmp_path / "long.jsonl"
    long.write_text("".join(json.dumps(r) + "\n" for r in rows[:3]) + json.dumps({"src": "a " * 40, "trg": "b"}) + "\n")
    with pytest.raises(ValueError, match=r"long\.jsonl:4: src is \d+ tokens long, longer than the block"):
        Seq2SeqDataModule(
            task=None,
            train_files=[str(long)],
            val_files=[str(f)],
            tokenizer=str(tmp_path / "tok.json"),
            src_len=16,
            trg_len=16,
        ).setup()


def _tiny(**kw):
    torch.manual_seed(0)
    return DiffuSeq(
        vocab_size=64,
        emb_dim=8,
        dim=32,
        enc_depth=1,
        dec_depth=1,
        heads=2,
        max_src_len=12,
        max_trg_len=10,
        num_steps=100,
        **kw,
    )


def _batch():
    g = torch.Generator().manual_seed(0)
    src = torch.randint(4, 64, (4, 12), generator=g)
    mask = torch.ones_like(src)
    mask[:, 9:] = 0
    return {"x0": torch.randint(4, 64, (4, 10), generator=g), "src": src, "src_mask": mask}


@pytest.mark.parametrize("self_condition", [True, False])
def test_loss_terms_and_gradients(self_condition):
    m = _tiny(self_condition=self_condition, self_cond_prob=1.0)
    terms = m.loss_terms(_batch(), torch.Generator().manual_seed(1))
    assert set(terms) == {"loss", "mse", "t_T", "rounding"}
    assert all(torch.isfinite(v) for v in terms.values())
    # embeddings start at N(0, 1): the rounding term is already small, the t_T term tiny
    assert float(terms["t_T"].detach()) < 1e-3 and float(terms["rounding"].detach()) < 4.2
    terms["loss"].backward()
    assert m.network.embedding.weight.grad is not None and m.network.embedding.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("copy_attention", [False, True])
def test_source_padding_is_ignored(copy_attention):
    m = _tiny(copy_attention=copy_attention)
    b = _batch()
    other = dict(b)
    other["src"] = b["src"].clone()
    other["src"][:, 9:] = 5  # change only padded positions
    x = torch.randn(4, 10, 8)
    t = torch.full((4,), 0.3)
    with torch.no_grad():
        assert torch.allclose(m.network_forward(x, t, b), m.network_forward(x, t, other), atol=1e-6)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_translate_rounds_to_tokens_with_clamping(sampler):
    m = _tiny()
    b = _batch()
    seen = []
    r = m.translate(
        b["src"],
        b["src_mask"],
        sampler=sampler,
        steps=5,
        generator=torch.Generator().manual_seed(0),
        callback=lambda d: seen.append(d["x0"]),
    )
    assert r.sample.shape == (4, 10) and r.sample.dtype == torch.long and r.nfe == 5
    # clamping: every x0 estimate the sampler used is an embedding row
    E = m.network.embedding.weight.detach()
    for x0 in [*seen, r.info["x"]]:  # ... and so is the final vector (the last step lands on x0_hat)
        d = (x0.reshape(-1, 1, 8) - E[None]).norm(dim=-1).min(1).values
        assert float(d.max()) < 1e-4


def test_copy_path_copies_source_embeddings():
    m = _tiny(copy_attention=True)
    net = m.network
    b = _batch()
    x = torch.randn(4, 10, 8)
    t = torch.full((4,), 0.5)
    with torch.no_grad():
        mem = net.encode(b["src"], b["src_mask"])
        with pytest.raises(ValueError, match="pass the source ids"):
            net.decode(x, t, mem, b["src_mask"])
        # the copy path is exactly the gated attention average of the source tokens' embeddings
        net.out.weight.zero_()
        net.out.bias.zero_()
        net.copy_gate.bias.fill_(50.0)  # gate open
        net.copy_q.weight.zero_()
        net.copy_q.bias.zero_()  # uniform attention over the real source tokens
        y = net.decode(x, t, mem, b["src_mask"], None, b["src"])
        mean_src = net.embed(b["src"][:, :9]).mean(1, keepdim=True)
        assert torch.allclose(y, mean_src.expand_as(y), atol=1e-5)


def test_translate_texts_mbr(small_tokenizer):
    torch.manual_seed(0)
    m = DiffuSeq(
        vocab_size=300, emb_dim=8, dim=32, enc_depth=1, dec_depth=1, heads=2, max_src_len=12, max_trg_len=10,
        num_steps=100, copy_attention=True,
    )  # fmt: skip
    m.attach_tokenizer(small_tokenizer)
    b = _batch()
    one = m.translate_texts(b["src"], b["src_mask"], steps=3, generator=torch.Generator().manual_seed(0))
    again = m.translate(b["src"], b["src_mask"], steps=3, generator=torch.Generator().manual_seed(0)).sample
    assert one == m.decode_ids(again)
    g = torch.Generator().manual_seed(0)
    draws = [m.decode_ids(m.translate(b["src"], b["src_mask"], steps=3, generator=g).sample) for _ in range(3)]
    from difflab.text.metrics import mbr_select

    mbr = m.translate_texts(b["src"], b["src_mask"], draws=3, steps=3, generator=torch.Generator().manual_seed(0))
    assert mbr == mbr_select(draws) and all(h in [d[i] for d in draws] for i, h in enumerate(mbr))
    with pytest.raises(ValueError, match="draws must be >= 1"):
        m.translate_texts(b["src"], draws=0)


def test_fit_checkpoint_and_seq2seq_verb(tmp_path, capsys):
    args = [
        "fit",
        "--config",
        "smoke_diffuseq",
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.enable_progress_bar=false",
        "--trainer.max_steps=2",
        "--data.init_args.max_train_pairs=400",
    ]
    assert main(args) == 0
    ckpts = sorted(Path(tmp_path).rglob("*.ckpt"))
    assert ckpts, "fit wrote no checkpoint"
    inp = tmp_path / "in.jsonl"
    inp.write_text(
        json.dumps({"src": "and god said let there be light", "trg": "And God said, Let there be light:"})
        + "\n"
        + json.dumps({"src": "in the beginning", "id": "gen-1-1 “é”"}, ensure_ascii=False)
        + "\n"
    )
    out = tmp_path / "out.jsonl"
    assert main(["seq2seq", "--ckpt", str(ckpts[-1]), str(inp), str(out), "--steps", "3", "--draws", "2"]) == 0
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 2 and all(isinstance(x["hyp"], str) for x in lines) and "trg" in lines[0]
    assert lines[1]["id"] == "gen-1-1 “é”" and "“é”" in out.read_text(encoding="utf-8")  # fields kept, unescaped
    assert "wrote 2 lines" in capsys.readouterr().out
    long = tmp_path / "long.jsonl"
    long.write_text(json.dumps({"src": "and " * 80}) + "\n")
    with pytest.raises(SystemExit):
        main(["seq2seq", "--ckpt", str(ckpts[-1]), str(long), str(tmp_path / "l.jsonl")])
    assert "long.jsonl:1: src is" in (err := capsys.readouterr().err) and "pass --truncate to cut it" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"trg": "x"}) + "\n")
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["seq2seq", "--ckpt", str(ckpts[-1]), str(bad), str(out), "--overwrite"])
    assert "bad.jsonl:1: missing key 'src'" in capsys.readouterr().err


def test_make_seq2seq_data_verb(tmp_path):
    assert main(["make-seq2seq-data", "--out", str(tmp_path), "--val_size", "10", "--test_size", "10"]) == 0
    test = [json.loads(x) for x in (tmp_path / "test.jsonl").read_text().splitlines()]
    assert len(test) == 10 and all(r["src"] == strip_case_and_punctuation(r["trg"]) for r in test)
    n_train = sum(1 for _ in (tmp_path / "train.jsonl").open())
    assert n_train == 31102 - 20
