"""Feature sets of a whole instrument-day from any source: per book state, per trade and per bar."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from impactlab.data.market import MarketDay
from impactlab.data.store import write_parquet
from impactlab.errors import DataValidationError
from impactlab.features.bars import time_bars
from impactlab.features.book import book_features, ofi_events
from impactlab.features.daily import DailyBars, find_daily
from impactlab.features.trades import adverse_selection_bps, pre_trade_state, trade_state

__all__ = ["FeatureSet", "market_features"]


@dataclass(frozen=True, eq=False)
class FeatureSet:
    """Per-event, per-trade and per-bar features of one instrument-day, with how they were made."""

    symbol: str
    events: pa.Table
    trades: pa.Table
    bars: pa.Table
    meta: dict[str, Any] = field(default_factory=dict)

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``events``, ``trades`` and ``bars`` Parquet files under ``out_dir``."""
        out = Path(out_dir)
        meta = {k: str(v) for k, v in self.meta.items()}
        return {
            name: write_parquet(getattr(self, name), out / f"{self.symbol}_{name}.parquet", metadata=meta)
            for name in ("events", "trades", "bars")
        }


def _assemble(
    *,
    symbol: str,
    state_ts: NDArray[np.int64],
    feats: dict[str, NDArray[np.float64]],
    ofi: NDArray[np.float64],
    event_extra: dict[str, NDArray[Any]],
    trades: dict[str, NDArray[Any]],
    pre_index: NDArray[np.int64],
    horizon_s: float,
    bar_s: float,
    origin_ns: int,
    end_ns: int | None,
    adv: float | None,
    meta: dict[str, Any],
) -> FeatureSet:
    """Events, trades (with the adverse-selection proxy) and bars from per-state features and trades."""
    events = pa.table({"ts_ns": state_ts, **feats, "ofi": ofi, **event_extra})
    adverse = adverse_selection_bps(trades["sign"], pre_index, state_ts, feats["mid"], trades["ts_ns"], horizon_s)
    trade_table = pa.table({**trades, f"adverse_selection_{horizon_s:g}s_bps": adverse})
    bars = time_bars(
        state_ts=state_ts,
        mid=feats["mid"],
        spread_bps=feats["spread_bps"],
        depth_1=feats["bid_depth_1"] + feats["ask_depth_1"],
        ofi=ofi,
        trade_ts=trades["ts_ns"],
        trade_size=trades["size"],
        trade_sign=trades["sign"],
        bar_s=bar_s,
        origin_ns=origin_ns,
        end_ns=end_ns,
        adv=adv,
    )
    return FeatureSet(symbol=symbol, events=events, trades=trade_table, bars=bars, meta=meta)


def market_features(
    day: MarketDay,
    *,
    bar_s: float = 10.0,
    depth_levels: int = 5,
    horizon_s: float = 5.0,
    adv: float | None = None,
    daily_path: str | Path | None = None,
) -> FeatureSet:
    """Features of an instrument-day from any source.

    Parameters
    ----------
    bar_s
        Bar length, seconds.  Bars start at :attr:`MarketDay.start_ns` (the session open for a full
        day; a capture's first state floored to the bar otherwise) and end at the close for a full day.
    depth_levels
        Levels for cumulative depth and depth imbalance (at most the depth the source shows).
    horizon_s
        Horizon of the adverse-selection proxy, seconds.
    adv
        Average daily volume (in the instrument's size unit) for participation.  By default it comes
        from the ``daily/yahoofinance-SYMBOL-*.csv`` file (``daily_path`` to name another), over the 20
        trading days before the day, put on the data's share basis; with no file, participation is null
        and ``meta['adv_source']`` says why.
    """
    if len(day.book) == 0:
        raise DataValidationError(f"{day.label}: no book states to compute features from", path=day.paths[0])
    bp, bz = day.bid()
    ap, az = day.ask()
    feats = book_features(bp, bz, ap, az, tick_size=day.tick_size, depth_levels=depth_levels)
    ofi = ofi_events(bp[:, 0], bz[:, 0], ap[:, 0], az[:, 0])
    tr = day.trades
    n = len(day)
    at = trade_state(day)
    trade_sign = np.zeros(n, np.int8)
    trade_size = np.zeros(n, np.float64)
    np.add.at(trade_size, at, tr.size)
    trade_sign[at] = tr.sign
    meta: dict[str, Any] = {
        "source": " + ".join(str(p) for p in day.paths),
        "format": day.source,
        "depth": day.depth,
        "bar_s": bar_s,
        "horizon_s": horizon_s,
        "tick_size": day.tick_size,
    }
    if adv is None:
        path = Path(daily_path) if daily_path else find_daily(day.symbol)
        if path is None:
            meta["adv_source"] = f"none: no daily file for {day.symbol}; participation is null"
        else:
            finite = feats["mid"][np.isfinite(feats["mid"])]
            ref = float(finite[-1])  # the last mid is the closest intraday price to the daily close
            stats = DailyBars.load(path).stats(day.date, reference_price=ref)
            adv = stats.adv
            meta.update(adv_source=stats.source, adv=adv, daily_vol=stats.daily_vol, split_factor=stats.split_factor)
    else:
        meta.update(adv_source="given", adv=adv)
    open_ns, close_ns = day.session_bounds_ns
    bar_ns = round(bar_s * 1e9)
    origin = day.start_ns if day.start_ns == open_ns else day.first_ns // bar_ns * bar_ns
    end = day.end_ns - 1 if day.end_ns == close_ns else None
    trades: dict[str, NDArray[Any]] = {
        "ts_ns": tr.ts_ns,
        "price": tr.price,
        "size": tr.size,
        "sign": tr.sign,
        "hidden": tr.hidden,
    }
    return _assemble(
        symbol=day.symbol,
        state_ts=day.ts_ns,
        feats=feats,
        ofi=ofi,
        event_extra={"trade_sign": trade_sign, "trade_size": trade_size, "synced": day.book.synced},
        trades=trades,
        pre_index=pre_trade_state(day),
        horizon_s=horizon_s,
        bar_s=bar_s,
        origin_ns=origin,
        end_ns=end,
        adv=adv,
        meta=meta,
    )
