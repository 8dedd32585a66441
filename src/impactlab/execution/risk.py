"""Pre-trade risk checks and the kill switch.

:class:`RiskGate` is the only way an :class:`~impactlab.execution.OrderManager` built by this package
reaches a venue: every child order passes its checks (size, notional at the worst price the order could
trade at, participation in the market's recent volume, a price collar around the current mid, open
orders) or is refused with :class:`~impactlab.errors.RiskLimitError`.  The limits are a frozen config,
read from a limits file that a run's command line may tighten but never loosen (:func:`load_limits`);
the kill switch, once tripped, refuses everything and cancels what is open until a person resets it, and
it is a file beside the store, so it survives a restart and another process (``impactlab kill-switch
trip``) can trip it while a run works.  The participation window is rebuilt from the store's fills, so
consecutive runs share it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from impactlab.data import ChildOrder, OrderType, Store
from impactlab.data.market import InstrumentSpec
from impactlab.errors import RiskLimitError
from impactlab.execution.orders import OrderManager

__all__ = [
    "KillSwitch",
    "MarketSnapshot",
    "RiskGate",
    "RiskLimits",
    "guarded_order_manager",
    "kill_switch_path",
    "load_limits",
    "session_window_volume",
]

log = logging.getLogger(__name__)
NS = 1_000_000_000


@dataclass(frozen=True)
class RiskLimits:
    """Pre-trade limits, per child order unless named otherwise.

    Parameters
    ----------
    max_order_qty
        Shares in one order.
    max_order_notional
        Currency in one order, valued at the worst price it could trade at (a market order at the collar).
    max_participation
        Our shares filled over ``participation_window_s``, plus those still open, plus the order's, as a
        fraction of the market's volume plus ours in that window (cancelled and re-posted shares do not
        count twice; resting ones cannot be stacked past the limit).
    participation_window_s
        Look-back of the participation check.
    min_market_volume
        Below this market volume in the window the participation check counts the window as this
        (so an empty window cannot divide by zero or let anything through).
    price_collar_bps
        A limit price may not be more than this far through the mid (buying above, selling below).
    max_open_orders
        Orders open at once, all venues.
    max_parent_qty
        Shares one parent order may trade in total.
    """

    max_order_qty: float = 10_000.0
    max_order_notional: float = 5_000_000.0
    max_participation: float = 0.25
    participation_window_s: float = 300.0
    min_market_volume: float = 1_000.0
    price_collar_bps: float = 50.0
    max_open_orders: int = 50
    max_parent_qty: float = 1_000_000.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise RiskLimitError(f"risk limit {f.name!r} must be finite and > 0, got {v!r}", check="config",
                                     value=v)  # fmt: skip
        if self.max_participation > 1:
            raise RiskLimitError(f"'max_participation' must be <= 1, got {self.max_participation!r}",
                                 check="config", value=self.max_participation)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def collar_price(self, side: int, mid: float, tick_size: float) -> float:
        """The marketable limit a market order is sent as (venue adapters take this): the collar around
        ``mid``, rounded inwards to the tick grid."""
        raw = mid * (1 + side * self.price_collar_bps / 1e4)
        ticks = math.floor(raw / tick_size + 1e-9) if side > 0 else math.ceil(raw / tick_size - 1e-9)
        return ticks * tick_size

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RiskLimits:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise RiskLimitError(f"unknown risk limit(s) {sorted(unknown)}; known: {sorted(known)}", check="config")
        return cls(**d)

    def tightened(self, **overrides: float | None) -> RiskLimits:
        """These limits with ``overrides`` (None: keep) that may only make them stricter: a lower
        maximum, a narrower collar.  Raises :class:`~impactlab.errors.RiskLimitError` for one that would
        loosen a limit (a run cannot widen what its limits file allows)."""
        allowed = {"max_order_qty", "max_order_notional", "max_participation", "price_collar_bps",
                   "max_open_orders", "max_parent_qty"}  # fmt: skip
        out = self.to_dict()
        for name, v in overrides.items():
            if v is None:
                continue
            if name not in allowed:
                raise RiskLimitError(f"risk limit {name!r} cannot be set by a run; change the limits file",
                                     check="config")  # fmt: skip
            if not float(v) <= out[name]:
                raise RiskLimitError(f"{name} {v:g} would loosen the limit {out[name]:g}: a run may only "
                                     "tighten its limits (change the limits file)", check="config",
                                     value=v, limit=out[name])  # fmt: skip
            out[name] = type(out[name])(v)
        return RiskLimits.from_dict(out)


def load_limits(path: str | Path | None = None) -> tuple[RiskLimits, str]:
    """The desk's risk limits and where they came from: ``path``, else ``$IMPACTLAB_LIMITS``, else
    ``~/.config/impactlab/limits.toml`` when it exists, else the defaults of :class:`RiskLimits`.

    The file is TOML or JSON with the limits at the top level or under ``[limits]``.  Raises
    :class:`~impactlab.errors.RiskLimitError` (``check="config"``) naming the file for one that cannot
    be read or holds an unknown or invalid limit."""
    import tomllib

    src = path or os.environ.get("IMPACTLAB_LIMITS")
    if src is None:
        default = Path("~/.config/impactlab/limits.toml").expanduser()
        if not default.exists():
            return RiskLimits(), "defaults"
        src = default
    p = Path(src).expanduser()
    try:
        text = p.read_text()
        d = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise RiskLimitError(f"cannot read the limits file {str(p)!r}: {exc}", check="config") from exc
    d = d.get("limits", d) if isinstance(d, dict) else d
    if not isinstance(d, dict):
        raise RiskLimitError(f"limits file {str(p)!r} must hold a table of limits", check="config")
    try:
        return RiskLimits.from_dict(d), str(p)
    except (RiskLimitError, TypeError) as exc:
        raise RiskLimitError(f"limits file {str(p)!r}: {exc}", check="config") from exc


def kill_switch_path(store_path: str | Path | None) -> Path | str | None:
    """Where the kill switch of a store lives: ``<store>.kill-switch.json`` beside a DuckDB file, the
    store's own URL for a PostgreSQL store (a row in it), None in memory."""
    from impactlab.config import default_store_path
    from impactlab.data.store import _url, is_url

    target = default_store_path() if store_path is None else store_path
    if is_url(target):
        return _url(target)
    if str(target) == ":memory:":
        return None
    p = Path(target).expanduser()
    return p.with_name(p.name + ".kill-switch.json")


@dataclass(frozen=True)
class MarketSnapshot:
    """What the checks need to know about the market now: the mid (NaN when there is no two-sided quote)
    and the market's traded volume over the participation window."""

    mid: float
    market_volume: float


class KillSwitch:
    """Trips once and stays tripped: new orders are refused and ``on_trip`` (cancel everything) runs.

    Parameters
    ----------
    path
        A JSON file that holds the state, or the ``postgresql://`` URL of a shared store (the state is then
        its ``engine_state`` row ``kill_switch``, read at most four times a second), or None (in memory
        only).  Tripping and resetting write it atomically; :attr:`tripped` rereads it when it changes, so a
        switch tripped by another process (an operator's ``impactlab kill-switch trip``) stops this one, and
        a restart starts tripped.
    clock
        Nanoseconds since the epoch, for the times recorded.
    """

    def __init__(self, path: str | Path | None = None, *, clock: Callable[[], int] = time.time_ns,
                 store: Any = None) -> None:  # fmt: skip
        from impactlab.data.store import is_url

        self.url = str(path) if is_url(path) else None  # a shared (PostgreSQL) store: the switch is a row in it
        self.path = Path(path) if path is not None and self.url is None else None
        self._db: Any = store if self.url is not None else None  # the run's own connection, when it has one
        self._owns_db = False
        self._checked = 0.0
        self._clock = clock
        self._tripped = False
        self.reason = ""
        self.tripped_ns: int | None = None
        self.history: list[dict[str, Any]] = []
        self._stamp: Any = None
        self._on_trip: list[Callable[[], Any]] = []
        self._load()

    def _read(self) -> tuple[Any, dict[str, Any] | None]:
        """(a stamp that changes when the state does, the state) from the file or the database row."""
        if self.url is not None:
            now = time.monotonic()
            if self._db is not None and now - self._checked < 0.25:  # a shared switch is read 4 times a second
                return self._stamp, None
            self._checked = now
            if self._db is None:
                from impactlab.data import Store

                self._db, self._owns_db = Store(self.url), True
            d = self._db.get_state("kill_switch")
            return (json.dumps(d, sort_keys=True) if d is not None else None), d
        assert self.path is not None
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None, None
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return stamp, None
        return stamp, json.loads(self.path.read_text())

    def _load(self) -> None:
        if self.path is None and self.url is None:
            return
        try:
            stamp, d = self._read()
            if stamp == self._stamp or d is None:
                return
            tripped, reason, ts = bool(d["tripped"]), str(d.get("reason", "")), d.get("tripped_ns")
            history = list(d.get("history", []))
        except (OSError, ValueError, KeyError, TypeError) as exc:  # unreadable: fail safe
            stamp, tripped, reason, ts, history = (
                None,
                True,
                f"kill-switch state unreadable ({exc})",
                None,
                self.history,
            )
        self._stamp = stamp
        was = self._tripped
        self._tripped, self.reason, self.tripped_ns, self.history = tripped, reason, ts, history
        if tripped and not was and self._on_trip:  # a process that trades learns of it
            log.error("kill switch tripped (from %s): %s", self.where, reason)
            self._run_actions()

    def close(self) -> None:
        """Close the database connection the switch opened for itself (a shared store's)."""
        if self._owns_db and self._db is not None:
            self._db.close()
            self._db, self._owns_db = None, False

    @property
    def where(self) -> str:
        """Where the state lives (a file, or the shared store's engine_state)."""
        if self.url is not None:
            return "engine_state of " + self.url.split("@")[-1]
        return str(self.path) if self.path is not None else "memory"

    def _save(self) -> None:
        body = {"tripped": self._tripped, "reason": self.reason, "tripped_ns": self.tripped_ns,
                "history": self.history[-100:]}  # fmt: skip
        if self.url is not None:
            self._read()
            self._db.put_state("kill_switch", body, ts_ns=int(self._clock()))
            self._stamp = json.dumps(body, sort_keys=True)
            return
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(body, indent=1))
        os.replace(tmp, self.path)
        st = self.path.stat()
        self._stamp = (st.st_mtime_ns, st.st_size)

    @property
    def tripped(self) -> bool:
        self._load()
        return self._tripped

    def status(self) -> dict[str, Any]:
        """The state as a dict: ``tripped``, ``reason``, ``tripped_ns``, ``path`` and the recent history."""
        self._load()
        return {"tripped": self._tripped, "reason": self.reason, "tripped_ns": self.tripped_ns,
                "path": self.where, "history": self.history[-10:]}  # fmt: skip

    def on_trip(self, action: Callable[[], Any]) -> None:
        """Run ``action`` when the switch trips (at once if it already has)."""
        self._on_trip.append(action)
        if self._tripped:
            action()

    def _run_actions(self) -> None:
        for action in self._on_trip:  # cancel again on every trip: orders sent in flight are caught too
            try:
                action()
            except Exception:
                log.exception("kill switch action")

    def trip(self, reason: str, *, now_ns: int | None = None) -> None:
        """Stop trading: refuse new orders and cancel every open one."""
        self._load()
        first = not self._tripped
        self._tripped = True
        if first:
            self.reason, self.tripped_ns = reason, int(now_ns if now_ns is not None else self._clock())
            self.history.append({"event": "trip", "reason": reason, "ts_ns": self.tripped_ns, "pid": os.getpid()})
            self._save()
            log.error("kill switch tripped: %s", reason)
        self._run_actions()

    def reset(self, *, confirm: str, by: str = "") -> None:
        """Re-arm (a person's decision): ``confirm`` must be ``"RESET"``."""
        if confirm != "RESET":
            raise RiskLimitError("the kill switch is reset only with confirm='RESET'", check="kill_switch")
        self._load()
        self.history.append({"event": "reset", "by": by, "was": self.reason, "ts_ns": int(self._clock()),
                             "pid": os.getpid()})  # fmt: skip
        self._tripped, self.reason, self.tripped_ns = False, "", None
        self._save()


class RiskGate:
    """Checks every child order against :class:`RiskLimits` before it is written or sent.

    Parameters
    ----------
    limits
        The limits (frozen).
    market
        ``market(symbol)`` gives the current :class:`MarketSnapshot`.
    clock
        Nanoseconds since the epoch.
    kill_switch
        Shared with whatever may trip it (the engine, a circuit breaker, an operator).
    open_orders
        ``open_orders()`` gives the number of orders open now (the order manager's count).
    open_quantity
        ``open_quantity(symbol)`` gives the shares open now on ``symbol`` (the order manager's).

    Notes
    -----
    The order manager calls :meth:`record_fill` with every fill it accepts, which is what the
    participation check counts.
    """

    def __init__(
        self,
        limits: RiskLimits,
        market: Callable[[str], MarketSnapshot],
        *,
        clock: Callable[[], int],
        kill_switch: KillSwitch | None = None,
        open_orders: Callable[[], int] | None = None,
        open_quantity: Callable[[str], float] | None = None,
        instrument: InstrumentSpec | None = None,
    ) -> None:
        if not isinstance(limits, RiskLimits):
            raise RiskLimitError(f"'limits' must be a RiskLimits, got {type(limits).__name__}", check="config")
        self._limits = limits
        self._market = market
        self._clock = clock
        self.kill_switch = kill_switch or KillSwitch()
        self._open_orders = open_orders or (lambda: 0)
        self._open_quantity = open_quantity or (lambda symbol: 0.0)
        self._instrument = instrument
        self._filled: dict[str, deque[tuple[int, float]]] = {}
        self._parent_sent: dict[str, float] = {}
        self.accepted = 0

    @property
    def limits(self) -> RiskLimits:
        return self._limits

    def _refuse(self, order: ChildOrder, check: str, value: object, limit: object, why: str) -> None:
        raise RiskLimitError(
            f"order {order.client_order_id!r} refused by {check}: {why}", check=check, value=value, limit=limit
        )

    def __call__(self, order: ChildOrder) -> None:
        """Raise :class:`~impactlab.errors.RiskLimitError` unless ``order`` passes every check; an order
        that passes is counted against the participation and parent limits."""
        lim = self._limits
        if self.kill_switch.tripped:
            self._refuse(order, "kill_switch", self.kill_switch.reason, None, "the kill switch is tripped")
        qty = float(order.quantity)
        if not (math.isfinite(qty) and qty > 0):
            self._refuse(order, "max_order_qty", qty, lim.max_order_qty, "quantity must be finite and > 0")
        if qty > lim.max_order_qty:
            self._refuse(order, "max_order_qty", qty, lim.max_order_qty, f"{qty:g} shares > {lim.max_order_qty:g}")
        snap = self._market(order.symbol)
        mid = float(snap.mid)
        if not (math.isfinite(mid) and mid > 0):
            self._refuse(order, "price_collar", mid, None, "no mid to check the price against")
        side = int(order.side)
        collar = mid * (1 + side * lim.price_collar_bps / 1e4)  # the worst price we allow
        if order.order_type is OrderType.MARKET:
            worst = collar  # a market order is sent as a limit at the collar by the adapters
        else:
            worst = float(order.limit_price)  # type: ignore[arg-type]
            through_bps = side * (worst - mid) / mid * 1e4
            if through_bps > lim.price_collar_bps + 1e-9:
                self._refuse(order, "price_collar", worst, collar,
                             f"limit {worst:g} is {through_bps:.1f} bps through the mid {mid:g}")  # fmt: skip
        px = max(worst, mid)  # in the quote currency: the multiplier, or an inverse contract's fixed value
        notional = float(self._instrument.notional(qty, px)) if self._instrument is not None else qty * px
        if notional > lim.max_order_notional:
            self._refuse(order, "max_order_notional", notional, lim.max_order_notional,
                         f"{notional:,.0f} > {lim.max_order_notional:,.0f}")  # fmt: skip
        if self._open_orders() >= lim.max_open_orders:
            self._refuse(order, "max_open_orders", self._open_orders(), lim.max_open_orders, "too many open orders")
        parent_total = self._parent_sent.get(order.parent_order_id, 0.0) + qty
        if parent_total > lim.max_parent_qty:
            self._refuse(order, "max_parent_qty", parent_total, lim.max_parent_qty,
                         f"parent {order.parent_order_id!r} would send {parent_total:g} shares")  # fmt: skip
        now = int(self._clock())
        ours = self.filled_in_window(order.symbol, now) + float(self._open_quantity(order.symbol)) + qty
        market = max(float(snap.market_volume), lim.min_market_volume)
        rate = ours / (market + ours)
        if rate > lim.max_participation:
            self._refuse(order, "max_participation", rate, lim.max_participation,
                         f"{ours:g} of {market + ours:g} shares in {lim.participation_window_s:g} s is "
                         f"{rate:.1%} > {lim.max_participation:.0%}")  # fmt: skip
        self._parent_sent[order.parent_order_id] = parent_total
        self.accepted += 1

    def restore(self, store: Store, orders: Any = ()) -> int:
        """Rebuild the participation window from ``store``'s fills in the window before now (other runs'
        too: consecutive runs share one limit) and the per-parent totals from ``orders`` (managed orders
        restored after a restart).  Returns the fills counted."""
        now = int(self._clock())
        since = now - int(self._limits.participation_window_s * NS)
        rows = store.read("fills", where="ts_ns >= ? AND ts_ns <= ?", params=[since, now]).to_pylist()
        for r in sorted(rows, key=lambda r: r["ts_ns"]):
            self._filled.setdefault(r["symbol"], deque()).append((int(r["ts_ns"]), float(r["quantity"])))
        for mo in orders:
            if not (str(mo.state) == "rejected" and mo.reason.startswith("risk:")):
                pid = mo.order.parent_order_id
                self._parent_sent[pid] = self._parent_sent.get(pid, 0.0) + float(mo.order.quantity)
        return len(rows)

    def record_fill(self, fill: Any) -> None:
        """Count a fill (``symbol``, ``quantity``, ``ts_ns``) towards the participation window."""
        self._filled.setdefault(fill.symbol, deque()).append((int(fill.ts_ns), float(fill.quantity)))

    def filled_in_window(self, symbol: str, now_ns: int) -> float:
        """Our shares filled on ``symbol`` within the participation window before ``now_ns``."""
        window = self._filled.setdefault(symbol, deque())
        horizon = now_ns - int(self._limits.participation_window_s * NS)
        while window and window[0][0] < horizon:
            window.popleft()
        return float(sum(q for _, q in window))

    def collar_price(self, side: int, mid: float, tick_size: float) -> float:
        """:meth:`RiskLimits.collar_price` of this gate's limits."""
        return self._limits.collar_price(side, mid, tick_size)


def session_window_volume(day: Any, window_s: float) -> float:
    """A day's mean visible traded volume per ``window_s`` of its session (:attr:`MarketDay.session_s`):
    the market volume the participation limit is checked against."""
    tr = day.trades
    return float(tr.size[~tr.hidden].sum()) * window_s / max(float(day.session_s), 1.0)


def guarded_order_manager(
    store: Store,
    venues: Mapping[str, Any],
    *,
    limits: RiskLimits,
    clock: Callable[[], int],
    market_volume: float,
    restore: bool = False,
    instrument: InstrumentSpec | None = None,
    kill_switch: KillSwitch | None = None,
    ack_timeout_s: float = 5.0,
) -> OrderManager:
    """An :class:`~impactlab.execution.OrderManager` whose every order passes a :class:`RiskGate` on
    ``limits``: the gate reads the mid from the venues (their mean, NaN when none has one), counts the
    manager's open orders and shares, and its kill switch cancels everything the manager has open.

    ``market_volume`` is the market's volume over the participation window (shares).  ``venues`` need a
    ``mid()``.  The manager has no way to the venues around the gate.  ``restore`` rebuilds the manager's
    orders and fills from the store (:meth:`OrderManager.restore`), behind the same gate.

    The kill switch is the store's (:func:`kill_switch_path`) unless one is given: a tripped switch
    survives a restart.  It trips on a reconciliation break and when a venue with ``on_session_lost``
    (a FIX session) drops.  The participation window starts from the store's recent fills.
    """

    def market(symbol: str) -> MarketSnapshot:
        mids = [float(v.mid()) for v in venues.values()]
        ok = [m for m in mids if math.isfinite(m)]
        return MarketSnapshot(sum(ok) / len(ok) if ok else float("nan"), market_volume)

    ks = kill_switch if kill_switch is not None else KillSwitch(kill_switch_path(store.path), store=store)
    oms: OrderManager
    gate = RiskGate(
        limits,
        market,
        clock=clock,
        kill_switch=ks,
        open_orders=lambda: len(oms.open_orders()),
        open_quantity=lambda symbol: oms.open_quantity(symbol),
        instrument=instrument,
    )
    if restore:
        oms = OrderManager.restore(store, dict(venues), clock=clock, risk=gate, ack_timeout_s=ack_timeout_s)
    else:
        oms = OrderManager(store, dict(venues), clock=clock, risk=gate, ack_timeout_s=ack_timeout_s)
    gate.restore(store, oms.orders.values())

    def on_break(brk: Any) -> None:
        if brk.kind == "reconciliation":
            ks.trip(f"reconciliation break on {brk.venue} order {brk.client_order_id}: {brk.reason}")

    oms.on_break(on_break)
    for name, v in venues.items():
        hook = getattr(v, "on_session_lost", None)
        if hook is not None:
            hook(lambda name=name: ks.trip(f"venue {name}: session dropped"))
    ks.on_trip(oms.cancel_all)
    return oms
