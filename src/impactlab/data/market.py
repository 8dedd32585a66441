"""The one market-data model: an instrument-day of events, book states and trades, with its instrument.

Every loader (LOBSTER, Binance spot / USD-M / COIN-M, Databento DBN, TAQ, generic trades and quotes)
returns a :class:`MarketDay`, and every consumer (features, calibration, schedules, simulation,
execution, TCA, hedging, the bus and the service) takes one.  Nothing outside the loaders knows a
vendor's layout.

Conventions
-----------
* Times are int64 ns since the epoch (UTC).  ``ts_ns`` is when the information became known to the
  desk (the capture's receive time where the source has one, else the exchange time); ``exch_ns`` is
  the exchange's own time stamp (equal to ``ts_ns`` where the source has only one clock).
* Prices are float64 in the quote currency and integer ticks (``round(price / tick_size)``); sizes are
  float64 in the instrument's quantity unit (shares, coins or contracts, :attr:`InstrumentSpec.size_unit`).
* Sides are +1 bid / buy, −1 ask / sell.  A trade's ``sign`` is the aggressor's side (0 unknown).
* Book states hold the depth the source really shows (:attr:`MarketDay.depth`); levels that are empty
  or unknown are NaN prices and zero sizes, never vendor dummies.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace
from enum import IntEnum, IntFlag
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from impactlab.data.validation import LoadReport, Quarantine
from impactlab.errors import DataValidationError, InsufficientDepthError

__all__ = [
    "EMPTY_ASK_TICK",
    "EMPTY_BID_TICK",
    "BookStates",
    "EventFlag",
    "EventKind",
    "Events",
    "InstrumentSpec",
    "MarketDay",
    "SessionCalendar",
    "Trades",
]

NS = 1_000_000_000
EMPTY_BID_TICK = -(10**15)
"""Integer tick of an empty bid level (far below any real price in ticks; safe to negate)."""
EMPTY_ASK_TICK = 10**15
"""Integer tick of an empty ask level."""
F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
I8 = NDArray[np.int8]


class EventKind(IntEnum):
    """What one market-data event does to the book.

    ``ADD``/``CANCEL``/``MODIFY``/``FILL`` act on one resting order (``order_id`` set where the source has
    one).  ``LEVEL`` sets a whole price level to an absolute size (venues that publish level quantities,
    e.g. Binance depth diffs).  ``TRADE`` is a print (the aggressor's side), which changes no book by
    itself; ``FILL`` is the execution of a resting order (its side).  ``CLEAR`` empties the book;
    ``SNAPSHOT`` adds a resting order or level as part of a snapshot; ``STATUS`` is a trading-status
    message (halt, resume).
    """

    ADD = 1
    CANCEL = 2
    MODIFY = 3
    TRADE = 4
    FILL = 5
    CLEAR = 6
    SNAPSHOT = 7
    LEVEL = 8
    STATUS = 9


class EventFlag(IntFlag):
    """Bit flags on an event."""

    NONE = 0
    HIDDEN = 1  # execution of a hidden (non-displayed) order
    SNAPSHOT = 2  # part of a book snapshot
    LAST = 4  # last event of a batch: the book is consistent after it
    DELETE = 8  # the event removes the whole resting order


# --------------------------------------------------------------------------------------------------
# Instrument
# --------------------------------------------------------------------------------------------------


def _hhmm(text: str) -> int:
    h, m = text.split(":")
    return int(h) * 3600 + int(m) * 60


@dataclass(frozen=True, kw_only=True)
class SessionCalendar:
    """When an instrument trades, in its own time zone.

    ``open``/``close`` are wall-clock ``HH:MM`` times; ``close`` may be ``24:00``.  When ``open`` is later
    than ``close`` the session starts on the previous calendar day (CME Globex: 17:00 the day before to
    16:00 on the trading date).  ``weekdays`` are the ISO weekdays of trading dates (1 Monday … 7 Sunday).
    """

    name: str
    tz: str
    open: str
    close: str
    weekdays: tuple[int, ...] = (1, 2, 3, 4, 5)

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.tz)
        except Exception as exc:
            raise DataValidationError(f"unknown time zone {self.tz!r}", field="tz", value=self.tz) from exc
        for name in ("open", "close"):
            text = getattr(self, name)
            try:
                secs = _hhmm(text)
            except ValueError as exc:
                raise DataValidationError("expected HH:MM", field=name, value=text) from exc
            if not 0 <= secs <= 86_400:
                raise DataValidationError("expected a time of day in 00:00..24:00", field=name, value=text)

    @classmethod
    def us_equities(cls) -> SessionCalendar:
        """NYSE / NASDAQ regular hours, 09:30–16:00 New York."""
        return cls(name="US equities", tz="America/New_York", open="09:30", close="16:00")

    @classmethod
    def cme_globex(cls) -> SessionCalendar:
        """CME Globex equity-index futures: 17:00 the day before to 16:00 Chicago, Monday to Friday."""
        return cls(name="CME Globex", tz="America/Chicago", open="17:00", close="16:00")

    @classmethod
    def always(cls) -> SessionCalendar:
        """Around the clock (crypto), UTC days."""
        return cls(name="24/7", tz="UTC", open="00:00", close="24:00", weekdays=(1, 2, 3, 4, 5, 6, 7))

    @property
    def overnight(self) -> bool:
        """The session opens on the calendar day before its trading date."""
        return _hhmm(self.open) >= _hhmm(self.close) and self.close != "24:00"

    def _wall_ns(self, date: dt.date, secs: int) -> int:
        tz = ZoneInfo(self.tz)
        day = dt.datetime(date.year, date.month, date.day, tzinfo=tz)
        noon_offset = day.replace(hour=12).utcoffset()
        assert noon_offset is not None
        midnight_utc = dt.datetime(date.year, date.month, date.day, tzinfo=dt.UTC)
        return (int((midnight_utc - noon_offset).timestamp()) + secs) * NS

    def bounds_ns(self, date: dt.date) -> tuple[int, int]:
        """``(open, close)`` of the session of trading date ``date``, ns since the epoch."""
        o, c = _hhmm(self.open), _hhmm(self.close)
        if self.overnight:
            return self._wall_ns(date - dt.timedelta(days=1), o), self._wall_ns(date, c)
        return self._wall_ns(date, o), self._wall_ns(date, c)

    def length_s(self) -> float:
        """Scheduled session length in seconds (no holidays, no daylight-saving change)."""
        o, c = _hhmm(self.open), _hhmm(self.close)
        return float(c - o if c > o else c + 86_400 - o)

    def trading_date(self, ts_ns: int) -> dt.date:
        """The trading date a time belongs to (an overnight session's evening goes to the next day)."""
        local = dt.datetime.fromtimestamp(ts_ns / NS, tz=ZoneInfo(self.tz))
        if self.overnight and local.hour * 3600 + local.minute * 60 >= _hhmm(self.open):
            return local.date() + dt.timedelta(days=1)
        return local.date()

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {
            "name": self.name,
            "tz": self.tz,
            "open": self.open,
            "close": self.close,
            "weekdays": list(self.weekdays),
        }


AssetClass = Literal["equity", "future", "crypto_spot", "crypto_perpetual", "crypto_future", "fx", "option", "other"]


@dataclass(frozen=True, kw_only=True)
class InstrumentSpec:
    """What is traded, and how quantities and prices turn into money.

    Attributes
    ----------
    symbol, venue, asset_class
        Identity (``venue`` a MIC or the venue's name, e.g. ``XNAS``, ``XCME``, ``BINANCE-COINM``).
    tick_size, lot_size
        Minimum price and quantity increments.
    multiplier
        Currency per point per contract for a linear contract (ES: 50 USD); 1 for shares and coins.
    contract_type, contract_value
        ``linear`` (notional = quantity × price × multiplier, in the quote currency) or ``inverse``
        (each contract is worth ``contract_value`` units of the quote currency; notional in the settlement
        coin = quantity × contract_value / price).
    quote_currency, settlement_currency
        Prices are in the quote currency; P&L and fees settle in the settlement currency (the coin for
        an inverse contract).
    size_unit
        What one unit of size is: ``shares``, ``contracts`` or the base asset (``BTC``).
    calendar
        The session calendar.
    expiry_ns
        Expiry of a dated contract, else ``None``.
    """

    symbol: str
    venue: str
    asset_class: AssetClass
    tick_size: float
    lot_size: float = 1.0
    multiplier: float = 1.0
    contract_type: Literal["linear", "inverse"] = "linear"
    contract_value: float = 1.0
    quote_currency: str = "USD"
    settlement_currency: str = "USD"
    size_unit: str = "shares"
    calendar: SessionCalendar = field(default_factory=SessionCalendar.us_equities)
    expiry_ns: int | None = None

    def __post_init__(self) -> None:
        for name in ("tick_size", "lot_size", "multiplier", "contract_value"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise DataValidationError(f"'{name}' must be a positive number", field=name, value=v)
        if self.contract_type not in ("linear", "inverse"):
            raise DataValidationError("expected 'linear' or 'inverse'", field="contract_type", value=self.contract_type)
        if not self.symbol:
            raise DataValidationError("an instrument needs a symbol", field="symbol", value=self.symbol)

    @property
    def inverse(self) -> bool:
        """Inverse (coin-margined) contract."""
        return self.contract_type == "inverse"

    def notional(self, quantity: float | F64, price: float | F64) -> Any:
        """Notional in the quote currency (USD for every instrument here).

        Linear: ``quantity × price × multiplier``; inverse: ``quantity × contract_value`` (the price does
        not enter: a contract is a fixed quote-currency amount).
        """
        q = np.abs(quantity)
        return q * self.contract_value if self.inverse else q * price * self.multiplier

    def notional_settlement(self, quantity: float | F64, price: float | F64) -> Any:
        """Notional in the settlement currency (the coin for an inverse contract)."""
        if self.inverse:
            return np.abs(quantity) * self.contract_value / price
        return self.notional(quantity, price)

    def money(self, price_diff: float | F64, quantity: float | F64, price: float | F64) -> Any:
        """P&L in the settlement currency of ``quantity`` bought at ``price`` and revalued ``price_diff`` higher.

        Linear: ``Δp × q × multiplier``; inverse: ``q × contract_value × (1/p − 1/(p + Δp))`` (in coins).
        """
        if self.inverse:
            return quantity * self.contract_value * (1.0 / price - 1.0 / (np.asarray(price) + price_diff))
        return np.asarray(price_diff) * quantity * self.multiplier

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (what a model file records)."""
        return {
            "symbol": self.symbol,
            "venue": self.venue,
            "asset_class": self.asset_class,
            "tick_size": self.tick_size,
            "lot_size": self.lot_size,
            "multiplier": self.multiplier,
            "contract_type": self.contract_type,
            "contract_value": self.contract_value,
            "quote_currency": self.quote_currency,
            "settlement_currency": self.settlement_currency,
            "size_unit": self.size_unit,
            "calendar": self.calendar.to_dict(),
            "expiry_ns": self.expiry_ns,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InstrumentSpec:
        """Inverse of :meth:`to_dict`; unknown keys are errors."""
        d = dict(d)
        cal = d.pop("calendar", None)
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise DataValidationError(f"unknown instrument field(s) {sorted(unknown)}", field="instrument")
        if cal is not None:
            cal = dict(cal)
            cal["weekdays"] = tuple(cal.get("weekdays", (1, 2, 3, 4, 5)))
            d["calendar"] = SessionCalendar(**cal)
        return cls(**d)

    def same_instrument(self, other: InstrumentSpec) -> bool:
        """Same symbol on the same venue (case-insensitive)."""
        return self.symbol.upper() == other.symbol.upper() and self.venue.upper() == other.venue.upper()


# --------------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Events:
    """Market-data events, one row each, in the order they were received.

    ``kind`` is an :class:`EventKind`, ``flags`` an :class:`EventFlag` bit set; ``order_id`` is −1 where
    the source has no order ids; ``line`` the 1-based source line or record number.
    """

    ts_ns: I64
    exch_ns: I64
    kind: I8
    side: I8
    price: F64
    price_ticks: I64
    size: F64
    order_id: I64
    flags: NDArray[np.uint8]
    line: I64

    def __len__(self) -> int:
        return int(self.ts_ns.size)

    @classmethod
    def empty(cls) -> Events:
        """No events (a source that ships only book states and trades)."""
        z = np.zeros(0, np.int64)
        return cls(
            z, z, z.astype(np.int8), z.astype(np.int8), z.astype(float), z, z.astype(float), z, z.astype(np.uint8), z
        )

    def take(self, idx: NDArray[Any]) -> Events:
        """Rows ``idx`` (indices or a mask)."""
        return Events(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))

    @classmethod
    def prints(cls, ts_ns: I64, sign: I8, price: F64, size: F64, tick_size: float, line: I64) -> Events:
        """The event stream of a source that ships trades only (TAQ, generic tables): one ``TRADE`` each."""
        n = ts_ns.size
        return cls(
            ts_ns=ts_ns, exch_ns=ts_ns, kind=np.full(n, EventKind.TRADE, np.int8), side=sign.astype(np.int8),
            price=price, price_ticks=np.rint(price / tick_size).astype(np.int64), size=size,
            order_id=-np.ones(n, np.int64), flags=np.full(n, EventFlag.LAST, np.uint8), line=line,
        )  # fmt: skip

    def to_arrow(self) -> pa.Table:
        """Arrow table of every column."""
        return pa.table({f: getattr(self, f) for f in self.__dataclass_fields__})


@dataclass(frozen=True, eq=False)
class BookStates:
    """Book states at the source's depth: row k is the book in force from ``ts_ns[k]``.

    ``bid_price``/``ask_price`` are ``(n, depth)`` float64 (NaN where a level is empty or unknown);
    sizes are float64 (0 there).  ``event_index[k]`` is the last event the state includes (−1 where the
    source ships states without events).  ``synced[k]`` is False where the state is known to be
    incomplete (a book rebuilt from diffs before a snapshot, or after a sequence gap).
    """

    ts_ns: I64
    bid_price: F64
    bid_size: F64
    ask_price: F64
    ask_size: F64
    event_index: I64
    synced: NDArray[np.bool_]
    bid_ticks: I64 | None = None
    ask_ticks: I64 | None = None

    def __len__(self) -> int:
        return int(self.ts_ns.size)

    @property
    def depth(self) -> int:
        """Levels per side."""
        return int(self.bid_price.shape[1])

    def take(self, idx: NDArray[Any]) -> BookStates:
        """Rows ``idx`` (indices or a mask)."""
        return BookStates(
            ts_ns=self.ts_ns[idx],
            bid_price=self.bid_price[idx],
            bid_size=self.bid_size[idx],
            ask_price=self.ask_price[idx],
            ask_size=self.ask_size[idx],
            event_index=self.event_index[idx],
            synced=self.synced[idx],
            bid_ticks=None if self.bid_ticks is None else self.bid_ticks[idx],
            ask_ticks=None if self.ask_ticks is None else self.ask_ticks[idx],
        )

    @property
    def mid(self) -> F64:
        """Mid price of each state (NaN when a side is empty)."""
        return (self.bid_price[:, 0] + self.ask_price[:, 0]) / 2.0

    def ticks(self, tick_size: float) -> tuple[I64, I64]:
        """``(bid, ask)`` prices as integer ticks, ``(n, depth)``; empty levels are :data:`EMPTY_BID_TICK` /
        :data:`EMPTY_ASK_TICK`.  Loaders that read exact integer prices store them (``bid_ticks``,
        ``ask_ticks``) and they are returned as they are."""
        if self.bid_ticks is not None and self.ask_ticks is not None:
            return self.bid_ticks, self.ask_ticks
        with np.errstate(invalid="ignore"):
            b = np.where(np.isfinite(self.bid_price), np.rint(self.bid_price / tick_size), EMPTY_BID_TICK)
            a = np.where(np.isfinite(self.ask_price), np.rint(self.ask_price / tick_size), EMPTY_ASK_TICK)
        return b.astype(np.int64), a.astype(np.int64)

    def to_arrow(self) -> pa.Table:
        """``ts_ns`` then, per level k, ``ask_price_k, ask_size_k, bid_price_k, bid_size_k``."""
        cols: dict[str, Any] = {"ts_ns": self.ts_ns}
        for k in range(self.depth):
            cols[f"ask_price_{k + 1}"] = self.ask_price[:, k]
            cols[f"ask_size_{k + 1}"] = self.ask_size[:, k]
            cols[f"bid_price_{k + 1}"] = self.bid_price[:, k]
            cols[f"bid_size_{k + 1}"] = self.bid_size[:, k]
        return pa.table(cols)


@dataclass(frozen=True, eq=False)
class Trades:
    """Prints, with the aggressor's sign (+1 buyer-initiated, −1 seller-initiated, 0 unknown).

    ``event_index`` is the print's row in :attr:`MarketDay.events` (−1 where the source ships trades on
    their own); ``hidden`` marks executions of non-displayed orders.
    """

    ts_ns: I64
    exch_ns: I64
    price: F64
    size: F64
    sign: I8
    trade_id: I64
    event_index: I64
    hidden: NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.ts_ns.size)

    def take(self, idx: NDArray[Any]) -> Trades:
        """Rows ``idx`` (indices or a mask)."""
        return Trades(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))

    def as_dict(self) -> dict[str, NDArray[Any]]:
        """Columns as a dict of arrays."""
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


# --------------------------------------------------------------------------------------------------
# The instrument-day
# --------------------------------------------------------------------------------------------------

SourceFormat = Literal[
    "lobster", "binance", "databento-mbo", "databento-mbp", "databento-trades", "taq", "generic", "synthetic"
]


@dataclass(frozen=True, eq=False)
class MarketDay:
    """One validated instrument-day from any source: instrument, events, book states and trades.

    Attributes
    ----------
    spec
        The instrument (tick, lot, multiplier, contract type, currencies, calendar).
    date
        The trading date.
    source
        The source format (``lobster``, ``binance``, ``databento-mbo``, ``taq``, …).
    events, book, trades
        The tables; ``events`` may be empty where the source ships only states and trades.
    depth
        Levels per side the source really shows (1 for top of book).
    has_order_ids
        Events name the resting order (order-by-order data).
    paths
        Files read.
    report, quarantine
        What the load read, kept and set aside, by rule.
    notes
        What the loader assumed or could not know (e.g. depth beyond level 1 is unknown).
    """

    spec: InstrumentSpec
    date: dt.date
    source: SourceFormat
    events: Events
    book: BookStates
    trades: Trades
    paths: tuple[Path, ...]
    report: LoadReport
    quarantine: Quarantine
    has_order_ids: bool = False
    notes: tuple[str, ...] = ()
    extras: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        """Book states."""
        return len(self.book)

    # identity -------------------------------------------------------------------------------------
    @property
    def symbol(self) -> str:
        """The instrument's symbol."""
        return self.spec.symbol

    @property
    def venue(self) -> str:
        """The instrument's venue."""
        return self.spec.venue

    @property
    def tick_size(self) -> float:
        """Minimum price increment, quote currency."""
        return self.spec.tick_size

    @property
    def depth(self) -> int:
        """Levels per side the source shows."""
        return self.book.depth

    @property
    def label(self) -> str:
        """``SYMBOL VENUE DATE Ln`` for messages."""
        return f"{self.symbol} {self.venue} {self.date.isoformat()} L{self.depth}"

    # times ----------------------------------------------------------------------------------------
    @property
    def ts_ns(self) -> I64:
        """Book-state times (the desk's clock)."""
        return self.book.ts_ns

    @property
    def first_ns(self) -> int:
        """Time of the first book state."""
        return int(self.book.ts_ns[0])

    @property
    def last_ns(self) -> int:
        """Time of the last book state."""
        return int(self.book.ts_ns[-1])

    @property
    def session_bounds_ns(self) -> tuple[int, int]:
        """Scheduled open and close of the day's session (from the calendar)."""
        return self.spec.calendar.bounds_ns(self.date)

    @property
    def start_ns(self) -> int:
        """Where the day's data start within its session; offsets such as ``--start 30m`` count from here.

        The session open when the data begin before it or within a minute after it (LOBSTER and TAQ:
        09:30), else the first book state (a Binance capture, a CME file of a few minutes).
        """
        open_ns = self.session_bounds_ns[0]
        return open_ns if self.first_ns < open_ns + 60 * NS else self.first_ns

    @property
    def end_ns(self) -> int:
        """Where the day's data end: the close when they reach it or stop within a minute of it, else the
        last book state."""
        close_ns = self.session_bounds_ns[1]
        return close_ns if self.last_ns > close_ns - 60 * NS else self.last_ns + 1

    @property
    def covers_session(self) -> bool:
        """The data run from the session's open to its close (a full equity day), not a shorter capture."""
        o, c = self.session_bounds_ns
        return self.start_ns == o and self.end_ns == c

    @property
    def session_s(self) -> float:
        """The session that volumes and volatility are measured over, seconds: the calendar session when
        the data cover it, else the data's own span (a capture is its own session: the square-root law
        σ√(Q/V) is the same whether σ and V are measured per day or per span)."""
        if self.covers_session:
            o, c = self.session_bounds_ns
            return (c - o) / NS
        return self.span_s

    @property
    def span_s(self) -> float:
        """Seconds from :attr:`start_ns` to :attr:`end_ns`."""
        return max((self.end_ns - self.start_ns) / NS, 0.0)

    # book views -----------------------------------------------------------------------------------
    def bid(self) -> tuple[F64, F64]:
        """``(price, size)`` of the bid levels, each ``(n, depth)``; empty levels NaN / 0."""
        return self.book.bid_price, self.book.bid_size

    def ask(self) -> tuple[F64, F64]:
        """``(price, size)`` of the ask levels, each ``(n, depth)``; empty levels NaN / 0."""
        return self.book.ask_price, self.book.ask_size

    @property
    def mid(self) -> F64:
        """Mid of every book state."""
        return self.book.mid

    def first_mid(self) -> float:
        """The first finite mid (a reference price)."""
        m = self.mid
        ok = np.flatnonzero(np.isfinite(m))
        if ok.size == 0:
            raise DataValidationError(f"{self.label}: no book state has both sides", path=self._path0())
        return float(m[ok[0]])

    def require_depth(self, levels: int, what: str) -> None:
        """Raise :class:`InsufficientDepthError` naming ``what`` when the source shows fewer levels."""
        if self.depth < levels:
            raise InsufficientDepthError(
                f"{what} needs at least {levels} book levels; {self.label} ({self.source}) shows {self.depth}"
            )

    def state_at(self, when_ns: I64 | int, *, strict: bool = False) -> Any:
        """Index of the state in force at each time (last ``ts <= when``; ``<`` if strict), −1 before."""
        return np.searchsorted(self.book.ts_ns, when_ns, side="left" if strict else "right").astype(np.int64) - 1

    def volume(self) -> float:
        """Total traded size of the day (visible and hidden)."""
        return float(self.trades.size.sum())

    # slicing --------------------------------------------------------------------------------------
    def window(self, start_ns: int, end_ns: int) -> MarketDay:
        """The day restricted to ``[start_ns, end_ns)`` (book states, trades and events by ``ts_ns``).

        The state in force at ``start_ns`` is kept as the first row (moved to ``start_ns``), so the book is
        known from the first instant.
        """
        b = self.book
        first = max(int(np.searchsorted(b.ts_ns, start_ns, side="right")) - 1, 0)
        last = int(np.searchsorted(b.ts_ns, end_ns, side="left"))
        if last <= first:
            raise DataValidationError(
                f"{self.label}: no book state in the window", field="window", value=f"{start_ns}..{end_ns}"
            )
        book = b.take(np.arange(first, last))
        ts0 = book.ts_ns.copy()
        ts0[0] = max(int(ts0[0]), int(start_ns))
        book = replace(book, ts_ns=ts0)
        ev_mask = (self.events.ts_ns >= start_ns) & (self.events.ts_ns < end_ns)
        ev_lo = int(np.argmax(ev_mask)) if ev_mask.any() else 0
        tr_mask = (self.trades.ts_ns >= start_ns) & (self.trades.ts_ns < end_ns)
        ev_map = np.cumsum(ev_mask) - 1
        trades = self.trades.take(tr_mask)
        trades = replace(
            trades,
            event_index=np.where(trades.event_index >= 0, ev_map[np.clip(trades.event_index, 0, None)], -1)
            if len(self.events)
            else trades.event_index,
        )
        book = replace(book, event_index=np.where(book.event_index >= ev_lo, book.event_index - ev_lo, -1))
        return replace(self, events=self.events.take(ev_mask), book=book, trades=trades)

    def _path0(self) -> Path | None:
        return self.paths[0] if self.paths else None

    def describe(self) -> dict[str, Any]:
        """Catalog-style summary: identity, source, depth, rows and span."""
        return {
            "symbol": self.symbol,
            "venue": self.venue,
            "date": self.date.isoformat(),
            "source": self.source,
            "depth": self.depth,
            "order_ids": self.has_order_ids,
            "events": len(self.events),
            "book_states": len(self.book),
            "trades": len(self.trades),
            "first_ns": self.first_ns,
            "last_ns": self.last_ns,
            "instrument": self.spec.to_dict(),
            "notes": list(self.notes),
        }
