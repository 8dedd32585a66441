"""Generic trades + quotes (CSV or Parquet, any column names) into a :class:`MarketDay`.

What ``impactlab data load --kind quotes|trades`` accepts is usable by every command: the quotes are the
book states (top of book), the trades the prints.  Columns are mapped onto impactlab's names with
``{schema_name: source_name}`` (``ts_ns``, ``bid_price``, ``bid_size``, ``ask_price``, ``ask_size``; ``ts_ns``,
``price``, ``size``, ``sign``, ``trade_id``); times are ns, us, ms or s since the epoch or ISO-8601, naive
ISO times in ``tz``.  Trades without a sign are signed by Lee–Ready against the quotes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from impactlab.data.market import (
    AssetClass,
    BookStates,
    Events,
    InstrumentSpec,
    MarketDay,
    SessionCalendar,
    Trades,
)
from impactlab.data.tabular import TimeUnit, load_quotes, load_trades
from impactlab.data.taq import lee_ready
from impactlab.errors import DataValidationError

__all__ = ["load_generic"]


def load_generic(
    *,
    quotes: str | Path,
    trades: str | Path | None = None,
    quote_mapping: Mapping[str, str] | None = None,
    trade_mapping: Mapping[str, str] | None = None,
    time_unit: TimeUnit = "ns",
    tz: str | None = None,
    symbol: str | None = None,
    venue: str = "GENERIC",
    asset_class: AssetClass = "equity",
    tick_size: float | None = None,
    calendar: SessionCalendar | None = None,
    multiplier: float = 1.0,
) -> MarketDay:
    """Quotes (and optionally trades) of one instrument into a :class:`MarketDay`.

    Parameters
    ----------
    quotes, trades
        The files.  Rows that break a rule are quarantined (``report`` counts them by rule).
    symbol
        The instrument; by default the quotes file's name up to ``_quotes``.
    tick_size
        By default inferred from the quoted prices (the gcd of their differences).
    calendar
        By default US equities for ``asset_class='equity'``, else around the clock.
    """
    qp = Path(quotes)
    ql = load_quotes(qp, mapping=quote_mapping, time_unit=time_unit, tz=tz)
    if ql.table.num_rows == 0:
        raise DataValidationError(f"no valid quotes ({ql.report.reasons})", path=qp)
    ts = ql.column("ts_ns").astype(np.int64)
    bp, bz = ql.column("bid_price").astype(float), ql.column("bid_size").astype(float)
    ap, az = ql.column("ask_price").astype(float), ql.column("ask_size").astype(float)
    if tick_size is None:
        from impactlab.data.binance import infer_tick

        tick_size = infer_tick(np.concatenate([bp, ap]))
    sym = symbol or qp.name.split("_quotes")[0].split(".")[0].upper()
    cal = calendar or (SessionCalendar.us_equities() if asset_class == "equity" else SessionCalendar.always())
    spec = InstrumentSpec(
        symbol=sym,
        venue=venue,
        asset_class=asset_class,
        tick_size=tick_size,  # type: ignore[arg-type]
        multiplier=multiplier,
        calendar=cal,
        size_unit="shares" if asset_class == "equity" else "contracts",
    )
    book = BookStates(
        ts_ns=ts,
        bid_price=bp[:, None],
        bid_size=bz[:, None],
        ask_price=ap[:, None],
        ask_size=az[:, None],
        event_index=-np.ones(ts.size, np.int64),
        synced=np.ones(ts.size, bool),
    )
    notes = [f"generic quotes ({ts.size} rows kept): top of book only, depth beyond level 1 is unknown"]
    paths: tuple[Path, ...] = (qp,)
    if trades is not None:
        tp = Path(trades)
        tl = load_trades(tp, mapping=trade_mapping, time_unit=time_unit, tz=tz)
        t_ts = tl.column("ts_ns").astype(np.int64)
        px, sz = tl.column("price").astype(float), tl.column("size").astype(float)
        sign = tl.column("sign").astype(np.int8)
        tid = tl.column("trade_id").astype(np.int64)
        if (sign == 0).any():
            pre = np.searchsorted(ts, t_ts, side="left") - 1
            mid = np.where(pre >= 0, (bp[np.clip(pre, 0, None)] + ap[np.clip(pre, 0, None)]) / 2, np.nan)
            lr, counts = lee_ready(px, mid)
            fill = sign == 0
            sign = np.where(fill, lr, sign).astype(np.int8)
            notes.append(f"{int(fill.sum())} unsigned trades signed by Lee–Ready ({counts})")
        if tl.report.rows_quarantined:
            notes.append(f"{tl.report.rows_quarantined} trade rows quarantined: {tl.report.reasons}")
        paths = (qp, tp)
    else:
        t_ts = np.zeros(0, np.int64)
        px = sz = np.zeros(0)
        sign = np.zeros(0, np.int8)
        tid = np.zeros(0, np.int64)
        notes.append("no trades file: volume-based figures (ADV, participation, VWAP) are not available")
    if ql.report.rows_quarantined:
        notes.append(f"{ql.report.rows_quarantined} quote rows quarantined: {ql.report.reasons}")
    trades_t = Trades(
        ts_ns=t_ts,
        exch_ns=t_ts,
        price=px,
        size=sz,
        sign=sign,
        trade_id=tid,
        event_index=np.arange(t_ts.size, dtype=np.int64),
        hidden=np.zeros(t_ts.size, bool),
    )
    events = Events.prints(t_ts, sign, px, sz, tick_size, np.arange(2, t_ts.size + 2, dtype=np.int64))
    date = cal.trading_date(int(ts[-1]))
    return MarketDay(
        spec=spec,
        date=date,
        source="generic",
        events=events,
        book=book,
        trades=trades_t,
        paths=paths,
        report=ql.report,
        quarantine=ql.quarantine,
        notes=tuple(notes),
    )
