"""Readers, default series, windows: formats, masks, irregular timestamps and error messages."""

import json

import numpy as np
import pytest

from difflab.timeseries.data import DataError, ForecastDataModule, WindowDataset, read_table
from difflab.timeseries.data.sources import SPLITS, load_builtin


def write(path, text):
    path.write_text(text)
    return path


def test_wide_csv_with_missing_values(tmp_path):
    p = write(
        tmp_path / "ett.csv", "date,HUFL,OT\n2016-07-01 00:00,1.5,30\n2016-07-01 01:00,,31\n2016-07-01 02:00,2.5,NaN\n"
    )
    t = read_table(p)
    assert t.names == ["HUFL", "OT"] and t.freq == "h"
    assert t.observed.tolist() == [[True, True], [False, True], [True, False]]
    assert np.isnan(t.values[1, 0]) and t.values[2, 0] == 2.5


def test_long_csv_aligned_with_holes(tmp_path):
    p = write(
        tmp_path / "long.csv",
        "item_id,timestamp,value\na,2020-01-01,1\na,2020-01-02,2\nb,2020-01-02,5\nb,2020-01-03,6\n",
    )
    t = read_table(p)
    assert t.names == ["a", "b"] and len(t) == 3
    assert t.observed.tolist() == [[True, False], [True, True], [False, True]]


def test_jsonl_gluonts(tmp_path):
    lines = [{"start": "2021-01-01 00:00", "target": [1, 2, None, 4]}, {"start": "2021-01-01 01:00", "target": [7, 8]}]
    p = write(tmp_path / "d.jsonl", "\n".join(json.dumps(x) for x in lines))
    t = read_table(p, freq="h")
    assert len(t) == 4 and t.values.shape == (4, 2)
    assert np.isnan(t.values[2, 0]) and t.values[1, 1] == 7 and np.isnan(t.values[0, 1])
    with pytest.raises(DataError, match="frequency"):
        read_table(p)


def test_irregular_timestamps_keep_their_spacing(tmp_path):
    p = write(
        tmp_path / "irr.csv",
        "time,x\n2020-01-01 00:00,1\n2020-01-01 01:00,2\n2020-01-01 03:30,3\n2020-01-01 04:00,4\n"
        "2020-01-01 06:00,5\n2020-01-01 07:00,6\n",
    )
    t = read_table(p)
    assert t.freq is None
    ds = WindowDataset(t, 3, 2, np.array([3]))
    item = ds[0]
    assert item["times"].tolist() == pytest.approx([0.0, 1.0, 3.5, 4.0, 6.0], abs=1e-6)


@pytest.mark.parametrize(
    "text, match",
    [
        ("date,x\n2020-01-01,1\nnot a date,2\n", r"bad.csv: column 'date', row 3: unparsable timestamp 'not a date'"),
        ("date,x\n2020-01-01,1\n2020-01-02,2\n2020-01-01,3\n", r"bad.csv: column 'date', row 4: duplicate timestamp"),
        ("date,x\n2020-01-01,1\n2020-01-02,abc\n", r"bad.csv: column 'x', row 3: non-numeric value 'abc'"),
    ],
)
def test_errors_name_file_column_row(tmp_path, text, match):
    p = write(tmp_path / "bad.csv", text)
    with pytest.raises(DataError, match=match):
        read_table(p)


def test_text_columns_are_left_out_with_a_note(tmp_path, capsys):
    """A wide CSV's column without one number (a site name) is not a series: left out, and said so."""
    p = write(tmp_path / "sites.csv", "date,load,site,temp\n2020-01-01,1,A,\n2020-01-02,2,A,3.5\n")
    table = read_table(p)
    assert table.names == ["load", "temp"] and np.isnan(table.values[0, 1])
    assert "sites.csv: text column(s) 'site' left out" in capsys.readouterr().out
    with pytest.raises(DataError, match=r"only.csv: no numeric column besides the timestamps 'date'"):
        read_table(write(tmp_path / "only.csv", "date,site\n2020-01-01,A\n"))


def test_series_too_short_names_file_and_column(tmp_path):
    p = write(tmp_path / "short.csv", "date,load\n" + "".join(f"2020-01-{d:02d},{d}\n" for d in range(1, 11)))
    with pytest.raises(DataError, match=r"short.csv: column\(s\) \['load'\].*10 rows.*shorter than context \+ horizon"):
        ForecastDataModule(str(p), context_length=8, prediction_length=4).load()


def test_builtin_sources_offline():
    taylor = load_builtin("taylor")
    assert taylor.values.shape == (4032, 1) and taylor.freq == "30min"
    sf = load_builtin("sf_temps")
    assert sf.freq == "h" and (~sf.observed).sum() == 1  # the hour skipped by daylight saving stays missing
    tmy = load_builtin("tmy3")
    assert tmy.values.shape == (8760, 8) and "temp_air" in tmy.names


def test_splits_and_per_window_scaling():
    dm = ForecastDataModule("taylor", context_length=96, prediction_length=48)
    dm.setup()
    ts = dm.table.timestamps
    vs, te = (np.datetime64(SPLITS["taylor"].val_start), np.datetime64(SPLITS["taylor"].test_start))
    assert ts[dm.train_set.starts.max() + 47] < vs
    assert (ts[dm.test_set.starts] >= te).all() and len(dm.test_set) == 14
    item = dm.test_set[0]
    ctx = item["x0"][:96, 0]
    assert abs(float(ctx.mean())) < 1e-4 and abs(float(ctx.std(unbiased=False)) - 1) < 1e-2
    raw = dm.table.values[dm.test_set.starts[0] - 96 : dm.test_set.starts[0] + 48, 0]
    back = item["x0"][:, 0] * item["scale"][0, 0] + item["loc"][0, 0]
    assert np.allclose(back.numpy(), raw, rtol=1e-5)
    assert item["cond_mask"][:96].all() and not item["cond_mask"][96:].any() and item["target_mask"][96:].all()


def test_missing_values_are_masked_not_filled(tmp_path):
    rows = "".join(f"2020-01-01 {h:02d}:00,{'' if h == 5 else h}\n" for h in range(24))
    p = write(tmp_path / "m.csv", "date,x\n" + rows)
    t = read_table(p)
    ds = WindowDataset(t, 8, 4, np.array([8]))
    item = ds[0]
    assert item["observed"][5, 0] == 0 and item["cond_mask"][5, 0] == 0 and item["x0"][5, 0] == 0


def test_gap_pattern_hides_one_contiguous_run(tmp_path):
    rows = "".join(f"2020-01-{1 + h // 24:02d} {h % 24:02d}:00,{h},{2 * h}\n" for h in range(96))
    t = read_table(write(tmp_path / "g.csv", "date,a,b\n" + rows))
    starts = np.arange(40, 80, 4)
    ds = WindowDataset(t, 24, 16, starts, task="impute", impute_ratio=0.25, impute_pattern="gap")
    for k in range(len(ds)):
        hidden = ds[k]["target_mask"].numpy() > 0
        assert (hidden[:, 0] == hidden[:, 1]).all()  # every series is out at once
        steps = np.flatnonzero(hidden[:, 0])
        assert len(steps) == 10 and (np.diff(steps) == 1).all()  # round(0.25 * 40) consecutive steps
        assert not (ds[k]["cond_mask"].numpy() * hidden).any()
    assert len({int(np.flatnonzero(ds[k]["target_mask"][:, 0])[0]) for k in range(len(ds))}) > 1
    train = WindowDataset(t, 24, 16, starts, task="impute", random_ratio=True, impute_pattern="gap")
    kinds = set()
    for k in range(len(train)):
        h = train[k]["target_mask"].numpy() > 0
        steps = np.flatnonzero(h[:, 0])
        gap = len(steps) > 0 and (np.diff(steps) == 1).all() and (h[:, 0] == h[:, 1]).all()
        kinds.add(bool(gap))
    assert kinds == {True, False}  # training mixes gaps and random values
    with pytest.raises(ValueError, match="impute_pattern"):
        WindowDataset(t, 24, 16, starts, task="impute", impute_pattern="blocks")
