"""Feature sets for a whole LOBSTER day or Binance capture: events, trades and bars."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from impactlab.book.binance import BinanceBook, rebuild_binance
from impactlab.data.binance import PRICE_SCALE, BinanceCapture
from impactlab.data.lobster import LobsterDay, midnight_ns
from impactlab.data.store import write_parquet
from impactlab.features.bars import time_bars
from impactlab.features.book import book_features, ofi_events
from impactlab.features.daily import DailyBars, find_daily
from impactlab.features.trades import adverse_selection_bps, binance_trades, lobster_trades, state_at

__all__ = ["FeatureSet", "binance_features", "lobster_features"]

SESSION_CLOSE_S = 57_600  # 16:00 New York


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


def lobster_features(
    day: LobsterDay,
    *,
    bar_s: float = 10.0,
    depth_levels: int = 5,
    horizon_s: float = 5.0,
    adv: float | None = None,
    daily_path: str | Path | None = None,
) -> FeatureSet:
    """Features of a LOBSTER day.

    Parameters
    ----------
    bar_s
        Bar length, seconds; bars start at 09:30 New York time and end at 16:00.
    depth_levels
        Levels for cumulative depth and depth imbalance.
    horizon_s
        Horizon of the adverse-selection proxy, seconds.
    adv
        Average daily volume in shares for participation.  By default it is computed from the
        ``daily/yahoofinance-SYMBOL-*.csv`` file (``daily_path`` to name another), over the 20 trading
        days before the day, put on LOBSTER's share basis; with no file, participation is null and
        ``meta['adv_source']`` says why.
    """
    bp, bz = day.bid()
    ap, az = day.ask()
    feats = book_features(bp, bz, ap, az, tick_size=day.tick_size, depth_levels=depth_levels)
    ofi = ofi_events(bp[:, 0], bz[:, 0], ap[:, 0], az[:, 0])
    tr = lobster_trades(day)
    n = len(day)
    trade_sign = np.zeros(n, np.int8)
    trade_size = np.zeros(n, np.float64)
    trade_sign[tr["event_index"]] = tr["sign"]
    trade_size[tr["event_index"]] = tr["size"]

    meta: dict[str, Any] = {"source": str(day.message_path), "bar_s": bar_s, "horizon_s": horizon_s}
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
    return _assemble(
        symbol=day.symbol,
        state_ts=day.ts_ns,
        feats=feats,
        ofi=ofi,
        event_extra={"trade_sign": trade_sign, "trade_size": trade_size},
        trades={k: tr[k] for k in ("ts_ns", "price", "size", "sign", "hidden")},
        pre_index=tr["event_index"] - 1,  # the state before the execution message
        horizon_s=horizon_s,
        bar_s=bar_s,
        origin_ns=day.session_open_ns,
        end_ns=midnight_ns(day.date) + SESSION_CLOSE_S * 1_000_000_000 - 1,
        adv=adv,
        meta=meta,
    )


def _infer_tick(prices: NDArray[np.float64]) -> float:
    keys = np.unique(np.rint(prices[np.isfinite(prices)] * PRICE_SCALE).astype(np.int64))
    if keys.size < 2:
        return 1.0 / PRICE_SCALE
    return float(np.gcd.reduce(np.diff(keys))) / PRICE_SCALE


def binance_features(
    cap: BinanceCapture,
    book: BinanceBook | None = None,
    *,
    bar_s: float = 1.0,
    depth_levels: int = 5,
    horizon_s: float = 5.0,
    adv: float | None = None,
) -> FeatureSet:
    """Features of a Binance capture, from its rebuilt book (rebuilt here if not given).

    Times are local receive times; bars start at the first state, floored to the bar length.  Crypto
    has no daily file here, so participation is null unless ``adv`` is given.
    """
    book = book if book is not None else rebuild_binance(cap, depth=max(depth_levels, 1))
    tick = _infer_tick(np.concatenate([book.bid_price[:, 0], book.ask_price[:, 0]]))
    feats = book_features(
        book.bid_price, book.bid_size, book.ask_price, book.ask_size, tick_size=tick, depth_levels=depth_levels
    )
    ofi = ofi_events(book.bid_price[:, 0], book.bid_size[:, 0], book.ask_price[:, 0], book.ask_size[:, 0])
    if not math.isfinite(tick) or tick <= 0:
        raise ValueError(f"could not infer a tick size, got {tick}")
    tr = binance_trades(cap)
    bar_ns = round(bar_s * 1e9)
    meta = {
        "source": " + ".join(str(p) for p in cap.paths),
        "bar_s": bar_s,
        "horizon_s": horizon_s,
        "tick_size": tick,
        "adv_source": "given" if adv else "none: no daily volume for crypto captures",
    }
    return _assemble(
        symbol=cap.symbol,
        state_ts=book.local_ns,
        feats=feats,
        ofi=ofi,
        event_extra={"synced": book.synced},
        trades=tr,
        pre_index=state_at(book.local_ns, tr["ts_ns"], strict=True),
        horizon_s=horizon_s,
        bar_s=bar_s,
        origin_ns=int(book.local_ns[0] // bar_ns * bar_ns),
        end_ns=None,
        adv=adv,
        meta=meta,
    )
