"""Daily OHLCV loader on every daily file in the shared data."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from impactlab.errors import DataValidationError
from impactlab.features import DailyBars
from impactlab.testing.paths import shared_files


@pytest.mark.parametrize("name", shared_files("daily"))
def test_every_daily_file_loads(data: Path, name: str) -> None:
    path = data / "daily" / name
    raw = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
    bars = DailyBars.load(path)
    assert len(bars.frame) + len(bars.quarantine) == raw.decode().strip().count("\n")  # header excluded
    assert len(bars.quarantine) == 0
    dates = bars.frame["Date"].to_numpy()
    assert np.all(dates[1:] > dates[:-1])
    mid_date = bars.frame["Date"].iloc[len(bars.frame) // 2]
    stats = bars.stats(mid_date)
    assert stats.adv > 0 and 0 < stats.daily_vol < 0.2 and stats.split_factor == 1.0


def test_bad_daily_cell_names_line(tmp_path: Path) -> None:
    p = tmp_path / "yahoofinance-X-1-2.csv"
    p.write_text("Date,Open,High,Low,Close,Adj Close,Volume\n2020-01-02,1,1,1,1,1,100\n2020-01-03,1,1,1,oops,1,100\n")
    with pytest.raises(DataValidationError) as info:
        DailyBars.load(p)
    assert info.value.line == 3 and info.value.field == "Close" and info.value.path == str(p)


def test_too_little_history(data: Path) -> None:
    import datetime as dt

    bars = DailyBars.load(data / "daily" / shared_files("daily")[0])
    first = bars.frame["Date"].iloc[5]
    with pytest.raises(DataValidationError, match="trading days before"):
        bars.stats(first if isinstance(first, dt.date) else first.date())


def test_bad_daily_rows_are_quarantined_not_dropped(tmp_path: Path) -> None:
    p = tmp_path / "yahoofinance-X-1-2.csv"
    p.write_text(
        "Date,Open,High,Low,Close,Adj Close,Volume\n2020-01-02,1,1,1,1,1,100\n2020-01-03,1,1,1,-2,1,100\n"
        "2020-01-06,1,1,1,1,1,-5\n2020-01-07,1,1,1,1,1,0\n"
    )
    bars = DailyBars.load(p)
    assert len(bars.frame) == 2 and bars.quarantine.counts() == {"negative_volume": 1, "non_positive_price": 1}
    assert bars.quarantine.lines().tolist() == [3, 4]
