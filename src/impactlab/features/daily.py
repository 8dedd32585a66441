"""Daily OHLCV: average daily volume and daily volatility, on the intraday data's share basis."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from impactlab.config import data_dir
from impactlab.data.validation import Quarantine
from impactlab.errors import DataValidationError

__all__ = ["DailyBars", "DailyStats", "find_daily"]


def find_daily(symbol: str, root: str | Path | None = None) -> Path | None:
    """The ``daily/yahoofinance-SYMBOL-*.csv`` file for ``symbol`` under the data directory, if any."""
    base = Path(root) if root is not None else data_dir()
    hits = sorted((base / "daily").glob(f"yahoofinance-{symbol.upper()}-*.csv"))
    return hits[0] if hits else None


@dataclass(frozen=True)
class DailyStats:
    """ADV and volatility for one day, from the ``window`` trading days before it.

    Attributes
    ----------
    adv
        Average daily volume in shares, on the basis of ``reference_price`` (see ``split_factor``).
    daily_vol
        Standard deviation of daily log returns, fraction of price.
    split_factor
        Ratio of the intraday price to the daily file's close on the day; split-adjusted daily files
        (e.g. Yahoo's GOOG after its 2014 2.002:1 split) show volume multiplied by it, so ``adv`` is
        divided by it.  1.0 when the prices agree within 20%.
    """

    adv: float
    daily_vol: float
    window: int
    split_factor: float
    source: str


@dataclass(frozen=True, eq=False)
class DailyBars:
    """Daily OHLCV rows (``Date, Open, High, Low, Close, Adj Close, Volume``).

    Text in ``Close`` or ``Volume`` is an error naming the line; a non-positive close or a negative volume
    is quarantined (``quarantine``).  Zero volume is kept: index files have such days.
    """

    frame: pd.DataFrame
    path: Path
    quarantine: Quarantine

    @classmethod
    def load(cls, path: str | Path) -> DailyBars:
        """Read a Yahoo-style daily CSV."""
        p = Path(path)
        if not p.exists():
            raise DataValidationError("file not found", path=p)
        df = pd.read_csv(p)
        for col in ("Date", "Close", "Volume"):
            if col not in df.columns:
                raise DataValidationError(f"missing column {col!r}", path=p, line=1, field=col)
        df["Date"] = pd.to_datetime(df["Date"]).dt.date
        for col in ("Close", "Volume"):
            num = pd.to_numeric(df[col], errors="coerce")
            text = num.isna() & df[col].notna()
            if text.any():
                i = int(np.flatnonzero(text.to_numpy())[0])
                raise DataValidationError("not a number", path=p, line=i + 2, field=col, value=df[col].iloc[i])
            df[col] = num
        q = Quarantine(source=str(p))
        lines = np.arange(2, len(df) + 2, dtype=np.int64)
        bad: NDArray[np.bool_] = np.zeros(len(df), dtype=bool)
        close = df["Close"].to_numpy(float)
        volume = df["Volume"].to_numpy(float)
        bad = q.reject(~(close > 0), lines, "Close", close, "non_positive_price", bad)
        bad = q.reject(~(volume >= 0), lines, "Volume", volume, "negative_volume", bad)
        df = df[~bad]
        return cls(df.sort_values("Date").reset_index(drop=True), p, q)

    def stats(self, date: dt.date, *, window: int = 20, reference_price: float | None = None) -> DailyStats:
        """ADV and daily volatility over the ``window`` trading days strictly before ``date``.

        Parameters
        ----------
        reference_price
            An intraday price on ``date``; used to detect a split adjustment of the daily file.
        """
        df = self.frame
        prior = df[df["Date"] < date].tail(window + 1)
        if len(prior) < window + 1:
            raise DataValidationError(
                f"need {window + 1} trading days before {date}, the file has {len(prior)}", path=self.path
            )
        factor = 1.0
        if reference_price is not None:
            today = df[df["Date"] == date]
            close = float(today["Close"].iloc[0]) if len(today) else float(prior["Close"].iloc[-1])
            ratio = reference_price / close
            if abs(ratio - 1.0) > 0.2:
                factor = ratio
        vol = prior["Volume"].to_numpy(float)[1:]
        rets = np.diff(np.log(prior["Close"].to_numpy(float)))
        return DailyStats(
            adv=float(vol.mean() / factor),
            daily_vol=float(rets.std(ddof=1)),
            window=window,
            split_factor=factor,
            source=str(self.path),
        )
