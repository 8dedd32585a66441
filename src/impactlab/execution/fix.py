"""FIX 4.4 with the QuickFIX engine: an initiator venue adapter (NewOrderSingle, OrderCancelRequest, and
ExecutionReports back into the order manager) and a local acceptor "exchange" backed by the simulator.

Sessions keep their sequence numbers and sent messages in a QuickFIX file store, so a connection killed
mid-order recovers on the next logon: the side that missed messages asks for a resend and gets them again
with ``PossDupFlag``; the order manager recognises a resent fill by its ExecID and applies it once.

The client never resends an order: nothing is sent while the session is down, and an application message
QuickFIX would resend after a reconnect (one queued in a race with the drop, or asked for again after a
sequence reset) is replaced by a gap fill (``DoNotSend``).  Whether such an order reached the exchange is
then settled by an OrderStatusRequest: the order manager asks for the status of every open order after
a reconnect (:meth:`~impactlab.execution.OrderManager.reconcile`), and the exchange answers with an
ExecutionReport of ExecType ``I`` (order status) — or "unknown order" — from its own book.

Both ends are threads inside QuickFIX; :meth:`FixVenue.close` and :meth:`FixExchange.stop` stop them (and an
``atexit`` hook stops any still running before the interpreter exits).  Bad input never crashes a session:
a message that cannot be read, an execution report for an unknown order or a fill larger than the open
quantity is refused, counted by reason and logged.
"""

from __future__ import annotations

import atexit
import itertools
import json
import logging
import queue
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from impactlab.data import ChildOrder, OrderType
from impactlab.errors import ExecutionError
from impactlab.execution.orders import ExecutionReport
from impactlab.execution.venues import own_best, quote_from_book

__all__ = ["FixConfig", "FixExchange", "FixVenue"]

log = logging.getLogger(__name__)
_RUNNING: weakref.WeakSet[Any] = weakref.WeakSet()


def _stop_all() -> None:
    for thing in list(_RUNNING):
        try:
            thing.stop() if isinstance(thing, FixExchange) else thing.close()
        except Exception:
            log.exception("stopping %r at exit", thing)


atexit.register(_stop_all)


def _fix() -> Any:
    try:
        import quickfix
    except ImportError as exc:  # pragma: no cover - a pinned dependency
        raise ExecutionError("the FIX venue needs the 'quickfix' package (pip install quickfix)") from exc
    return quickfix


def _fix44() -> Any:
    _fix()
    import quickfix44

    return quickfix44


@dataclass(frozen=True)
class FixConfig:
    """One FIX 4.4 session between a client (initiator) and an exchange (acceptor).

    Parameters
    ----------
    port
        TCP port (loopback by default).
    store_dir
        Where QuickFIX keeps sequence numbers and sent messages (what makes recovery possible) and its
        logs; each side uses its own sub-folder.
    client_id, exchange_id
        SenderCompID of the client and of the exchange.
    host
        Where the initiator connects.
    heartbeat_s, reconnect_s
        Heartbeat interval and the initiator's reconnect interval.
    """

    port: int
    store_dir: Path
    client_id: str = "IMPACTLAB"
    exchange_id: str = "SIMX"
    host: str = "127.0.0.1"
    heartbeat_s: int = 30
    reconnect_s: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65_535:
            raise ExecutionError(f"'port' must be in 1..65535, got {self.port!r}")
        for name in ("client_id", "exchange_id"):
            v = getattr(self, name)
            if not (v and v.isalnum()):
                raise ExecutionError(f"{name!r} must be alphanumeric, got {v!r}")

    def settings(self, role: str) -> Any:
        """QuickFIX ``SessionSettings`` for ``role`` ``"initiator"`` or ``"acceptor"``."""
        fix = _fix()
        base = Path(self.store_dir) / role
        (base / "store").mkdir(parents=True, exist_ok=True)
        (base / "log").mkdir(parents=True, exist_ok=True)
        me, them = (self.client_id, self.exchange_id) if role == "initiator" else (self.exchange_id, self.client_id)
        lines = [
            "[DEFAULT]",
            f"ConnectionType={role}",
            f"FileStorePath={base / 'store'}",
            f"FileLogPath={base / 'log'}",
            "StartTime=00:00:00",
            "EndTime=00:00:00",
            "UseDataDictionary=N",
            "ResetOnLogon=N",
            "ResetOnLogout=N",
            "ResetOnDisconnect=N",
            "PersistMessages=Y",
            "ValidateUserDefinedFields=N",
            "SocketNodelay=Y",
            "",
            "[SESSION]",
            "BeginString=FIX.4.4",
            f"SenderCompID={me}",
            f"TargetCompID={them}",
            f"HeartBtInt={self.heartbeat_s}",
        ]
        if role == "initiator":
            lines += [f"SocketConnectHost={self.host}", f"SocketConnectPort={self.port}",
                      f"ReconnectInterval={self.reconnect_s}"]  # fmt: skip
        else:
            lines += [f"SocketAcceptPort={self.port}", "SocketReuseAddress=Y"]
        path = base / "session.cfg"
        path.write_text("\n".join(lines) + "\n")
        return fix.SessionSettings(str(path))

    def session_id(self, role: str) -> Any:
        fix = _fix()
        me, them = (self.client_id, self.exchange_id) if role == "initiator" else (self.exchange_id, self.client_id)
        return fix.SessionID("FIX.4.4", me, them)


def _get(msg: Any, field: Any) -> str:
    msg.getField(field)
    return str(field.getValue())


def _poss_dup(msg: Any) -> bool:
    """Whether the message is a resend (PossDupFlag, tag 43, is Y)."""
    header = msg.getHeader()
    return bool(header.isSetField(43) and header.getField(43) == "Y")


def _wait(pred: Callable[[], bool], timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.002)
    return pred()


def _application(owner: Any, logged_on: threading.Event, label: str, *, gap_fill_resends: bool = False,
                 on_logout: Callable[[], None] | None = None) -> Any:  # fmt: skip
    """A QuickFIX ``Application`` that sets ``logged_on`` while the session is up and hands every
    application message to ``owner._on_message``; nothing raised there reaches QuickFIX's thread.

    ``gap_fill_resends``: an application message about to go out again with PossDupFlag (a resend asked
    for by the counterpart) is not sent; QuickFIX sends a SequenceReset-GapFill in its place."""
    fix = _fix()

    class App(fix.Application):  # type: ignore[misc, name-defined]
        def onCreate(self, sid: Any) -> None:
            pass

        def onLogon(self, sid: Any) -> None:
            logged_on.set()

        def onLogout(self, sid: Any) -> None:
            was = logged_on.is_set()
            logged_on.clear()
            if was and on_logout is not None:
                on_logout()

        def toAdmin(self, msg: Any, sid: Any) -> None:
            pass

        def fromAdmin(self, msg: Any, sid: Any) -> None:
            pass

        def toApp(self, msg: Any, sid: Any) -> None:
            if gap_fill_resends and _poss_dup(msg):
                owner.refuse("resend of an order message replaced by a gap fill")
                raise fix.DoNotSend()

        def fromApp(self, msg: Any, sid: Any) -> None:
            try:
                owner._on_message(msg)
            except Exception:
                owner.refuse("internal error", msg)
                log.exception("FIX %s: handling a message", label)

    return App()


class _Counting:
    """Counts of refused input, by reason, shared by both ends."""

    def __init__(self) -> None:
        self.refused: Counter[str] = Counter()
        self._count_lock = threading.Lock()

    def refuse(self, reason: str, msg: Any = None) -> None:
        with self._count_lock:
            self.refused[reason] += 1
        log.warning("FIX: refused message (%s): %s", reason, str(msg).replace("\x01", "|") if msg is not None else "")


_ORD_STATUS = {"0": "new", "1": "partially_filled", "2": "filled", "4": "cancelled", "8": "rejected", "A": "new"}

# -- the client: an initiator venue adapter ----------------------------------------------------------------


class FixVenue(_Counting):
    """A :class:`~impactlab.execution.VenueAdapter` over a FIX 4.4 initiator session.

    ``send`` writes a NewOrderSingle (market orders go as limit IOC at ``collar`` when one is given, like the
    simulator adapter), ``cancel`` an OrderCancelRequest; ExecutionReports are converted to
    :class:`~impactlab.execution.ExecutionReport` and wait in a queue until :meth:`poll`.
    """

    def __init__(self, name: str, config: FixConfig, *, collar: Callable[[int, float, float], float] | None = None,
                 book: Callable[[], Any] | None = None, fees: Any = None, tick_size: float = 0.01,
                 inbox: str | Path | None = None) -> None:  # fmt: skip
        super().__init__()
        # every report is appended here before QuickFIX counts it received: a process killed between the
        # session's sequence number and the order manager's store would otherwise lose it for good
        self.inbox = Path(inbox) if inbox is not None else Path(config.store_dir) / "initiator" / "inbox.jsonl"
        self._inbox: Any = None
        self.name = name
        self.config = config
        self._collar = collar
        self._book = book  # market data: () -> BookView (the exchange's book on loopback, a feed live)
        self.fees = fees
        self.tick_size = tick_size
        self._reports: queue.Queue[ExecutionReport] = queue.Queue()
        self._cancel_ids = itertools.count(1)
        self._logged_on = threading.Event()
        self.sent_ns: dict[str, int] = {}
        self._initiator: Any = None
        self._closing = False
        self._drops = 0
        self._drops_seen = 0
        self._on_lost: list[Callable[[], Any]] = []
        self._status_ids = itertools.count(1)
        self._app = _application(self, self._logged_on, "client", gap_fill_resends=True, on_logout=self._lost)

    def _redeliver(self) -> None:
        """Queue again (as possible duplicates) every report an earlier process received: the order manager
        applies the ones it had not yet stored and ignores the rest."""
        import dataclasses

        self.inbox.parent.mkdir(parents=True, exist_ok=True)
        if self.inbox.exists():
            for line in self.inbox.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    d = json.loads(line)
                    self._reports.put(dataclasses.replace(ExecutionReport(**d), poss_dup=True))
                except (ValueError, TypeError):
                    self.refuse("unreadable line in the inbox")  # a torn last line of a killed process
        if self._inbox is None:
            self._inbox = open(self.inbox, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def _lost(self) -> None:
        if not self._closing:
            self._drops += 1
            log.error("FIX venue %s: session dropped", self.name)

    def on_session_lost(self, action: Callable[[], Any]) -> None:
        """Call ``action`` (from :meth:`poll`, on the thread that polls) after each session drop."""
        self._on_lost.append(action)

    @property
    def drops(self) -> int:
        """Session drops seen since :meth:`start` (a close is not a drop)."""
        return self._drops

    @property
    def available(self) -> bool:
        """True while the session is logged on: the order manager sends nothing otherwise."""
        return self._logged_on.is_set()

    def start(self, *, timeout_s: float = 10.0) -> FixVenue:
        """Connect and log on (raises :class:`~impactlab.errors.ExecutionError` if no logon in time)."""
        fix = _fix()
        settings = self.config.settings("initiator")
        # QuickFIX keeps raw pointers to these: they must live as long as the initiator
        self._keep = (settings, fix.FileStoreFactory(settings), fix.FileLogFactory(settings))
        self._closing = False
        self._redeliver()
        self._initiator = fix.SocketInitiator(self._app, self._keep[1], settings, self._keep[2])
        self._initiator.start()
        _RUNNING.add(self)
        if not self._logged_on.wait(timeout_s):
            self.close()
            raise ExecutionError(f"FIX: no logon to {self.config.host}:{self.config.port} within {timeout_s:g} s")
        return self

    @property
    def logged_on(self) -> bool:
        return self._logged_on.is_set()

    def close(self) -> None:
        """Stop the initiator (logout and disconnect); the file store keeps the sequence numbers."""
        self._closing = True
        if self._initiator is not None:
            self._initiator.stop()
            self._initiator = None
            time.sleep(0.05)  # let the socket threads finish the disconnect
        if self._inbox is not None:
            self._inbox.close()
            self._inbox = None
        self._logged_on.clear()
        _RUNNING.discard(self)

    def drop_connection(self, *, forget_received: bool = False) -> None:
        """Cut the TCP connection without a logout, as a network failure would (drills and tests); the
        initiator reconnects after ``reconnect_s`` and recovers by sequence numbers.  ``forget_received``
        also rewinds the expected incoming sequence number to 1, as if the client had lost track of what it
        had received: the exchange then resends everything, and the order manager must apply each
        execution once."""
        fix = _fix()
        session = fix.Session.lookupSession(self.config.session_id("initiator"))
        if session is None:
            raise ExecutionError("FIX: no session to drop")
        session.disconnect()
        self._logged_on.clear()
        if forget_received:
            session.setNextTargetMsgSeqNum(1)

    # -- VenueAdapter ----------------------------------------------------------------------------------

    def send(self, order: ChildOrder) -> None:
        if not self._logged_on.is_set():
            raise ExecutionError(f"FIX venue {self.name!r}: session down, order {order.client_order_id!r} not sent")
        fix, f44 = _fix(), _fix44()
        side = fix.Side_BUY if int(order.side) > 0 else fix.Side_SELL
        market = order.order_type is OrderType.MARKET
        price = order.limit_price
        tif = fix.TimeInForce_DAY
        if market and self._collar is not None and self._book is not None:
            price = self._collar(int(order.side), self.mid(), self.tick_size)
            market, tif = False, fix.TimeInForce_IMMEDIATE_OR_CANCEL
        elif order.order_type is OrderType.IOC:
            tif = fix.TimeInForce_IMMEDIATE_OR_CANCEL
        msg = f44.NewOrderSingle()
        for f in (fix.ClOrdID(order.client_order_id), fix.Side(side), fix.TransactTime(),
                  fix.OrdType(fix.OrdType_MARKET if market else fix.OrdType_LIMIT)):  # fmt: skip
            msg.setField(f)
        msg.setField(fix.Symbol(order.symbol))
        msg.setField(fix.OrderQty(float(order.quantity)))
        msg.setField(fix.HandlInst("1"))
        msg.setField(fix.TimeInForce(tif))
        if not market:
            msg.setField(fix.Price(float(price)))  # type: ignore[arg-type]
        self.sent_ns[order.client_order_id] = time.perf_counter_ns()
        if not fix.Session.sendToTarget(msg, self.config.session_id("initiator")):
            raise ExecutionError(f"FIX: could not queue order {order.client_order_id!r}")

    def cancel(self, client_order_id: str) -> None:
        if not self._logged_on.is_set():  # not queued for later: reconciliation cancels after the reconnect
            log.warning("FIX venue %s: session down, cancel of %s not sent", self.name, client_order_id)
            return
        fix, f44 = _fix(), _fix44()
        msg = f44.OrderCancelRequest()
        for f in (fix.OrigClOrdID(client_order_id), fix.ClOrdID(f"{client_order_id}-x{next(self._cancel_ids)}"),
                  fix.Side(fix.Side_BUY), fix.TransactTime()):  # fmt: skip
            msg.setField(f)
        fix.Session.sendToTarget(msg, self.config.session_id("initiator"))

    def request_status(self, order: ChildOrder) -> None:
        """Ask the exchange where ``order`` stands (OrderStatusRequest); the answer is a ``status`` report."""
        if not self._logged_on.is_set():
            raise ExecutionError(f"FIX venue {self.name!r}: session down")
        fix, f44 = _fix(), _fix44()
        msg = f44.OrderStatusRequest()
        msg.setField(fix.ClOrdID(order.client_order_id))
        msg.setField(fix.Side(fix.Side_BUY if int(order.side) > 0 else fix.Side_SELL))
        msg.setField(fix.Symbol(order.symbol))
        msg.setField(fix.OrdStatusReqID(f"{order.client_order_id}-s{next(self._status_ids)}"))
        fix.Session.sendToTarget(msg, self.config.session_id("initiator"))

    # -- market data (what the router and the risk gate read) ---------------------------------------------

    def _market_book(self) -> Any:
        if self._book is None:
            raise ExecutionError(f"FIX venue {self.name!r} has no market data source")
        return self._book()

    def mid(self) -> float:
        return float(self._market_book().mid)

    def own_best(self, side: int) -> float:
        return own_best(self._market_book(), side)

    def quote(self, side: int, outflow: Any, improve_outflow: Any = None) -> Any:
        if self.fees is None:
            raise ExecutionError(f"FIX venue {self.name!r} needs its fees to be routed to")
        return quote_from_book(
            self.name, self._market_book(), side, self.fees, outflow, tick=self.tick_size,
            improve_outflow=improve_outflow,
        )  # fmt: skip

    def poll(self, now_ns: int) -> list[ExecutionReport]:
        while self._drops_seen < self._drops:  # session-lost actions run here, on the polling thread
            self._drops_seen += 1
            for action in self._on_lost:
                try:
                    action()
                except Exception:
                    log.exception("session-lost action")
        out: list[ExecutionReport] = []
        while True:
            try:
                out.append(self._reports.get_nowait())
            except queue.Empty:
                return out

    def wait_reports(self, n: int, timeout_s: float) -> bool:
        """Wait until at least ``n`` reports are queued (tests, the demo)."""
        return _wait(lambda: self._reports.qsize() >= n, timeout_s)

    # -- incoming --------------------------------------------------------------------------------------

    def _on_message(self, msg: Any) -> None:
        fix = _fix()
        try:
            mtype = _get(msg.getHeader(), fix.MsgType())
            if mtype == fix.MsgType_OrderCancelReject:
                self.refuse("cancel rejected", msg)
                return
            if mtype == fix.MsgType_BusinessMessageReject:
                self.refuse("business reject from the venue", msg)
                return
            if mtype != fix.MsgType_ExecutionReport:
                self.refuse(f"unexpected message type {mtype!r}", msg)
                return
            exec_type = _get(msg, fix.ExecType())
            clid = _get(msg, fix.ClOrdID())
            exec_id = _get(msg, fix.ExecID())
            kind = {fix.ExecType_NEW: "new", fix.ExecType_TRADE: "fill", fix.ExecType_CANCELED: "cancelled",
                    fix.ExecType_REJECTED: "rejected", fix.ExecType_ORDER_STATUS: "status"}.get(exec_type)  # fmt: skip
            if kind is None:
                self.refuse(f"unsupported ExecType {exec_type!r}", msg)
                return
            if kind == "cancelled" and msg.isSetField(fix.OrigClOrdID().getTag()):
                clid = _get(msg, fix.OrigClOrdID())
            qty = px = fee = 0.0
            liq = "taker"
            if kind == "fill":
                qty, px = float(_get(msg, fix.LastQty())), float(_get(msg, fix.LastPx()))
                if msg.isSetField(fix.Commission().getTag()):
                    fee = float(_get(msg, fix.Commission()))
                if msg.isSetField(fix.LastLiquidityInd().getTag()):
                    liq = "maker" if _get(msg, fix.LastLiquidityInd()) == "1" else "taker"
            reason = _get(msg, fix.Text()) if msg.isSetField(fix.Text().getTag()) else ""
            status, cum = "", 0.0
            if kind == "status":
                ord_status = _get(msg, fix.OrdStatus())
                unknown = msg.isSetField(fix.OrdRejReason().getTag()) and int(_get(msg, fix.OrdRejReason())) == 5
                status = "unknown" if unknown else _ORD_STATUS.get(ord_status, f"OrdStatus {ord_status}")
                cum = float(_get(msg, fix.CumQty()))
            poss_dup = _poss_dup(msg)
        except (fix.FieldNotFound, ValueError) as exc:  # type: ignore[misc]
            self.refuse(f"malformed execution report ({exc})", msg)
            return
        report = ExecutionReport(exec_id, clid, kind, time.time_ns(), self.name, qty, px, liq, fee,  # type: ignore[arg-type]
                                 reason, poss_dup, status, cum)  # fmt: skip
        if self._inbox is not None and kind != "status":
            import dataclasses

            self._inbox.write(json.dumps(dataclasses.asdict(report)) + "\n")
            self._inbox.flush()  # in the OS before QuickFIX moves the sequence number on
        self._reports.put(report)


# -- the exchange: an acceptor backed by the simulator ----------------------------------------------------


class FixExchange(_Counting):
    """A FIX 4.4 acceptor in front of a :class:`~impactlab.simulation.Venue` (the simulator or a replay).

    Orders are matched by the venue; a pump thread advances the venue's clock by the wall clock (1 ms
    steps) and reports every accepted order, fill and cancel as an ExecutionReport, and answers
    OrderStatusRequests after them (so a status never overtakes a fill).  Malformed orders are rejected
    with a reason (an ExecutionReport with ExecType=Rejected, or a BusinessMessageReject when there is no
    ClOrdID to answer) and counted.  ``exec_log``: a file every execution is appended to (one JSON line:
    ClOrdID, ExecID, quantity, price) — the venue's own record, that tests hold the client's store to.
    """

    def __init__(self, venue: Any, config: FixConfig, *, step_ns: int = 1_000_000,
                 exec_log: str | Path | None = None) -> None:  # fmt: skip
        super().__init__()
        self.venue = venue
        self.config = config
        self.step_ns = int(step_ns)
        self._clids: dict[int, str] = {}
        self._oids: dict[str, int] = {}
        self._sides: dict[str, int] = {}
        self._exec_ids = itertools.count(1)
        self._run = time.time_ns()  # execution ids stay unique across restarts of the exchange
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()  # a new order or status request: the pump steps now, not in 1 ms
        self._thread: threading.Thread | None = None
        self._acceptor: Any = None
        self._t0_wall = 0
        self._t0_venue = int(venue.now_ns)
        self.logged_on = threading.Event()
        self.orders_received = 0
        self.executions = 0
        self._status_asks: list[tuple[str, int]] = []
        if exec_log is not None:
            Path(exec_log).parent.mkdir(parents=True, exist_ok=True)
        self._exec_log = open(exec_log, "a", encoding="utf-8") if exec_log is not None else None  # noqa: SIM115
        self._app = _application(self, self.logged_on, "exchange")

    def start(self) -> FixExchange:
        fix = _fix()
        settings = self.config.settings("acceptor")
        # QuickFIX keeps raw pointers to these: they must live as long as the acceptor
        self._keep = (settings, fix.FileStoreFactory(settings))
        self._acceptor = fix.ThreadedSocketAcceptor(self._app, self._keep[1], settings)
        self._acceptor.start()
        self._t0_wall = time.perf_counter_ns()
        self._t0_venue = int(self.venue.now_ns)
        self._stop.clear()
        self._thread = threading.Thread(target=self._pump, name="fix-exchange-pump", daemon=True)
        self._thread.start()
        _RUNNING.add(self)
        return self

    def stop(self) -> None:
        """Stop the pump and the acceptor.  A client that is logging out is given a second to finish first:
        QuickFIX 1.16 can crash when an acceptor stops in the middle of a counterpart's disconnect."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._acceptor is not None:
            _wait(lambda: not self.logged_on.is_set(), 1.0)
            time.sleep(0.1)
            self._acceptor.stop()
            self._acceptor = None
        if self._exec_log is not None:
            self._exec_log.close()
            self._exec_log = None
        _RUNNING.discard(self)

    def kill(self) -> None:
        """Die as a crashed exchange would: the pump stops and the sockets close with no logout; the book
        (every order working) is gone, the session store on disk stays (drills and tests)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._acceptor is not None:
            self._acceptor.stop(True)
            self._acceptor = None
        if self._exec_log is not None:
            self._exec_log.close()
            self._exec_log = None
        self.logged_on.clear()
        _RUNNING.discard(self)

    def drop_connection(self, *, forget_received: bool = False) -> None:
        """Cut the connection from the exchange's side (drills and tests); ``forget_received`` also rewinds
        the exchange's expected incoming sequence number to 1, as a sequence reset would: on the next
        logon it asks the client to resend everything it ever sent (the client gap-fills its orders)."""
        fix = _fix()
        session = fix.Session.lookupSession(self.config.session_id("acceptor"))
        if session is None:
            raise ExecutionError("FIX: no exchange session to drop")
        if forget_received:
            session.setNextTargetMsgSeqNum(1)
        session.disconnect()
        self.logged_on.clear()

    def venue_now(self) -> int:
        return self._t0_venue + (time.perf_counter_ns() - self._t0_wall)

    def mid(self) -> float:
        return float(self.book().mid)

    def book(self, levels: int = 1) -> Any:
        """The venue's book now (thread-safe)."""
        with self._lock:
            self.venue.run_to(self.venue_now())
            return self.venue.book(levels)

    # -- orders in ---------------------------------------------------------------------------------------

    def _reject(self, msg: Any, clid: str | None, reason: str) -> None:
        fix, f44 = _fix(), _fix44()
        self.refuse(reason, msg)
        if clid is None:
            rej = f44.BusinessMessageReject()
            rej.setField(fix.RefMsgType(fix.MsgType_NewOrderSingle))
            rej.setField(fix.BusinessRejectReason(fix.BusinessRejectReason_OTHER))
            rej.setField(fix.Text(reason[:200]))
            fix.Session.sendToTarget(rej, self.config.session_id("acceptor"))
            return
        self._report(clid, "rejected", 0, 0.0, 0.0, 0.0, reason=reason)

    def _on_message(self, msg: Any) -> None:
        fix = _fix()
        try:
            mtype = _get(msg.getHeader(), fix.MsgType())
        except fix.FieldNotFound:  # type: ignore[misc]
            self.refuse("no MsgType", msg)
            return
        if mtype == fix.MsgType_NewOrderSingle:
            self._new_order(msg)
        elif mtype == fix.MsgType_OrderCancelRequest:
            try:
                orig = _get(msg, fix.OrigClOrdID())
            except fix.FieldNotFound:  # type: ignore[misc]
                self.refuse("cancel without OrigClOrdID", msg)
                return
            with self._lock:
                oid = self._oids.get(orig)
                if oid is not None:
                    self.venue.cancel(oid, local_ns=self.venue_now())
            if oid is None:
                self.refuse("cancel for an unknown order", msg)
        elif mtype == fix.MsgType_OrderStatusRequest:
            try:
                clid = _get(msg, fix.ClOrdID())
                side = 1 if _get(msg, fix.Side()) == fix.Side_BUY else -1
            except fix.FieldNotFound:  # type: ignore[misc]
                self.refuse("status request without ClOrdID or Side", msg)
                return
            with self._lock:
                self._status_asks.append((clid, side))  # answered by the pump, after the reports before it
            self._wake.set()
        else:
            self._reject(msg, None, f"unsupported message type {mtype!r}")

    def _new_order(self, msg: Any) -> None:
        fix = _fix()
        try:
            clid = _get(msg, fix.ClOrdID())
        except fix.FieldNotFound:  # type: ignore[misc]
            self._reject(msg, None, "NewOrderSingle without ClOrdID")
            return
        try:
            side = 1 if _get(msg, fix.Side()) == fix.Side_BUY else -1
            qty = float(_get(msg, fix.OrderQty()))
            ord_type = _get(msg, fix.OrdType())
            tif = _get(msg, fix.TimeInForce()) if msg.isSetField(fix.TimeInForce().getTag()) else fix.TimeInForce_DAY
            price = float(_get(msg, fix.Price())) if ord_type == fix.OrdType_LIMIT else None
        except (fix.FieldNotFound, ValueError) as exc:  # type: ignore[misc]
            self._reject(msg, clid, f"malformed NewOrderSingle ({exc})")
            return
        if not (qty > 0 and qty < 1e9):
            self._reject(msg, clid, f"OrderQty must be in (0, 1e9), got {qty!r}")
            return
        with self._lock:
            known = clid in self._oids
        if known:
            self.refuse("duplicate ClOrdID", msg)  # a resent order: already working
            return
        with self._lock:  # the pump reports it (one thread sends every report, in order)
            typ = "market" if price is None else ("ioc" if tif == fix.TimeInForce_IMMEDIATE_OR_CANCEL else "limit")
            oid = self.venue.submit(side, qty, order_type=typ, price=price, local_ns=self.venue_now())
            self._oids[clid], self._clids[oid], self._sides[clid] = oid, clid, side
            self.orders_received += 1
        self._wake.set()

    # -- reports out -------------------------------------------------------------------------------------

    def _report(self, clid: str, kind: str, side: int, qty: float, px: float, leaves: float, *, fee: float = 0.0,
                liquidity: str = "", reason: str = "", ord_status: str | None = None, cum: float = 0.0,
                unknown: bool = False) -> str:  # fmt: skip
        fix, f44 = _fix(), _fix44()
        exec_type, status = {
            "new": (fix.ExecType_NEW, fix.OrdStatus_NEW),
            "fill": (fix.ExecType_TRADE, fix.OrdStatus_FILLED if leaves <= 1e-9 else fix.OrdStatus_PARTIALLY_FILLED),
            "cancelled": (fix.ExecType_CANCELED, fix.OrdStatus_CANCELED),
            "rejected": (fix.ExecType_REJECTED, fix.OrdStatus_REJECTED),
            "status": (fix.ExecType_ORDER_STATUS, ord_status),
        }[kind]
        oid = self._oids.get(clid, 0)
        er = f44.ExecutionReport()
        exec_id = f"{self.config.exchange_id}-{self._run}-{next(self._exec_ids)}"
        fix_side = fix.Side_BUY if side >= 0 else fix.Side_SELL
        for f in (fix.OrderID(str(oid)), fix.ExecID(exec_id), fix.ExecType(exec_type), fix.OrdStatus(status),
                  fix.Side(fix_side), fix.LeavesQty(max(leaves, 0.0)), fix.CumQty(cum), fix.AvgPx(0.0),
                  fix.ClOrdID(clid)):  # fmt: skip
            er.setField(f)
        if unknown:
            er.setField(fix.OrdRejReason(fix.OrdRejReason_UNKNOWN_ORDER))
        if kind == "fill":
            er.setField(fix.LastQty(qty))
            er.setField(fix.LastPx(px))
            er.setField(fix.Commission(fee))
            er.setField(fix.LastLiquidityInd(1 if liquidity == "maker" else 2))
        if reason:
            er.setField(fix.Text(reason[:200]))
        fix.Session.sendToTarget(er, self.config.session_id("acceptor"))
        return exec_id

    def _status_answers(self) -> list[tuple[Any, ...]]:
        """The answers to the status requests waiting, from the book now (call holding the lock)."""
        out = []
        for clid, side in self._status_asks:
            oid = self._oids.get(clid)
            if oid is None:
                out.append((clid, side, "8", 0.0, 0.0, True))
                continue
            st = self.venue.order(oid)
            code = {"pending": "0", "live": "1" if st["filled"] > 0 else "0", "done": "2", "cancelled": "4",
                    "rejected": "8"}[st["status"]]  # fmt: skip
            leaves = st["remaining"] if st["status"] in ("pending", "live") else 0.0
            out.append((clid, side, code, float(st["filled"]), float(leaves), False))
        self._status_asks.clear()
        return out

    def _send_events(self, events: list[Any]) -> None:
        for e in events:
            clid = self._clids.get(e.order_id)
            if clid is None:
                continue
            side = self._sides.get(clid, 1)
            if e.kind == "accepted":
                self._report(clid, "new", side, 0.0, 0.0, e.quantity)
            elif e.kind == "fill":
                st = self.venue.order(e.order_id)
                exec_id = self._report(clid, "fill", side, e.quantity, e.price, st["remaining"], fee=e.fee,
                                       liquidity=e.liquidity)  # fmt: skip
                self.executions += 1
                if self._exec_log is not None:
                    self._exec_log.write(json.dumps({"clid": clid, "exec_id": exec_id, "quantity": e.quantity,
                                                     "price": e.price}) + "\n")  # fmt: skip
                    self._exec_log.flush()
            elif e.kind == "cancelled":
                self._report(clid, "cancelled", side, 0.0, 0.0, 0.0, reason=e.reason)
            elif e.kind == "rejected" and not e.reason.startswith("cancel for"):
                self._report(clid, "rejected", side, 0.0, 0.0, 0.0, reason=e.reason)

    def _pump(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # what arrives while this step runs wakes the next one at once
            try:
                with self._lock:
                    events = self.venue.step(self.venue_now())
                    answers = self._status_answers()
                self._send_events(events)
                for clid, side, code, cum, leaves, unknown in answers:
                    self._report(clid, "status", side, 0.0, 0.0, leaves, ord_status=code, cum=cum, unknown=unknown,
                                 reason="unknown order" if unknown else "")  # fmt: skip
            except Exception:
                self.refuse("pump error")
                log.exception("FIX exchange pump")
            self._wake.wait(self.step_ns / 1e9)
