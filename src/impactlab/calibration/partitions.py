"""Turn market-data files into the universe dataset (:mod:`impactlab.data.universe`): every instrument-day
the catalog finds, in any format, one partition per instrument and date."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from impactlab.data.market import MarketDay
from impactlab.data.universe import InstrumentDay, PartitionKey, write_instrument_day
from impactlab.errors import CalibrationError, DataValidationError
from impactlab.features.pipeline import market_features
from impactlab.features.trades import pre_trade_state

__all__ = ["build_universe", "instrument_day"]

NS = 1_000_000_000


def instrument_day(day: MarketDay) -> InstrumentDay:
    """A day's top of book and prints (visible and hidden), with ADV and daily volatility from the daily
    file where there is one (as :func:`~impactlab.features.market_features` finds them)."""
    bp, bz = day.bid()
    ap, az = day.ask()
    tr = day.trades
    meta = market_features(day).meta
    adv, vol = meta.get("adv"), meta.get("daily_vol")
    open_ns, close_ns = (day.start_ns, day.end_ns) if day.covers_session else (0, 0)
    sym = day.symbol.upper() + ("-PERP" if day.venue == "BINANCE-USDM" else "")
    return InstrumentDay(
        PartitionKey(sym, day.date),
        {"ts_ns": day.ts_ns, "bid_price": bp[:, 0], "bid_size": bz[:, 0], "ask_price": ap[:, 0],
         "ask_size": az[:, 0]},
        {"ts_ns": tr.ts_ns, "price": tr.price, "size": tr.size, "sign": tr.sign.astype(np.int8),
         "pre_state": pre_trade_state(day)},
        tick_size=day.tick_size,
        session_open_ns=open_ns,
        session_close_ns=close_ns,
        adv=float(adv) if adv is not None else None,
        daily_vol=float(vol) if vol is not None else None,
        source=" + ".join(str(p) for p in day.paths),
        extra={"levels": day.depth, "adv_source": meta.get("adv_source"), "format": day.source,
               "venue": day.venue},
    )  # fmt: skip


def build_universe(
    data_dir: str | Path, out_dir: str | Path, *, on_written: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Write every instrument-day the catalog finds under ``data_dir`` (the deepest file of each symbol,
    venue and date; test fixtures too) as partitions of ``out_dir``.

    Returns ``{"partitions": [...], "rows": {...}, "skipped": [...]}``.
    """
    from impactlab.data.catalog import scan

    cat = scan(data_dir)
    written: list[str] = []
    rows: dict[str, dict[str, int]] = {}
    skipped: list[str] = [*cat.notes]
    best: dict[tuple[str, str, dt.date], Any] = {}
    for e in cat.entries:
        k = (e.symbol, e.venue, e.date)
        if k not in best or (e.depth, e.rows) > (best[k].depth, best[k].rows):
            best[k] = e
    for e in best.values():
        try:
            d = instrument_day(e.load())
        except (DataValidationError, CalibrationError) as exc:
            skipped.append(f"{e.key}: {exc}")
            continue
        write_instrument_day(out_dir, d)
        written.append(str(d.key))
        rows[str(d.key)] = {"states": d.n_states, "trades": d.n_trades}
        if on_written:
            on_written(str(d.key))
    return {"partitions": written, "rows": rows, "skipped": skipped}
