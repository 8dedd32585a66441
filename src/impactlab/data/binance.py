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
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
from numpy.typing import NDArray

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
from impactlab.data.validation import LoadReport, Quarantine, iter_lines, read_bytes
from impactlab.errors import DataValidationError

__all__ = ["BinanceCapture", "DepthEvents", "DepthSnapshot", "load_binance", "read_binance"]

PRICE_SCALE = 100_000_000
"""Binance prices have at most 8 decimals: ``round(price × 10⁸)`` is an exact integer key."""


@dataclass(frozen=True, eq=False)
class DepthEvents:
    """Depth-diff events, with their level updates flattened.

    Event ``e`` updates levels ``start[e]:stop[e]`` of the ``level_*`` arrays.  ``prev_id`` is ``pu`` on
    futures and −1 on spot.  ``level_side`` is +1 for a bid level, −1 for an ask level.
    """

    local_ns: NDArray[np.int64]
    exch_ns: NDArray[np.int64]
    first_id: NDArray[np.int64]
    last_id: NDArray[np.int64]
    prev_id: NDArray[np.int64]
    start: NDArray[np.int64]
    stop: NDArray[np.int64]
    order: NDArray[np.int64]
    level_side: NDArray[np.int8]
    level_price: NDArray[np.float64]
    level_qty: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.local_ns.size)

    @property
    def level_key(self) -> NDArray[np.int64]:
        """Exact integer price keys (price × 10⁸)."""
        return np.rint(self.level_price * PRICE_SCALE).astype(np.int64)


@dataclass(frozen=True, eq=False)
class DepthSnapshot:
    """A REST depth snapshot; ``order`` is its position in the stream (line order across files)."""

    local_ns: int
    last_update_id: int
    order: int
    bid_price: NDArray[np.float64]
    bid_qty: NDArray[np.float64]
    ask_price: NDArray[np.float64]
    ask_qty: NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class BinanceCapture:
    """One validated Binance capture (one symbol, one market), possibly spread over several files.

    ``trades`` and ``tickers`` are dicts of equal-length arrays: trades ``local_ns, exch_ns, trade_id,
    price, size, sign``; tickers ``local_ns, update_id, bid_price, bid_size, ask_price, ask_size``.
    """

    symbol: str
    market: Literal["spot", "usdm", "coinm"]
    paths: tuple[Path, ...]
    depth: DepthEvents
    snapshots: tuple[DepthSnapshot, ...]
    trades: dict[str, NDArray[Any]]
    tickers: dict[str, NDArray[Any]]
    report: LoadReport
    quarantine: Quarantine
    sequence_gaps: tuple[int, ...] = field(default=())


def _num(value: Any, path: Path, line: int, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise DataValidationError("not a number", path=path, line=line, field=name, value=value) from exc
    return out


class _Builder:
    """Accumulates parsed messages; validation happens as each message is read."""

    def __init__(self, quarantine: Quarantine) -> None:
        self.q = quarantine
        self.ev: dict[str, list[int]] = {k: [] for k in ("local", "exch", "U", "u", "pu", "start", "stop", "order")}
        self.lv_side: list[int] = []
        self.lv_px: list[float] = []
        self.lv_qty: list[float] = []
        self.snaps: list[DepthSnapshot] = []
        self.tr: dict[str, list[Any]] = {
            k: [] for k in ("local_ns", "exch_ns", "trade_id", "price", "size", "sign", "order")
        }
        self.tk: dict[str, list[Any]] = {
            k: [] for k in ("local_ns", "update_id", "bid_price", "bid_size", "ask_price", "ask_size")
        }
        self.trade_ids: set[int] = set()
        self.symbols: set[str] = set()
        self.streams: set[str] = set()
        self.last_local = -1
        self.order = 0
        self.rows = 0

    def levels(self, rows: Any, side: int, path: Path, line: int, key: str) -> list[tuple[int, float, float]] | str:
        out = []
        for item in rows:
            if not isinstance(item, list) or len(item) < 2:
                raise DataValidationError("a level must be [price, qty]", path=path, line=line, field=key, value=item)
            px = _num(item[0], path, line, key)
            qty = _num(item[1], path, line, key)
            if not math.isfinite(px) or px <= 0:
                return "non_positive_price"
            if not math.isfinite(qty) or qty < 0:
                return "invalid_quantity"
            out.append((side, px, qty))
        return out

    def add(self, local_ns: int, msg: dict[str, Any], path: Path, line: int) -> None:
        self.rows += 1
        src = str(path)
        if local_ns < self.last_local:
            self.q.add_record(line, "local_ns", local_ns, "non_monotone_time", source=src)
            return
        self.last_local = local_ns
        self.order += 1
        if "lastUpdateId" in msg:
            bids = self.levels(msg.get("bids", []), 1, path, line, "bids")
            asks = self.levels(msg.get("asks", []), -1, path, line, "asks")
            if isinstance(bids, str):
                self.q.add_record(line, "bids", "", bids, source=src)
                return
            if isinstance(asks, str):
                self.q.add_record(line, "asks", "", asks, source=src)
                return
            b = np.array(bids, dtype=np.float64).reshape(-1, 3)
            a = np.array(asks, dtype=np.float64).reshape(-1, 3)
            self.snaps.append(
                DepthSnapshot(local_ns, int(msg["lastUpdateId"]), self.order, b[:, 1], b[:, 2], a[:, 1], a[:, 2])
            )
            return
        stream = msg.get("stream")
        data = msg.get("data")
        if not isinstance(stream, str) or not isinstance(data, dict):
            self.q.add_record(line, "stream", stream, "unknown_message", source=src)
            return
        self.streams.add(stream.split("@", 1)[-1])
        if "s" in data:
            self.symbols.add(str(data["s"]))
        try:
            if "@depth" in stream:
                self._depth(local_ns, data, path, line)
            elif stream.endswith("@trade"):
                self._trade(local_ns, data, path, line)
            elif stream.endswith("@bookTicker"):
                self._ticker(local_ns, data, path, line)
            else:
                self.q.add_record(line, "stream", stream, "unknown_stream", source=src)
        except KeyError as exc:
            raise DataValidationError("missing field", path=path, line=line, field=str(exc.args[0])) from exc

    def _depth(self, local_ns: int, d: dict[str, Any], path: Path, line: int) -> None:
        first, last = int(d["U"]), int(d["u"])
        if last < first:
            self.q.add_record(line, "u", last, "invalid_update_range", source=str(path))
            return
        lv_b = self.levels(d.get("b", []), 1, path, line, "b")
        lv_a = self.levels(d.get("a", []), -1, path, line, "a")
        if isinstance(lv_b, str):
            self.q.add_record(line, "b", "", lv_b, source=str(path))
            return
        if isinstance(lv_a, str):
            self.q.add_record(line, "a", "", lv_a, source=str(path))
            return
        start = len(self.lv_px)
        for side, px, qty in (*lv_b, *lv_a):
            self.lv_side.append(side)
            self.lv_px.append(px)
            self.lv_qty.append(qty)
        for k, v in (
            ("local", local_ns),
            ("exch", int(d["E"]) * 1_000_000),
            ("U", first),
            ("u", last),
            ("pu", int(d.get("pu", -1))),
            ("start", start),
            ("stop", len(self.lv_px)),
            ("order", self.order),
        ):
            self.ev[k].append(v)

    def _trade(self, local_ns: int, d: dict[str, Any], path: Path, line: int) -> None:
        tid = int(d["t"])
        px = _num(d["p"], path, line, "p")
        qty = _num(d["q"], path, line, "q")
        src = str(path)
        if not math.isfinite(px) or px <= 0:
            self.q.add_record(line, "p", d["p"], "non_positive_price", source=src)
        elif not math.isfinite(qty) or qty <= 0:
            self.q.add_record(line, "q", d["q"], "non_positive_size", source=src)
        elif tid in self.trade_ids:
            self.q.add_record(line, "t", tid, "duplicate_trade_id", source=src)
        else:
            self.trade_ids.add(tid)
            for k, v in (
                ("local_ns", local_ns),
                ("exch_ns", int(d["T"]) * 1_000_000),
                ("trade_id", tid),
                ("price", px),
                ("size", qty),
                ("sign", -1 if d["m"] else 1),
                ("order", self.order),
            ):
                self.tr[k].append(v)

    def _ticker(self, local_ns: int, d: dict[str, Any], path: Path, line: int) -> None:
        bp, bq = _num(d["b"], path, line, "b"), _num(d["B"], path, line, "B")
        ap, aq = _num(d["a"], path, line, "a"), _num(d["A"], path, line, "A")
        src = str(path)
        if not (math.isfinite(bp) and math.isfinite(ap)) or bp <= 0 or ap <= 0:
            self.q.add_record(line, "b", d["b"], "non_positive_price", source=src)
        elif bq < 0 or aq < 0 or not (math.isfinite(bq) and math.isfinite(aq)):
            self.q.add_record(line, "B", d["B"], "invalid_quantity", source=src)
        elif bp >= ap:
            self.q.add_record(line, "b", d["b"], "crossed_book", source=src)
        else:
            for k, v in (
                ("local_ns", local_ns),
                ("update_id", int(d["u"])),
                ("bid_price", bp),
                ("bid_size", bq),
                ("ask_price", ap),
                ("ask_size", aq),
            ):
                self.tk[k].append(v)


def read_binance(
    paths: str | Path | Sequence[str | Path],
    *,
    on_malformed: Literal["raise", "quarantine"] = "raise",
) -> BinanceCapture:
    """Parse and validate one or more consecutive Binance capture files of one symbol (no book yet).

    Parameters
    ----------
    paths
        File(s) in time order; a later file continues the earlier's sequence.
    on_malformed
        A line that is not ``<int ns> <JSON>`` raises :class:`DataValidationError` (default), or is
        quarantined as ``malformed_line``.

    Returns
    -------
    BinanceCapture
        Typed arrays; rows breaking a rule are quarantined, and sequence gaps between consecutive depth
        diffs are counted in ``report.details`` and listed (as event indices) in ``sequence_gaps``.
    """
    plist = [Path(p) for p in ([paths] if isinstance(paths, str | Path) else paths)]
    if not plist:
        raise DataValidationError("no files given")
    q = Quarantine(source=" + ".join(str(p) for p in plist))
    b = _Builder(q)
    for path in plist:
        data = read_bytes(path)
        if not data.strip():
            raise DataValidationError("empty file: no data rows", path=path, line=1)
        for lineno, raw in iter_lines(data):
            head, sep, body = raw.partition(b" ")
            try:
                local_ns = int(head)
                if not sep:
                    raise ValueError("no JSON after the timestamp")
                msg = orjson.loads(body)
                if not isinstance(msg, dict):
                    raise ValueError("JSON is not an object")
            except (ValueError, orjson.JSONDecodeError) as exc:
                if on_malformed == "quarantine":
                    b.rows += 1
                    q.add_record(lineno, "line", raw[:80].decode(errors="replace"), "malformed_line", source=str(path))
                    continue
                fld = "local_ns" if not head.isdigit() else "json"
                raise DataValidationError(
                    f"malformed line: {exc}", path=path, line=lineno, field=fld, value=raw[:80].decode(errors="replace")
                ) from exc
            b.add(local_ns, msg, path, lineno)

    if len(b.symbols) > 1:
        raise DataValidationError(f"one capture must hold one symbol, got {sorted(b.symbols)}", path=plist[0])
    futures = any(s.startswith("depth@0ms") for s in b.streams) or any(v != -1 for v in b.ev["pu"])
    ev = {k: np.asarray(v, dtype=np.int64) for k, v in b.ev.items()}
    depth = DepthEvents(
        local_ns=ev["local"],
        exch_ns=ev["exch"],
        first_id=ev["U"],
        last_id=ev["u"],
        prev_id=ev["pu"],
        start=ev["start"],
        stop=ev["stop"],
        order=ev["order"],
        level_side=np.asarray(b.lv_side, dtype=np.int8),
        level_price=np.asarray(b.lv_px, dtype=np.float64),
        level_qty=np.asarray(b.lv_qty, dtype=np.float64),
    )
    gap = depth.prev_id[1:] != depth.last_id[:-1] if futures else depth.first_id[1:] != depth.last_id[:-1] + 1
    gaps = tuple(int(i) + 1 for i in np.flatnonzero(gap))
    trades = {
        k: np.asarray(v, dtype=np.float64 if k in ("price", "size") else np.int8 if k == "sign" else np.int64)
        for k, v in b.tr.items()
    }
    tickers = {
        k: np.asarray(v, dtype=np.int64 if k in ("local_ns", "update_id") else np.float64) for k, v in b.tk.items()
    }
    symbol = next(iter(b.symbols)) if b.symbols else plist[0].name.split("_")[0].upper()
    market: Literal["spot", "usdm", "coinm"] = "coinm" if _is_coinm(symbol) else "usdm" if futures else "spot"
    report = LoadReport.build(
        "binance",
        q.source,
        b.rows,
        q,
        symbol=symbol,
        market=market,
        depth_events=len(depth),
        level_updates=int(depth.level_side.size),
        snapshots=len(b.snaps),
        trades=int(trades["trade_id"].size),
        tickers=int(tickers["update_id"].size),
        sequence_gaps=len(gaps),
    )
    return BinanceCapture(
        symbol=symbol,
        market=market,
        paths=tuple(plist),
        depth=depth,
        snapshots=tuple(b.snaps),
        trades=trades,
        tickers=tickers,
        report=report,
        quarantine=q,
        sequence_gaps=gaps,
    )


def _is_coinm(symbol: str) -> bool:
    """COIN-M symbols: ``BTCUSD_PERP`` or a dated ``BTCUSD_240927`` (USD-M and spot have no underscore)."""
    head, sep, tail = symbol.upper().partition("_")
    return bool(sep) and head.endswith("USD") and (tail == "PERP" or tail.isdigit())


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
    if market == "usdm":
        return InstrumentSpec(
            symbol=sym,
            venue="BINANCE-USDM",
            asset_class="crypto_perpetual",
            tick_size=tick_size,
            lot_size=1e-3,
            quote_currency=quote,
            settlement_currency=quote,
            size_unit=base,
            calendar=cal,
        )
    return InstrumentSpec(
        symbol=sym,
        venue="BINANCE",
        asset_class="crypto_spot",
        tick_size=tick_size,
        lot_size=1e-5,
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
    from impactlab.data._binance_book import rebuild_binance

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
