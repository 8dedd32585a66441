"""Databento DBN files (MBO, MBP-1, MBP-10, trades, definitions) into a :class:`MarketDay`.

Decoding is Databento's own (``databento.DBNStore``, over the ``databento-dbn`` Rust decoder); this module
only maps the records onto the format-neutral model:

* **MBO** (order by order): ``A`` add, ``C`` cancel, ``M`` modify, ``T`` trade, ``F`` fill, ``R`` clear;
  adds flagged ``F_SNAPSHOT`` are the book snapshot.  The book is rebuilt order by order with exact FIFO
  queues (:mod:`impactlab.data._l3`) and a book state is recorded after every record flagged ``F_LAST``
  (the end of a venue event, where the book is consistent).  Trades are the ``T`` records, whose side is
  the aggressor's.
* **MBP-1 / MBP-10**: the book levels carried on each record are the states; ``T`` records are the trades.
* **trades**: prints only (no book); paired with an MBP file of the same window by the catalog.
* **definition**: the instrument (tick = ``min_price_increment``, multiplier = ``unit_of_measure_qty``
  where ``contract_multiplier`` is unset, expiry, currency, exchange).

Prices are fixed-point int64 in units of 10⁻⁹ (``INT64_MAX`` = undefined); times are ns since the epoch.
The book and the trades run on ``ts_recv`` (the capture's clock, by which the file is ordered); the
exchange's ``ts_event`` is kept as ``exch_ns``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from impactlab.data._l3 import A_ADD, A_CANCEL, A_CLEAR, A_FILL, A_MODIFY, A_NONE, A_TRADE, L3Book
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
from impactlab.data.validation import LoadReport, Quarantine
from impactlab.errors import DataValidationError

__all__ = ["DBN_MAGIC", "find_definition", "is_dbn", "load_databento", "read_definitions"]

DBN_MAGIC = (b"DBN", b"\x28\xb5\x2f\xfd")  # plain DBN, or zstd-compressed
PX_SCALE = 1_000_000_000
UNDEF_PRICE = np.iinfo(np.int64).max
F_LAST, F_TOB, F_SNAPSHOT = 128, 64, 32
_ACTION = {
    ord("A"): A_ADD,
    ord("C"): A_CANCEL,
    ord("M"): A_MODIFY,
    ord("T"): A_TRADE,
    ord("F"): A_FILL,
    ord("R"): A_CLEAR,
    ord("N"): A_NONE,
}
_KIND = {
    A_ADD: EventKind.ADD,
    A_CANCEL: EventKind.CANCEL,
    A_MODIFY: EventKind.MODIFY,
    A_TRADE: EventKind.TRADE,
    A_FILL: EventKind.FILL,
    A_CLEAR: EventKind.CLEAR,
    A_NONE: EventKind.STATUS,
}


def is_dbn(path: str | Path) -> bool:
    """The file starts like a DBN stream (plain or zstd-compressed)."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    return head[:3] == DBN_MAGIC[0] or head == DBN_MAGIC[1]


def _store(path: Path) -> Any:
    import databento as db  # imported here: it is a heavy import and only this loader needs it

    if not path.exists():
        raise DataValidationError("file not found", path=path)
    if not is_dbn(path):
        raise DataValidationError("not a Databento DBN file (no DBN or zstd header)", path=path, line=1)
    try:
        with open(path, "rb") as fh:  # read whole, so no file handle outlives the call
            raw = fh.read()
        return db.DBNStore.from_bytes(raw)
    except Exception as exc:
        raise DataValidationError(f"cannot decode DBN: {exc}", path=path) from exc


def _records(store: Any, path: Path) -> NDArray[Any]:
    try:
        return np.asarray(store.to_ndarray())
    except Exception as exc:
        raise DataValidationError(f"cannot decode DBN records: {exc}", path=path) from exc


def read_definitions(path: str | Path) -> list[InstrumentSpec]:
    """Every instrument in a Databento definition file."""
    p = Path(path)
    store = _store(p)
    if str(store.schema) != "definition":
        raise DataValidationError(f"expected a definition file, got schema {store.schema}", path=p)
    rec = _records(store, p)
    out = []
    for r in rec:
        sym = _text(r["raw_symbol"])
        tick = float(r["min_price_increment"]) / PX_SCALE
        mult_raw = int(r["contract_multiplier"])
        uom = float(r["unit_of_measure_qty"]) / PX_SCALE
        multiplier = float(mult_raw) if 0 < mult_raw < np.iinfo(np.int32).max else (uom if uom > 0 else 1.0)
        klass = _text(r["instrument_class"])
        exp = int(r["expiration"])
        ccy = _text(r["currency"]) or "USD"
        out.append(
            InstrumentSpec(
                symbol=sym,
                venue=_text(r["exchange"]) or str(store.dataset),
                asset_class="future" if klass == "F" else "option" if klass in ("C", "P") else "other",
                tick_size=tick if tick > 0 else 0.01,
                lot_size=max(float(r["min_trade_vol"]), 1.0),
                multiplier=multiplier,
                quote_currency=ccy,
                settlement_currency=_text(r["settl_currency"]) or ccy,
                size_unit="contracts",
                calendar=SessionCalendar.cme_globex()
                if str(store.dataset).startswith("GLBX")
                else SessionCalendar.us_equities(),
                expiry_ns=exp if 0 < exp < np.iinfo(np.uint64).max else None,
            )
        )
    return out


def _text(v: Any) -> str:
    if isinstance(v, bytes | np.bytes_):
        return bytes(v).split(b"\0", 1)[0].decode("ascii", errors="replace").strip()
    return str(v).strip()


def find_definition(path: str | Path, symbol: str) -> tuple[InstrumentSpec, Path] | None:
    """The definition of ``symbol`` in a definition file beside ``path`` (``*definition*.dbn*``), if any."""
    p = Path(path)
    for cand in sorted(p.parent.glob("*definition*.dbn*")):
        try:
            specs = read_definitions(cand)
        except DataValidationError:
            continue
        for s in specs:
            if s.symbol == symbol:
                return s, cand
    return None


def _spec(
    store: Any, path: Path, symbol: str, prices: NDArray[np.int64], definition: str | Path | None, notes: list[str]
) -> InstrumentSpec:
    found: tuple[InstrumentSpec, Path] | None
    if definition is not None:
        specs = [s for s in read_definitions(definition) if s.symbol == symbol]
        if not specs:
            raise DataValidationError(f"no definition of {symbol} in the file", path=definition, field="raw_symbol")
        found = (specs[0], Path(definition))
    else:
        found = find_definition(path, symbol)
    if found is not None:
        notes.append(
            f"instrument from {found[1].name}: tick {found[0].tick_size:g}, multiplier {found[0].multiplier:g}"
        )
        return found[0]
    ok = prices[(prices != UNDEF_PRICE) & (prices > 0)]
    keys = np.unique(ok)
    tick = float(np.gcd.reduce(np.diff(keys))) / PX_SCALE if keys.size > 1 else 0.01
    notes.append(f"no definition file for {symbol}: tick inferred as {tick:g}, multiplier 1 (money is per point)")
    return InstrumentSpec(
        symbol=symbol,
        venue=str(store.dataset),
        asset_class="future",
        tick_size=tick,
        size_unit="contracts",
        calendar=SessionCalendar.cme_globex()
        if str(store.dataset).startswith("GLBX")
        else SessionCalendar.us_equities(),
    )


def load_databento(
    path: str | Path,
    *,
    definition: str | Path | None = None,
    trades_path: str | Path | None = None,
    depth: int = 10,
    symbol: str | None = None,
) -> MarketDay:
    """Load a Databento MBO, MBP-1, MBP-10 or trades file into a :class:`MarketDay`.

    Parameters
    ----------
    path
        The ``.dbn`` or ``.dbn.zst`` file.
    definition
        The instrument-definition file; by default one beside ``path`` that defines the symbol.  Without
        one the tick is inferred and the multiplier taken as 1 (and the notes say so).
    trades_path
        A trades file of the same window to take the prints from (with an MBP file).
    depth
        Levels per side recorded from an MBO book (MBP files give their own depth).
    symbol
        The instrument, where the file holds several.

    Returns
    -------
    MarketDay
        For MBO, ``extras['l3']`` is the :class:`~impactlab.data._l3.L3Book` at the end of the file and
        ``extras['l3_status']`` the per-event apply codes.
    """
    p = Path(path)
    store = _store(p)
    schema = str(store.schema)
    rec = _records(store, p)
    if rec.size == 0:
        raise DataValidationError("no records", path=p)
    syms = [str(s) for s in (store.symbols or [])]
    ids = np.unique(rec["instrument_id"])
    if ids.size > 1:
        if symbol is None:
            raise DataValidationError(
                f"the file holds {ids.size} instruments: pass symbol=", path=p, field="instrument_id"
            )
        raise DataValidationError("files with several instruments are not supported yet", path=p, field="instrument_id")
    sym = symbol or (syms[0] if syms else str(int(ids[0])))
    notes: list[str] = []
    q = Quarantine(source=str(p))
    spec = _spec(store, p, sym, rec["price"].astype(np.int64), definition, notes)
    if schema == "mbo":
        day = _mbo(rec, p, spec, depth, q, notes)
    elif schema in ("mbp-1", "mbp-10", "tbbo"):
        day = _mbp(rec, p, spec, q, notes, schema)
    elif schema == "trades":
        day = _trades_only(rec, p, spec, q, notes)
    else:
        raise DataValidationError(
            f"schema {schema} is not market data this loader reads", path=p, field="schema", value=schema
        )
    if trades_path is not None:
        tday = load_databento(trades_path, definition=definition, symbol=sym)
        if not tday.spec.same_instrument(spec):
            raise DataValidationError(f"trades file is for {tday.symbol}, not {sym}", path=trades_path)
        day = replace(
            day,
            trades=replace(tday.trades, event_index=-np.ones(len(tday.trades), np.int64)),
            paths=(*day.paths, Path(trades_path)),
            notes=(*day.notes, f"trades from {Path(trades_path).name} ({len(tday.trades)} prints)"),
        )
    return day


def _base_arrays(rec: NDArray[Any], tick: float) -> dict[str, NDArray[Any]]:
    action = np.array([_ACTION.get(int(c), -1) for c in range(256)], dtype=np.int8)[rec["action"].view(np.uint8)]
    side_map = np.zeros(256, np.int8)
    side_map[ord("B")], side_map[ord("A")] = 1, -1
    side = side_map[rec["side"].view(np.uint8)]
    px_i = rec["price"].astype(np.int64)
    undef = px_i == UNDEF_PRICE
    price = np.where(undef, np.nan, px_i / PX_SCALE)
    tick_i = round(tick * PX_SCALE)
    ticks = np.where(undef, 0, px_i // max(tick_i, 1)).astype(np.int64)
    return {
        "action": action,
        "side": side,
        "px_i": px_i,
        "price": price,
        "ticks": ticks,
        "undef": undef,
        "size": rec["size"].astype(np.int64),
        "flags": rec["flags"].astype(np.uint8),
        "ts": rec["ts_recv"].astype(np.int64),
        "exch": rec["ts_event"].astype(np.int64),
    }


def _events(b: dict[str, NDArray[Any]], order_id: NDArray[np.int64]) -> Events:
    kind = np.zeros(b["action"].size, np.int8)
    for a, k in _KIND.items():
        kind[b["action"] == a] = k
    snap = (b["flags"] & F_SNAPSHOT) != 0
    kind[snap & (b["action"] == A_ADD)] = EventKind.SNAPSHOT
    flags = np.where(snap, EventFlag.SNAPSHOT, 0).astype(np.uint8) | np.where(
        (b["flags"] & F_LAST) != 0, EventFlag.LAST, 0
    ).astype(np.uint8)
    return Events(
        ts_ns=b["ts"],
        exch_ns=b["exch"],
        kind=kind,
        side=b["side"],
        price=b["price"],
        price_ticks=b["ticks"],
        size=b["size"].astype(np.float64),
        order_id=order_id,
        flags=flags,
        line=np.arange(1, kind.size + 1, dtype=np.int64),
    )


def _validate(
    b: dict[str, NDArray[Any]], q: Quarantine, line: NDArray[np.int64], *, book_actions: bool
) -> NDArray[np.bool_]:
    bad: NDArray[np.bool_] = np.zeros(line.size, dtype=bool)
    bad = q.reject(b["action"] < 0, line, "action", b["action"], "unknown_action", bad)
    needs_px = np.isin(b["action"], [A_ADD, A_MODIFY, A_TRADE, A_FILL]) if book_actions else b["action"] == A_TRADE
    bad = q.reject(needs_px & (b["undef"] | (b["px_i"] <= 0)), line, "price", b["price"], "non_positive_price", bad)
    bad = q.reject(
        np.isin(b["action"], [A_ADD, A_TRADE, A_FILL]) & (b["size"] <= 0),
        line,
        "size",
        b["size"],
        "non_positive_size",
        bad,
    )
    needs_side = np.isin(b["action"], [A_ADD, A_MODIFY, A_CANCEL, A_FILL])
    bad = q.reject(needs_side & (b["side"] == 0), line, "side", b["side"], "invalid_side", bad)
    prev = np.maximum.accumulate(np.concatenate(([np.iinfo(np.int64).min], b["ts"][:-1])))
    return q.reject(b["ts"] < prev, line, "ts_recv", b["ts"], "non_monotone_time", bad)


def _prints(
    b: dict[str, NDArray[Any]], idx: NDArray[np.int64], seq: NDArray[Any], event_index: NDArray[np.int64]
) -> Trades:
    """Trades at rows ``idx`` of the mapped records (the aggressor's side is the record's side)."""
    return Trades(
        ts_ns=b["ts"][idx], exch_ns=b["exch"][idx], price=b["price"][idx], size=b["size"][idx].astype(np.float64),
        sign=b["side"][idx], trade_id=seq[idx].astype(np.int64), event_index=event_index.astype(np.int64),
        hidden=np.zeros(idx.size, dtype=bool),
    )  # fmt: skip


def _trading_date(spec: InstrumentSpec, ts: int) -> dt.date:
    return spec.calendar.trading_date(ts)


def _mbo(rec: NDArray[Any], path: Path, spec: InstrumentSpec, depth: int, q: Quarantine, notes: list[str]) -> MarketDay:
    b = _base_arrays(rec, spec.tick_size)
    n = rec.size
    line = np.arange(1, n + 1, dtype=np.int64)
    bad = _validate(b, q, line, book_actions=True)
    keep = ~bad
    if not keep.all():
        b = {k: v[keep] for k, v in b.items()}
        rec = rec[keep]
    oid = rec["order_id"].astype(np.int64)
    events = _events(b, oid)
    events = replace(events, line=line[keep])
    prices, rank = np.unique(np.where(b["undef"], 0, b["px_i"]), return_inverse=True)
    order_ids, slot = np.unique(oid, return_inverse=True)
    book = L3Book(prices / PX_SCALE, order_ids)
    record = (b["flags"] & F_LAST) != 0
    _, top_rank, top_qty, status = book.replay(
        b["action"], b["side"], rank.astype(np.int64), b["size"], slot.astype(np.int64), record, depth=depth
    )
    rows = np.flatnonzero(record)
    px = np.where(top_rank >= 0, book.prices[np.clip(top_rank, 0, None)], np.nan)
    snap_done = np.cumsum((b["flags"][rows] & F_SNAPSHOT) == 0) > 0
    states = BookStates(
        ts_ns=b["ts"][rows],
        bid_price=px[:, :depth],
        bid_size=top_qty[:, :depth].astype(np.float64),
        ask_price=px[:, depth:],
        ask_size=top_qty[:, depth:].astype(np.float64),
        event_index=rows.astype(np.int64),
        synced=snap_done,
    )
    tr = np.flatnonzero(b["action"] == A_TRADE)
    trades = _prints(b, tr, rec["sequence"], tr)
    counts = {
        name: int((status == code).sum())
        for code, name in (
            (1, "add_of_live_order"),
            (2, "cancel_of_unknown_order"),
            (3, "cancel_beyond_size"),
            (4, "modify_of_unknown_order"),
        )
    }
    report = LoadReport.build(
        "databento-mbo",
        str(path),
        n,
        q,
        symbol=spec.symbol,
        records=n,
        book_states=len(states),
        snapshot_records=int(((b["flags"] & F_SNAPSHOT) != 0).sum()),
        **counts,
    )
    notes.append(
        f"order-by-order book rebuilt from MBO ({len(order_ids)} orders), states at F_LAST, {depth} levels kept"
    )
    if any(counts.values()):
        notes.append("book breaks: " + ", ".join(f"{k} {v}" for k, v in counts.items() if v))
    return MarketDay(
        spec=spec,
        date=_trading_date(spec, int(states.ts_ns[-1] if len(states) else b["ts"][-1])),
        source="databento-mbo",
        events=events,
        book=states,
        trades=trades,
        paths=(path,),
        report=report,
        quarantine=q,
        has_order_ids=True,
        notes=tuple(notes),
        extras={"l3": book, "l3_status": status},
    )


def _mbp(
    rec: NDArray[Any], path: Path, spec: InstrumentSpec, q: Quarantine, notes: list[str], schema: str
) -> MarketDay:
    b = _base_arrays(rec, spec.tick_size)
    n = rec.size
    line = np.arange(1, n + 1, dtype=np.int64)
    bad = _validate(b, q, line, book_actions=False)
    levels = 10 if schema == "mbp-10" else 1
    bp = np.stack([rec[f"bid_px_{k:02d}"].astype(np.int64) for k in range(levels)], axis=1)
    ap = np.stack([rec[f"ask_px_{k:02d}"].astype(np.int64) for k in range(levels)], axis=1)
    bs = np.stack([rec[f"bid_sz_{k:02d}"].astype(np.float64) for k in range(levels)], axis=1)
    az = np.stack([rec[f"ask_sz_{k:02d}"].astype(np.float64) for k in range(levels)], axis=1)
    crossed = (
        (bp[:, 0] != UNDEF_PRICE) & (ap[:, 0] != UNDEF_PRICE) & (bs[:, 0] > 0) & (az[:, 0] > 0) & (bp[:, 0] >= ap[:, 0])
    )
    bad = q.reject(crossed, line, "bid_px_00", bp[:, 0], "crossed_book", bad)
    keep = ~bad
    b = {k: v[keep] for k, v in b.items()}
    bp, ap, bs, az = bp[keep], ap[keep], bs[keep], az[keep]
    # the record's action and size describe the order event behind the update (no order id): they stay order
    # events; the level's new size is in the book state
    events = replace(_events(b, -np.ones(int(keep.sum()), np.int64)), line=line[keep])
    empty_b = (bp == UNDEF_PRICE) | (bs <= 0)
    empty_a = (ap == UNDEF_PRICE) | (az <= 0)
    last = (b["flags"] & F_LAST) != 0
    rows = np.flatnonzero(last) if last.any() else np.arange(b["ts"].size)
    states = BookStates(
        ts_ns=b["ts"][rows],
        bid_price=np.where(empty_b, np.nan, bp / PX_SCALE)[rows],
        bid_size=np.where(empty_b, 0.0, bs)[rows],
        ask_price=np.where(empty_a, np.nan, ap / PX_SCALE)[rows],
        ask_size=np.where(empty_a, 0.0, az)[rows],
        event_index=rows.astype(np.int64),
        synced=np.ones(rows.size, dtype=bool),
    )
    tr = np.flatnonzero(b["action"] == A_TRADE)
    trades = _prints(b, tr, rec["sequence"][keep], tr)
    report = LoadReport.build(
        f"databento-{schema}", str(path), n, q, symbol=spec.symbol, records=n, book_states=len(states)
    )
    notes.append(f"{schema.upper()}: {levels} level(s) per side as published; depth beyond level {levels} is unknown")
    return MarketDay(
        spec=spec,
        date=_trading_date(spec, int(b["ts"][-1])),
        source="databento-mbp",
        events=events,
        book=states,
        trades=trades,
        paths=(path,),
        report=report,
        quarantine=q,
        has_order_ids=False,
        notes=tuple(notes),
    )


def _trades_only(rec: NDArray[Any], path: Path, spec: InstrumentSpec, q: Quarantine, notes: list[str]) -> MarketDay:
    b = _base_arrays(rec, spec.tick_size)
    n = rec.size
    line = np.arange(1, n + 1, dtype=np.int64)
    bad = _validate(b, q, line, book_actions=False)
    keep = ~bad & (b["action"] == A_TRADE)
    other = ~bad & ~keep
    bad = q.reject(other, line, "action", b["action"], "not_a_trade", bad)
    keep = ~bad
    b = {k: v[keep] for k, v in b.items()}
    every = np.arange(int(keep.sum()), dtype=np.int64)
    trades = _prints(b, every, rec["sequence"][keep], every)
    events = replace(_events(b, -np.ones(int(keep.sum()), np.int64)), line=line[keep])
    z = np.zeros((0, 1))
    states = BookStates(
        ts_ns=np.zeros(0, np.int64),
        bid_price=z,
        bid_size=z,
        ask_price=z,
        ask_size=z,
        event_index=np.zeros(0, np.int64),
        synced=np.zeros(0, bool),
    )
    report = LoadReport.build("databento-trades", str(path), n, q, symbol=spec.symbol, records=n)
    notes.append("trades only: no book states (pair with an MBP file of the same window)")
    return MarketDay(
        spec=spec,
        date=_trading_date(spec, int(b["ts"][-1])),
        source="databento-trades",
        events=events,
        book=states,
        trades=trades,
        paths=(path,),
        report=report,
        quarantine=q,
        notes=tuple(notes),
    )
