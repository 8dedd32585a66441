"""Turn market-data files into the universe dataset (:mod:`impactlab.data.universe`): LOBSTER days and
Binance captures, one partition per instrument and date."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from impactlab.book.binance import rebuild_binance
from impactlab.data.binance import BinanceCapture, load_binance
from impactlab.data.lobster import LobsterDay, find_lobster_pairs, load_lobster, parse_lobster_name
from impactlab.data.universe import InstrumentDay, PartitionKey, write_instrument_day
from impactlab.errors import DataValidationError
from impactlab.features.pipeline import SESSION_CLOSE_S, _infer_tick, lobster_features
from impactlab.features.trades import binance_trades, lobster_trades, state_at

__all__ = ["binance_instrument_days", "build_universe", "lobster_instrument_day"]

NS = 1_000_000_000


def lobster_instrument_day(day: LobsterDay) -> InstrumentDay:
    """A LOBSTER day's top of book and executions (visible and hidden), with ADV and daily volatility from
    the daily file where there is one (as :func:`~impactlab.features.lobster_features` finds them)."""
    from impactlab.data.lobster import midnight_ns

    bp, bz = day.bid()
    ap, az = day.ask()
    tr = lobster_trades(day)
    meta = lobster_features(day).meta
    adv, vol = meta.get("adv"), meta.get("daily_vol")
    return InstrumentDay(
        PartitionKey(day.symbol, day.date),
        {"ts_ns": day.ts_ns, "bid_price": bp[:, 0], "bid_size": bz[:, 0], "ask_price": ap[:, 0],
         "ask_size": az[:, 0]},
        {"ts_ns": tr["ts_ns"], "price": tr["price"], "size": tr["size"], "sign": tr["sign"],
         "pre_state": tr["event_index"] - 1},
        tick_size=day.tick_size,
        session_open_ns=day.session_open_ns,
        session_close_ns=midnight_ns(day.date) + SESSION_CLOSE_S * NS,
        adv=float(adv) if adv is not None else None,
        daily_vol=float(vol) if vol is not None else None,
        source=str(day.message_path),
        extra={"levels": day.levels, "adv_source": meta.get("adv_source")},
    )  # fmt: skip


def binance_instrument_days(cap: BinanceCapture) -> list[InstrumentDay]:
    """A Binance capture's rebuilt top of book and trades, split by UTC date of the receive time (a
    capture across midnight gives two partitions; the later one starts from the book in force)."""
    book = rebuild_binance(cap, depth=1)
    ts = book.local_ns
    order = np.argsort(ts, kind="stable")
    if not np.array_equal(order, np.arange(ts.size)):
        raise DataValidationError("rebuilt book states are not in time order", path=cap.paths[0], field="local_ns")
    tr = binance_trades(cap)
    pre = state_at(ts, tr["ts_ns"], strict=True)
    tick = _infer_tick(np.concatenate([book.bid_price[:, 0], book.ask_price[:, 0]]))
    day_of = (ts // (86_400 * NS)).astype(np.int64)
    tday = (tr["ts_ns"] // (86_400 * NS)).astype(np.int64)
    out = []
    for d in np.unique(day_of):
        sel = np.flatnonzero(day_of == d)
        lo = int(sel[0])
        tsel = np.flatnonzero(tday == d)
        date = dt.datetime.fromtimestamp(int(d) * 86_400, dt.UTC).date()
        out.append(InstrumentDay(
            PartitionKey(cap.symbol.upper() + ("-PERP" if cap.market == "usdm" else ""), date),
            {"ts_ns": ts[sel], "bid_price": book.bid_price[sel, 0], "bid_size": book.bid_size[sel, 0],
             "ask_price": book.ask_price[sel, 0], "ask_size": book.ask_size[sel, 0]},
            {"ts_ns": tr["ts_ns"][tsel], "price": tr["price"][tsel], "size": tr["size"][tsel],
             "sign": tr["sign"][tsel].astype(np.int8), "pre_state": np.maximum(pre[tsel] - lo, -1)},
            tick_size=tick, session_open_ns=0, session_close_ns=0,
            source=" + ".join(str(p) for p in cap.paths), extra={"market": cap.market},
        ))  # fmt: skip
    return out


def build_universe(
    data_dir: str | Path, out_dir: str | Path, *, on_written: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Write every LOBSTER day (its deepest file: the most messages) and every Binance capture (files of
    one market and symbol loaded together, in time order) under ``data_dir`` as partitions of ``out_dir``.

    Returns ``{"partitions": [...], "rows": {...}, "skipped": [...]}``.
    """
    root = Path(data_dir)
    written: list[str] = []
    rows: dict[str, dict[str, int]] = {}
    skipped: list[str] = []
    best: dict[tuple[str, dt.date], tuple[int, Path, Path]] = {}
    for sub in (root / "lobster", root / "lobster" / "fixtures"):
        if not sub.is_dir():
            continue
        for msg, ob in find_lobster_pairs(sub):
            name = parse_lobster_name(msg)
            k = (name.symbol, name.date)
            if k not in best or name.levels > best[k][0]:
                best[k] = (name.levels, msg, ob)
    days: list[InstrumentDay] = []
    for _, msg, ob in best.values():
        days.append(lobster_instrument_day(load_lobster(msg, ob)))
    groups: dict[tuple[str, str], list[Path]] = defaultdict(list)
    for p in sorted((root / "binance").glob("*/*.gz")):
        groups[(p.parent.name, p.name.split("_")[0])].append(p)
    for (market, _sym), paths in sorted(groups.items()):
        try:
            days.extend(binance_instrument_days(load_binance(paths)))
        except DataValidationError as exc:
            skipped.append(f"binance {market} {paths}: {exc}")
    for d in days:
        write_instrument_day(out_dir, d)
        written.append(str(d.key))
        rows[str(d.key)] = {"states": d.n_states, "trades": d.n_trades}
        if on_written:
            on_written(str(d.key))
    return {"partitions": written, "rows": rows, "skipped": skipped}
