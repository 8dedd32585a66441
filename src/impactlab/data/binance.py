"""Binance raw websocket captures: depth diffs, REST depth snapshots, trades and book tickers.

Each line is ``<local receive ns> <raw JSON>``; files may be gzip-compressed, and several files of one
capture are loaded in order as one stream (a later file continues the sequence ids of the earlier).

* Depth diffs (``@depth@100ms`` on spot, ``@depth@0ms`` on USD-M futures) carry absolute quantities per
  price level (0 deletes) and the update-id range ``U..u``; futures also carry ``pu``, the previous
  event's ``u``.  Sequence rule: spot ``U == previous u + 1``; futures ``pu == previous u``.
* A REST snapshot line (``lastUpdateId``, ``bids``, ``asks``) lets the book be rebuilt exactly
  (:func:`impactlab.book.binance.rebuild_binance`).
* Trades carry ``m`` (buyer is maker): the aggressor sign is −1 when ``m`` is true, +1 otherwise.
* Book tickers give the best bid/ask and their sizes with an update id, used to check rebuilt books.

Prices are float64; :data:`PRICE_SCALE` turns them into exact integer keys for the book kernel.

:func:`load_binance` returns the format-neutral :class:`~impactlab.data.market.MarketDay`: the book
rebuilt after every depth update (at ``depth`` levels), the trades, and every level update, snapshot
and trade as an event.  The market is read from the stream: spot (``U``/``u``), USD-M futures (``pu``)
or COIN-M (a ``…USD_PERP`` or dated ``…USD_YYMMDD`` symbol): an inverse contract whose size is a number of
contracts of a fixed USD value (100 USD for BTC, 10 USD for every other coin), settled in the coin.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from impactlab.data._binance_book import rebuild_binance
from impactlab.data._binance_parse import (  # the parser, re-exported here
    PRICE_SCALE,
    BinanceCapture,
    DepthEvents,
    DepthSnapshot,
    read_binance,
)
from impactlab.data.market import (
    BookStates,
    EventFlag,
    EventKind,
    Events,
    InstrumentSpec,
    MarketDay,
    SessionCalendar,
    Trades,
)
from impactlab.errors import DataValidationError

__all__ = ["BinanceCapture", "DepthEvents", "DepthSnapshot", "load_binance", "read_binance"]


def binance_spec(symbol: str, market: str, tick_size: float) -> InstrumentSpec:
    """The instrument of a Binance symbol on one of its markets."""
    sym = symbol.upper()
    cal = SessionCalendar.always()
    if market == "coinm":
        base = sym.partition("_")[0][: -len("USD")]
        return InstrumentSpec(
            symbol=sym,
            venue="BINANCE-COINM",
            asset_class="crypto_perpetual" if sym.endswith("_PERP") else "crypto_future",
            tick_size=tick_size,
            lot_size=1.0,
            contract_type="inverse",
            contract_value=100.0 if base == "BTC" else 10.0,
            quote_currency="USD",
            settlement_currency=base,
            size_unit="contracts",
            calendar=cal,
        )
    quote = next((q for q in ("USDT", "USDC", "FDUSD", "BUSD", "BTC", "ETH") if sym.endswith(q)), "USDT")
    base = sym[: -len(quote)] or sym
    usdm = market == "usdm"
    return InstrumentSpec(
        symbol=sym,
        venue="BINANCE-USDM" if usdm else "BINANCE",
        asset_class="crypto_perpetual" if usdm else "crypto_spot",
        tick_size=tick_size,
        lot_size=1e-3 if usdm else 1e-5,
        quote_currency=quote,
        settlement_currency=quote,
        size_unit=base,
        calendar=cal,
    )


def infer_tick(prices: NDArray[np.float64]) -> float:
    """The price increment of a set of prices: the gcd of their differences on the 10⁻⁸ grid."""
    keys = np.unique(np.rint(prices[np.isfinite(prices)] * PRICE_SCALE).astype(np.int64))
    if keys.size < 2:
        return 1.0 / PRICE_SCALE
    return float(np.gcd.reduce(np.diff(keys))) / PRICE_SCALE


def load_binance(
    paths: str | Path | Sequence[str | Path],
    *,
    depth: int = 10,
    use_snapshot: bool = True,
    on_malformed: Literal["raise", "quarantine"] = "raise",
    date: dt.date | None = None,
) -> MarketDay:
    """Load Binance capture file(s) of one symbol into a :class:`MarketDay`, the book rebuilt.

    Parameters
    ----------
    paths
        File(s) in time order; a later file continues the earlier's sequence.
    depth
        Levels per side kept in the book states.
    use_snapshot
        Use the REST snapshot(s); ``False`` rebuilds from diffs alone.
    date
        Keep only this UTC date (the earlier files then only warm the book up); by default the whole
        capture, dated by its first update.

    Returns
    -------
    MarketDay
        ``extras['capture']`` holds the parsed capture and ``extras['book_check']`` the rebuild's
        checks against the book-ticker stream.
    """
    if not 1 <= depth <= 1000:
        raise DataValidationError("'depth' must be in 1..1000", field="depth", value=depth)
    cap = read_binance(paths, on_malformed=on_malformed)
    if len(cap.depth) == 0 and not cap.snapshots:
        raise DataValidationError("no depth updates or snapshots: the book cannot be rebuilt", path=cap.paths[0])
    book = rebuild_binance(cap, depth=depth, use_snapshot=use_snapshot)
    tick = infer_tick(np.concatenate([book.bid_price[:, 0], book.ask_price[:, 0], cap.trades["price"]]))
    spec = binance_spec(cap.symbol, cap.market, tick)
    # events: every level update, snapshot level and trade, in stream order
    d = cap.depth
    n_lv = int(d.level_side.size)
    ev_order = np.repeat(d.order, d.stop - d.start)
    ev_ts = np.repeat(d.local_ns, d.stop - d.start)
    ev_ex = np.repeat(d.exch_ns, d.stop - d.start)
    last = np.zeros(n_lv, dtype=np.uint8)
    if len(d):
        nonempty = d.stop > d.start
        last[d.stop[nonempty] - 1] = EventFlag.LAST
    parts: list[tuple[Any, ...]] = [
        (
            ev_order,
            ev_ts,
            ev_ex,
            np.full(n_lv, EventKind.LEVEL, np.int8),
            d.level_side,
            d.level_price,
            d.level_qty,
            last,
        )
    ]
    for s in cap.snapshots:
        m = s.bid_price.size + s.ask_price.size
        flags = np.full(m + 1, EventFlag.SNAPSHOT, np.uint8)
        flags[-1] |= EventFlag.LAST
        parts.append(
            (
                np.full(m + 1, s.order),
                np.full(m + 1, s.local_ns),
                np.full(m + 1, s.local_ns),
                np.concatenate([[EventKind.CLEAR], np.full(m, EventKind.SNAPSHOT)]).astype(np.int8),
                np.concatenate([[0], np.ones(s.bid_price.size), -np.ones(s.ask_price.size)]).astype(np.int8),
                np.concatenate([[np.nan], s.bid_price, s.ask_price]),
                np.concatenate([[0.0], s.bid_qty, s.ask_qty]),
                flags,
            )
        )
    t = cap.trades
    nt = int(t["trade_id"].size)
    parts.append(
        (
            t["order"],
            t["local_ns"],
            t["exch_ns"],
            np.full(nt, EventKind.TRADE, np.int8),
            t["sign"],
            t["price"],
            t["size"],
            np.full(nt, EventFlag.LAST, np.uint8),
        )
    )
    cols = [np.concatenate([p[i] for p in parts]) for i in range(8)]
    order = np.argsort(cols[0], kind="stable")
    o, ts, ex, kind, side, px, sz, fl = (c[order] for c in cols)
    with np.errstate(invalid="ignore"):
        ticks = np.where(np.isfinite(px), np.rint(px / tick), 0).astype(np.int64)
    events = Events(
        ts_ns=ts.astype(np.int64),
        exch_ns=ex.astype(np.int64),
        kind=kind.astype(np.int8),
        side=side.astype(np.int8),
        price=px.astype(np.float64),
        price_ticks=ticks,
        size=sz.astype(np.float64),
        order_id=-np.ones(ts.size, np.int64),
        flags=fl.astype(np.uint8),
        line=o.astype(np.int64),
    )
    trade_ev = np.flatnonzero(events.kind == EventKind.TRADE)
    trades = Trades(
        ts_ns=t["local_ns"],
        exch_ns=t["exch_ns"],
        price=t["price"],
        size=t["size"],
        sign=t["sign"],
        trade_id=t["trade_id"],
        event_index=trade_ev.astype(np.int64),
        hidden=np.zeros(nt, dtype=bool),
    )
    # the state after an operation includes the events up to its last stream position
    op_order = np.asarray(book.order, dtype=np.int64)
    last_pos = np.searchsorted(events.line, op_order, side="right") - 1
    states = BookStates(
        ts_ns=book.local_ns,
        bid_price=book.bid_price,
        bid_size=book.bid_size,
        ask_price=book.ask_price,
        ask_size=book.ask_size,
        event_index=last_pos.astype(np.int64),
        synced=book.synced,
    )
    first = int(states.ts_ns[0]) if len(states) else int(events.ts_ns[0])
    day0 = dt.datetime.fromtimestamp(first / 1e9, tz=dt.UTC).date()
    notes = [
        f"Binance {cap.market} capture rebuilt at {depth} level(s) per side from depth diffs"
        + (
            " and a REST snapshot"
            if cap.snapshots and use_snapshot
            else " alone (no snapshot: levels are known once updated)"
        )
    ]
    if spec.inverse:
        notes.append(
            f"inverse contract: sizes are contracts of {spec.contract_value:g} USD, P&L and fees in "
            f"{spec.settlement_currency}"
        )
    out = MarketDay(
        spec=spec,
        date=day0,
        source="binance",
        events=events,
        book=states,
        trades=trades,
        paths=cap.paths,
        report=cap.report,
        quarantine=cap.quarantine,
        has_order_ids=False,
        notes=tuple(notes),
        extras={"capture": cap, "book_check": book.checks, "market": cap.market},
    )
    if date is not None:
        lo = int(dt.datetime(date.year, date.month, date.day, tzinfo=dt.UTC).timestamp()) * 1_000_000_000
        out = replace(out.window(lo, lo + 86_400 * 1_000_000_000), date=date)
    return out
