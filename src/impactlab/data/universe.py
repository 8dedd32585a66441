"""The universe dataset: top-of-book states and trades of many instrument-days, as Parquet partitioned by
symbol and date (what nightly calibration over a whole universe reads).

Layout under a root directory (hive partitioning, so DuckDB, pyarrow and Dask read it as one dataset)::

    ROOT/book/symbol=GOOG/date=2012-06-21/part-0.parquet     ts_ns, bid_price, bid_size, ask_price, ask_size
    ROOT/trades/symbol=GOOG/date=2012-06-21/part-0.parquet   ts_ns, price, size, sign, pre_state

One book row per state (after each event; an empty side has a NaN price and size 0).  ``pre_state`` is the
book row in force just before the trade (−1 if none): the trade's arrival mid.  The book file's metadata
carries the instrument-day's ``source``, ``tick_size``, ``session_open_ns``, ``session_close_ns`` (0: the
day ends at its last state), and ``adv`` / ``daily_vol`` where a daily file gives them.  Files are written
atomically, so a crash never leaves half a partition.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from impactlab.data.store import write_parquet
from impactlab.errors import DataValidationError

__all__ = [
    "UNIVERSE_BOOK",
    "UNIVERSE_TRADES",
    "InstrumentDay",
    "PartitionKey",
    "list_partitions",
    "read_instrument_day",
    "write_instrument_day",
]

UNIVERSE_BOOK = pa.schema(
    [
        pa.field("ts_ns", pa.int64(), nullable=False),
        pa.field("bid_price", pa.float64()),
        pa.field("bid_size", pa.float64(), nullable=False),
        pa.field("ask_price", pa.float64()),
        pa.field("ask_size", pa.float64(), nullable=False),
    ]
)
"""Top of book after each event (ns since epoch; currency; shares)."""

UNIVERSE_TRADES = pa.schema(
    [
        pa.field("ts_ns", pa.int64(), nullable=False),
        pa.field("price", pa.float64(), nullable=False),
        pa.field("size", pa.float64(), nullable=False),
        pa.field("sign", pa.int8(), nullable=False),
        pa.field("pre_state", pa.int64(), nullable=False),
    ]
)
"""Trades: aggressor sign (+1 buyer-initiated) and the book row before each."""

_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
_META_FLOATS = ("tick_size", "adv", "daily_vol")
_META_INTS = ("session_open_ns", "session_close_ns")


@dataclass(frozen=True, order=True)
class PartitionKey:
    """One instrument-day of the dataset."""

    symbol: str
    date: dt.date

    def __post_init__(self) -> None:
        if not _SYMBOL.match(self.symbol):
            raise DataValidationError(
                "a symbol is 1-32 letters, digits, '.', '_' or '-'", field="symbol", value=self.symbol
            )

    def __str__(self) -> str:
        return f"{self.symbol}/{self.date.isoformat()}"

    def path(self, root: str | Path, table: str) -> Path:
        """The Parquet file of ``table`` (``book`` or ``trades``) for this key under ``root``."""
        return Path(root) / table / f"symbol={self.symbol}" / f"date={self.date.isoformat()}" / "part-0.parquet"


@dataclass(frozen=True, eq=False)
class InstrumentDay:
    """The states and trades of one instrument-day, and what is known about it (see the module doc)."""

    key: PartitionKey
    book: dict[str, NDArray[Any]]
    trades: dict[str, NDArray[Any]]
    tick_size: float
    session_open_ns: int
    session_close_ns: int = 0
    adv: float | None = None
    daily_vol: float | None = None
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_states(self) -> int:
        return int(self.book["ts_ns"].size)

    @property
    def n_trades(self) -> int:
        return int(self.trades["ts_ns"].size)


def write_instrument_day(root: str | Path, day: InstrumentDay) -> tuple[Path, Path]:
    """Write ``day`` under ``root`` (both files atomically; the trades first, so a partition whose book
    file exists is whole).  Returns the book and trades paths."""
    _check(day, where=str(day.key))
    meta = {
        "source": day.source,
        "tick_size": repr(float(day.tick_size)),
        "session_open_ns": str(int(day.session_open_ns)),
        "session_close_ns": str(int(day.session_close_ns)),
        "adv": "" if day.adv is None else repr(float(day.adv)),
        "daily_vol": "" if day.daily_vol is None else repr(float(day.daily_vol)),
        "extra": json.dumps(day.extra, sort_keys=True, default=str),
    }
    book = pa.table({f.name: day.book[f.name] for f in UNIVERSE_BOOK}, schema=UNIVERSE_BOOK)
    trades = pa.table({f.name: day.trades[f.name] for f in UNIVERSE_TRADES}, schema=UNIVERSE_TRADES)
    tp = write_parquet(trades, day.key.path(root, "trades"))
    bp = write_parquet(book, day.key.path(root, "book"), metadata=meta)
    return bp, tp


def list_partitions(root: str | Path) -> list[PartitionKey]:
    """Every instrument-day under ``root`` (those with a book file), sorted by symbol and date."""
    base = Path(root) / "book"
    if not base.is_dir():
        raise DataValidationError("not a universe dataset: no book/ folder", path=root)
    keys = []
    for p in base.glob("symbol=*/date=*/part-0.parquet"):
        sym = p.parent.parent.name.removeprefix("symbol=")
        d = p.parent.name.removeprefix("date=")
        try:
            keys.append(PartitionKey(sym, dt.date.fromisoformat(d)))
        except ValueError as exc:
            raise DataValidationError(f"bad partition folder: {exc}", path=p.parent, field="date", value=d) from exc
    return sorted(keys)


def _meta_value(meta: dict[bytes, bytes], name: str, path: Path) -> str:
    raw = meta.get(name.encode())
    if raw is None:
        raise DataValidationError("book file metadata lacks a field", path=path, field=name)
    return raw.decode()


def read_instrument_day(root: str | Path, key: PartitionKey) -> InstrumentDay:
    """Read and check one instrument-day; a broken file raises :class:`DataValidationError` naming the
    file, row, field and value."""
    bp, tp = key.path(root, "book"), key.path(root, "trades")
    for p in (bp, tp):
        if not p.exists():
            raise DataValidationError("partition file missing", path=p)
    try:
        bt, tt = pq.read_table(bp), pq.read_table(tp)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataValidationError(f"unreadable Parquet: {exc}", path=bp) from exc
    for t, schema, p in ((bt, UNIVERSE_BOOK, bp), (tt, UNIVERSE_TRADES, tp)):
        missing = [n for n in schema.names if n not in t.column_names]
        if missing:
            raise DataValidationError("column missing", path=p, field=missing[0])
    meta = bt.schema.metadata or {}
    vals: dict[str, Any] = {}
    for name in _META_FLOATS:
        s = _meta_value(meta, name, bp)
        try:
            vals[name] = float(s) if s else None
        except ValueError as exc:
            raise DataValidationError("metadata is not a number", path=bp, field=name, value=s) from exc
    for name in _META_INTS:
        s = _meta_value(meta, name, bp)
        try:
            vals[name] = int(s)
        except ValueError as exc:
            raise DataValidationError("metadata is not an integer", path=bp, field=name, value=s) from exc
    book = {f.name: bt.column(f.name).to_numpy(zero_copy_only=False).astype(f.type.to_pandas_dtype(), copy=False)
            for f in UNIVERSE_BOOK}  # fmt: skip
    trades = {f.name: tt.column(f.name).to_numpy(zero_copy_only=False).astype(f.type.to_pandas_dtype(), copy=False)
              for f in UNIVERSE_TRADES}  # fmt: skip
    extra_raw = meta.get(b"extra", b"{}").decode()
    day = InstrumentDay(
        key, book, trades, vals["tick_size"], vals["session_open_ns"], vals["session_close_ns"], vals["adv"],
        vals["daily_vol"], meta.get(b"source", b"").decode(), json.loads(extra_raw or "{}"),
    )  # fmt: skip
    _check(day, where=str(bp), trades_where=str(tp))
    return day


def _first_bad(mask: NDArray[np.bool_]) -> int | None:
    idx = np.flatnonzero(mask)
    return int(idx[0]) if idx.size else None


def _check(day: InstrumentDay, *, where: str, trades_where: str | None = None) -> None:
    """The rules every partition keeps; the first broken one raises with its row (1-based) and value."""
    tw = trades_where or where
    if not (math.isfinite(day.tick_size) and day.tick_size > 0):
        raise DataValidationError("tick size must be > 0", path=where, field="tick_size", value=day.tick_size)
    for name, v in (("adv", day.adv), ("daily_vol", day.daily_vol)):
        if v is not None and not (math.isfinite(v) and v > 0):
            raise DataValidationError(f"{name} must be > 0 when given", path=where, field=name, value=v)
    b, t = day.book, day.trades
    n = b["ts_ns"].size
    if n == 0:
        raise DataValidationError("no book states", path=where, field="ts_ns")
    for name in ("bid_size", "ask_size"):
        bad = _first_bad(~(np.isfinite(b[name]) & (b[name] >= 0)))
        if bad is not None:
            raise DataValidationError("size must be finite and >= 0", path=where, line=bad + 1, field=name,
                                      value=float(b[name][bad]))  # fmt: skip
    for name in ("bid_price", "ask_price"):
        bad = _first_bad(b[name] <= 0)
        if bad is not None:
            raise DataValidationError("price must be > 0 (NaN for an empty side)", path=where, line=bad + 1,
                                      field=name, value=float(b[name][bad]))  # fmt: skip
    bad = _first_bad(np.diff(b["ts_ns"]) < 0)
    if bad is not None:
        raise DataValidationError("time goes backwards", path=where, line=bad + 2, field="ts_ns",
                                  value=int(b["ts_ns"][bad + 1]))  # fmt: skip
    bad = _first_bad(np.diff(t["ts_ns"]) < 0)
    if bad is not None:
        raise DataValidationError("time goes backwards", path=tw, line=bad + 2, field="ts_ns",
                                  value=int(t["ts_ns"][bad + 1]))  # fmt: skip
    bad = _first_bad(~(np.isfinite(t["size"]) & (t["size"] > 0)))
    if bad is not None:
        raise DataValidationError("trade size must be > 0", path=tw, line=bad + 1, field="size",
                                  value=float(t["size"][bad]))  # fmt: skip
    bad = _first_bad(~np.isin(t["sign"], (-1, 1)))
    if bad is not None:
        raise DataValidationError("sign must be +1 or -1", path=tw, line=bad + 1, field="sign",
                                  value=int(t["sign"][bad]))  # fmt: skip
    bad = _first_bad((t["pre_state"] < -1) | (t["pre_state"] >= n))
    if bad is not None:
        raise DataValidationError(f"pre_state must be in [-1, {n})", path=tw, line=bad + 1, field="pre_state",
                                  value=int(t["pre_state"][bad]))  # fmt: skip
