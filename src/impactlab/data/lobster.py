"""LOBSTER message + order-book file pairs, loaded into a :class:`~impactlab.data.market.MarketDay`.

A LOBSTER day is two CSV files (plain or gzip): messages ``time, type, order id, size, price×10⁴,
direction`` and the book after each message ``askP1, askS1, bidP1, bidS1, …`` for L levels.  Row k of
the book is the state after message k.  Times are seconds after midnight, New York time, on the date in
the file name; they become int64 ns since the epoch (UTC).  Empty levels carry the dummy prices
±9999999999 with size 0; they become NaN prices and zero sizes.  This module is the only one that knows
that layout.

Event mapping: type 1 → ``ADD``; 2 → ``CANCEL`` (partial); 3 → ``CANCEL`` with the ``DELETE`` flag; 4 →
``FILL`` (a visible resting order executed; the aggressor is the other side); 5 → ``FILL`` with the
``HIDDEN`` flag; 7 → ``STATUS`` (halt / resume).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from numpy.typing import NDArray

from impactlab.data._kernels import split_levels
from impactlab.data.market import (
    EMPTY_ASK_TICK,
    EMPTY_BID_TICK,
    BookStates,
    EventFlag,
    EventKind,
    Events,
    InstrumentSpec,
    MarketDay,
    SessionCalendar,
    Trades,
)
from impactlab.data.schemas import LobsterEventType
from impactlab.data.validation import LoadReport, Quarantine, diagnose_csv, row_lines
from impactlab.errors import DataValidationError

__all__ = ["find_lobster_pairs", "load_lobster", "parse_lobster_name"]

PRICE_SCALE = 10_000
"""LOBSTER prices are dollars × 10⁴."""
DUMMY_ASK = 9_999_999_999
DUMMY_BID = -9_999_999_999
EXCHANGE_TZ = "America/New_York"
MESSAGE_COLUMNS = ("time", "type", "order_id", "size", "price", "direction")
_NAME = re.compile(
    r"^(?P<symbol>[A-Za-z0-9.\-]+)_(?P<date>\d{4}-\d{2}-\d{2})_(?P<start>\d+)_(?P<end>\d+)_"
    r"(?P<kind>message|orderbook)_(?P<levels>\d+)\.csv(\.gz)?$"
)
_VALID_TYPES = np.array([t.value for t in LobsterEventType], dtype=np.int64)


@dataclass(frozen=True)
class LobsterName:
    """Fields of a LOBSTER file name."""

    symbol: str
    date: dt.date
    start_ms: int
    end_ms: int
    kind: str
    levels: int


def parse_lobster_name(path: str | Path) -> LobsterName:
    """Parse ``TICKER_YYYY-MM-DD_START_END_{message,orderbook}_LEVEL.csv[.gz]``."""
    name = Path(path).name
    m = _NAME.match(name)
    if m is None:
        raise DataValidationError(
            "not a LOBSTER file name (TICKER_YYYY-MM-DD_START_END_message_LEVEL.csv[.gz])", path=path
        )
    return LobsterName(
        symbol=m["symbol"],
        date=dt.date.fromisoformat(m["date"]),
        start_ms=int(m["start"]),
        end_ms=int(m["end"]),
        kind=m["kind"],
        levels=int(m["levels"]),
    )


def find_lobster_pairs(directory: str | Path) -> list[tuple[Path, Path]]:
    """Every ``(message, orderbook)`` pair below ``directory``, sorted by name."""
    pairs = []
    for msg in sorted(Path(directory).rglob("*_message_*.csv*")):
        book = msg.with_name(msg.name.replace("_message_", "_orderbook_"))
        if book.exists():
            pairs.append((msg, book))
    return pairs


def midnight_ns(date: dt.date, tz: str = EXCHANGE_TZ) -> int:
    """Epoch ns of wall-clock midnight of ``date`` in ``tz``, using the UTC offset in force at noon.

    Session times (seconds after midnight) are wall-clock times, so the noon offset is the right one even
    on a daylight-saving change day.
    """
    noon = dt.datetime(date.year, date.month, date.day, 12, tzinfo=ZoneInfo(tz))
    offset = noon.utcoffset()
    assert offset is not None
    midnight_utc = dt.datetime(date.year, date.month, date.day, tzinfo=dt.UTC)
    return int((midnight_utc - offset).timestamp()) * 1_000_000_000  # whole seconds: exact


def _read_int_csv(path: Path, names: list[str], types: dict[str, pa.DataType]) -> pa.Table:
    kinds = ["float" if pa.types.is_floating(types[n]) else "int" for n in names]
    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            return pacsv.read_csv(
                stream,
                read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 22),
                parse_options=pacsv.ParseOptions(newlines_in_values=False),
                convert_options=pacsv.ConvertOptions(column_types=types, null_values=[], strings_can_be_null=False),
            )
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        diagnose_csv(path, names, kinds, header=False)  # type: ignore[arg-type]
        raise DataValidationError(f"cannot parse CSV: {exc}", path=path) from exc


def _book_levels(path: Path) -> int:
    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            head = stream.read(1 << 16)
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        raise DataValidationError(f"cannot read the file: truncated or corrupt ({exc})", path=path) from exc
    first = bytes(head).split(b"\n", 1)[0].strip()
    if not first:
        raise DataValidationError("empty file: no data rows", path=path, line=1)
    ncol = first.count(b",") + 1
    if ncol % 4:
        raise DataValidationError(
            f"an order-book row needs 4 columns per level, got {ncol}", path=path, line=1,
            value=first.decode(errors="replace"),
        )  # fmt: skip
    return ncol // 4


def _price_ok(etype: NDArray[Any], price: NDArray[Any]) -> NDArray[np.bool_]:
    """Prices (×10⁴) below a billion dollars, or a halt's dummy price."""
    with np.errstate(invalid="ignore"):
        return np.asarray((etype == LobsterEventType.TRADING_HALT) | (price < 1e13), dtype=bool)


def load_lobster(
    message_path: str | Path,
    book_path: str | Path | None = None,
    *,
    symbol: str | None = None,
    date: dt.date | None = None,
    tick_size: float = 0.01,
) -> MarketDay:
    """Load and validate a LOBSTER message/order-book pair into a :class:`MarketDay`.

    Parameters
    ----------
    message_path
        The message file, ``.csv`` or ``.csv.gz``.
    book_path
        The order-book file; by default the message path with ``message`` replaced by ``orderbook``.
    symbol, date
        Needed only when the file name does not follow LOBSTER's pattern.
    tick_size
        Price increment, currency (NASDAQ: 0.01).

    Returns
    -------
    MarketDay
        Events, the book after each (at the file's depth) and the executions; rows that break a rule are
        in ``.quarantine`` and counted in ``.report``.

    Raises
    ------
    DataValidationError
        The files cannot be parsed, are empty, or differ in length; the message names the file, line,
        field and value.
    """
    mpath = Path(message_path)
    bpath = (
        Path(book_path) if book_path is not None else mpath.with_name(mpath.name.replace("_message_", "_orderbook_"))
    )
    try:
        name = parse_lobster_name(mpath)
        symbol = symbol or name.symbol
        date = date or name.date
        named_levels: int | None = name.levels
    except DataValidationError:
        if symbol is None or date is None:
            raise
        named_levels = None
    if not mpath.exists():
        raise DataValidationError("file not found", path=mpath)
    if not bpath.exists():
        raise DataValidationError("order-book file not found", path=bpath)

    levels = _book_levels(bpath)
    if named_levels is not None and levels != named_levels:
        raise DataValidationError(f"file name says {named_levels} levels but rows have {levels}", path=bpath, line=1)
    mt = _read_int_csv(
        mpath,
        list(MESSAGE_COLUMNS),
        {
            "time": pa.float64(),
            "type": pa.int64(),
            "order_id": pa.int64(),
            "size": pa.int64(),
            "price": pa.int64(),
            "direction": pa.int64(),
        },
    )
    bnames = [f"{f}{k}" for k in range(1, levels + 1) for f in ("ap", "as", "bp", "bs")]
    bt = _read_int_csv(bpath, bnames, dict.fromkeys(bnames, pa.int64()))
    n = mt.num_rows
    if n == 0:
        raise DataValidationError("empty file: no data rows", path=mpath, line=1)
    if bt.num_rows != n:
        raise DataValidationError(
            f"message file has {n} rows but order-book file has {bt.num_rows}",
            path=bpath,
            line=min(n, bt.num_rows) + 1,
        )

    t_s = mt.column("time").to_numpy()
    etype = mt.column("type").to_numpy()
    oid = mt.column("order_id").to_numpy()
    size = mt.column("size").to_numpy()
    price = mt.column("price").to_numpy()
    direction = mt.column("direction").to_numpy()
    book = np.empty((n, 4 * levels), dtype=np.int64)
    for j in range(4 * levels):
        book[:, j] = bt.column(j).to_numpy()
    line = row_lines(mpath, n)  # blank lines skipped by the reader still count as lines

    q = Quarantine(source=str(mpath))
    bad = np.zeros(n, dtype=bool)
    bad = q.reject(~np.isfinite(t_s), line, "time", t_s, "non_finite_time", bad)
    # seconds after midnight of the file's date: outside the day is no time of it (a 1e12 would be year 1720)
    with np.errstate(invalid="ignore"):
        bad = q.reject(np.isfinite(t_s) & ~((t_s >= 0) & (t_s < 86_400 + 3_600)), line, "time", t_s,
                       "time_out_of_range", bad)  # fmt: skip
    bad = q.reject(~_price_ok(etype, price), line, "price", price, "implausible_price", bad)
    bad = q.reject(~np.isin(etype, _VALID_TYPES), line, "type", etype, "unknown_event_type", bad)
    halt = etype == LobsterEventType.TRADING_HALT
    bad = q.reject((direction != 1) & (direction != -1), line, "direction", direction, "invalid_side", bad)
    bad = q.reject(~halt & (size <= 0), line, "size", size, "non_positive_size", bad)
    bad = q.reject(~halt & (price <= 0), line, "price", price, "non_positive_price", bad)
    t_clean = np.where(np.isfinite(t_s) & ~bad, t_s, -np.inf)  # rows already refused do not set the pace
    prev_max = np.maximum.accumulate(np.concatenate(([-np.inf], t_clean[:-1])))
    bad = q.reject(t_clean < prev_max, line, "time", t_s, "non_monotone_time", bad)
    sub = np.flatnonzero(etype == LobsterEventType.SUBMISSION)
    _, first = np.unique(oid[sub], return_index=True)
    dup = np.ones(sub.size, dtype=bool)
    dup[first] = False
    dup_mask = np.zeros(n, dtype=bool)
    dup_mask[sub[dup]] = True
    bad = q.reject(dup_mask, line, "order_id", oid, "duplicate_order_id", bad)

    ap, asz, bp, bsz = book[:, 0::4], book[:, 1::4], book[:, 2::4], book[:, 3::4]
    ask_real = ap != DUMMY_ASK
    bid_real = bp != DUMMY_BID
    neg = np.asarray((asz < 0).any(1) | (bsz < 0).any(1), dtype=bool)
    bad = q.reject(neg, line, "book_size", asz[:, 0], "negative_book_size", bad)
    bad = q.reject(
        np.asarray((ask_real & (ap <= 0)).any(1) | (bid_real & (bp <= 0)).any(1), dtype=bool),
        line,
        "book_price",
        ap[:, 0],
        "non_positive_book_price",
        bad,
    )
    crossed = ask_real[:, 0] & bid_real[:, 0] & (bp[:, 0] >= ap[:, 0])
    bad = q.reject(crossed, line, "bid_price_1", bp[:, 0], "crossed_book", bad)
    if levels > 1:
        unsorted = (np.diff(np.where(ask_real, ap, DUMMY_ASK), axis=1) <= 0) & ask_real[:, 1:]
        unsorted |= (np.diff(np.where(bid_real, bp, DUMMY_BID), axis=1) >= 0) & bid_real[:, 1:]
        bad = q.reject(
            np.asarray(unsorted.any(1), dtype=bool), line, "book_price", ap[:, 0], "unsorted_book_levels", bad
        )

    keep = ~bad
    ts_ns = midnight_ns(date) + np.rint(t_s[keep] * 1e9).astype(np.int64)
    report = LoadReport.build(
        "lobster", f"{mpath} + {bpath.name}", n, q, symbol=symbol, date=date.isoformat(), levels=levels
    )
    return _to_market(
        symbol=symbol,
        date=date,
        levels=levels,
        ts_ns=ts_ns,
        etype=etype[keep],
        oid=oid[keep],
        size=size[keep],
        price_e4=price[keep],
        side=direction[keep],
        book=book[keep],
        line=line[keep],
        paths=(mpath, bpath),
        report=report,
        quarantine=q,
        tick_size=tick_size,
    )


_KIND = np.zeros(8, dtype=np.int8)
_KIND[1], _KIND[2], _KIND[3], _KIND[4], _KIND[5], _KIND[7] = (
    EventKind.ADD,
    EventKind.CANCEL,
    EventKind.CANCEL,
    EventKind.FILL,
    EventKind.FILL,
    EventKind.STATUS,
)
_FLAGS = np.zeros(8, dtype=np.uint8)
_FLAGS[3], _FLAGS[5] = EventFlag.DELETE, EventFlag.HIDDEN


def _to_market(
    *,
    symbol: str,
    date: dt.date,
    levels: int,
    ts_ns: NDArray[np.int64],
    etype: NDArray[np.int64],
    oid: NDArray[np.int64],
    size: NDArray[np.int64],
    price_e4: NDArray[np.int64],
    side: NDArray[np.int64],
    book: NDArray[np.int64],
    line: NDArray[np.int64],
    paths: tuple[Path, ...],
    report: LoadReport,
    quarantine: Quarantine,
    tick_size: float,
) -> MarketDay:
    """LOBSTER arrays → the format-neutral model (dummies to NaN, prices to currency and ticks)."""
    n = ts_ns.size
    tick_e4 = round(tick_size * PRICE_SCALE)
    price = price_e4 / PRICE_SCALE
    halt = etype == LobsterEventType.TRADING_HALT
    events = Events(
        ts_ns=ts_ns,
        exch_ns=ts_ns,
        kind=_KIND[etype],
        side=side.astype(np.int8),
        price=np.where(halt, np.nan, price),
        price_ticks=np.where(halt, 0, np.rint(price_e4 / tick_e4)).astype(np.int64),
        size=size.astype(np.float64),
        order_id=oid.astype(np.int64),
        flags=_FLAGS[etype] | np.uint8(EventFlag.LAST),
        line=line,
    )

    shape = (n, levels)
    ap, az, bp, bz = (np.empty(shape) for _ in range(4))
    at, bt = np.empty(shape, np.int64), np.empty(shape, np.int64)
    split_levels(book, levels, float(PRICE_SCALE), tick_e4, DUMMY_ASK, DUMMY_BID, EMPTY_ASK_TICK, EMPTY_BID_TICK,
                 ap, az, at, bp, bz, bt)  # fmt: skip
    states = BookStates(
        ts_ns=ts_ns,
        bid_price=bp,
        bid_size=bz,
        ask_price=ap,
        ask_size=az,
        event_index=np.arange(n, dtype=np.int64),
        synced=np.ones(n, dtype=bool),
        bid_ticks=bt,
        ask_ticks=at,
    )
    ex = np.flatnonzero(events.kind == EventKind.FILL)
    trades = Trades(
        ts_ns=ts_ns[ex],
        exch_ns=ts_ns[ex],
        price=price[ex],
        size=size[ex].astype(np.float64),
        sign=(-side[ex]).astype(np.int8),  # the message's direction is the resting order's side
        trade_id=-np.ones(ex.size, dtype=np.int64),
        event_index=ex.astype(np.int64),
        hidden=etype[ex] == LobsterEventType.EXECUTION_HIDDEN,
    )
    spec = InstrumentSpec(
        symbol=symbol,
        venue="XNAS",
        asset_class="equity",
        tick_size=tick_size,
        lot_size=1.0,
        calendar=SessionCalendar.us_equities(),
        size_unit="shares",
    )
    off_grid = int(((price_e4 % tick_e4) != 0)[~halt].sum())
    notes = [f"NASDAQ TotalView-ITCH via LOBSTER, {levels} visible level(s): depth beyond level {levels} is unknown"]
    if off_grid:
        notes.append(f"{off_grid} event price(s) off the {tick_size:g} tick grid (hidden executions); ticks rounded")
    return MarketDay(
        spec=spec,
        date=date,
        source="lobster",
        events=events,
        book=states,
        trades=trades,
        paths=paths,
        report=report,
        quarantine=quarantine,
        has_order_ids=True,
        notes=tuple(notes),
    )
