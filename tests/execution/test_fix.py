"""FIX 4.4 over loopback with QuickFIX: orders and fills end to end, session recovery after a killed
connection with no lost or duplicated fills, and bad messages refused and counted."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from impactlab.data import ChildOrder, OrderType, ParentOrder, Side, Store
from impactlab.execution import OrderManager, OrderState
from impactlab.execution.fix import FixConfig, FixExchange, FixVenue
from impactlab.simulation import ConstantLatency, QueueReactiveMarket, QueueReactiveParams


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _market(latency_ms: int = 0) -> QueueReactiveMarket:
    m = QueueReactiveMarket(
        QueueReactiveParams.published(), price=100.0, tick_size=0.01, initial_spread_ticks=1, seed=3,
        entry_latency=ConstantLatency(latency_ms * 1_000_000),
    )  # fmt: skip
    m.run_to(60 * 10**9)
    return m


def _child(n: int, qty: float, typ: OrderType = OrderType.MARKET, px: float | None = None) -> ChildOrder:
    return ChildOrder(f"k{n}", "P", "X", Side.BUY, qty, typ, "SIMX", time.time_ns(), px)


def _oms(store: Store, cl: FixVenue, **kw) -> OrderManager:  # type: ignore[no-untyped-def]
    oms = OrderManager(store, {"SIMX": cl}, clock=time.time_ns, **kw)
    oms.open_parent(ParentOrder("P", "X", Side.BUY, 1e6, time.time_ns(), time.time_ns() + 3600 * 10**9))
    return oms


def _until(pred, timeout_s: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.005)
    return False


@pytest.fixture
def session(tmp_path: Path):  # type: ignore[no-untyped-def]
    cfg = FixConfig(port=_port(), store_dir=tmp_path / "fix")
    ex = FixExchange(_market(latency_ms=300), cfg).start()
    clients: list[FixVenue] = []
    yield cfg, ex, clients
    for c in clients:
        c.close()
    ex.stop()


def test_orders_fill_over_fix_and_land_in_the_store(session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg, ex, clients = session
    cl = FixVenue("SIMX", cfg).start()
    clients.append(cl)
    store = Store(tmp_path / "s.duckdb")
    oms = _oms(store, cl)
    oms.submit(_child(1, 30))
    assert _until(lambda: (oms.poll(), oms.orders["k1"].state)[1] is OrderState.FILLED)
    assert oms.orders["k1"].filled == pytest.approx(30)
    bid = ex.mid() - 1.0  # a resting order far from the market, then cancelled
    oms.submit(_child(2, 10, OrderType.LIMIT, round(bid, 2)))
    assert _until(lambda: (oms.poll(), oms.orders["k2"].state)[1] is OrderState.NEW)
    oms.cancel("k2")
    assert _until(lambda: (oms.poll(), oms.orders["k2"].state)[1] is OrderState.CANCELLED)
    assert store.read("fills").to_pandas()["quantity"].sum() == pytest.approx(30)
    assert ex.refused == {} and cl.refused == {}


def test_a_dropped_connection_recovers_with_no_lost_or_duplicated_fills(session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg, ex, clients = session
    cl = FixVenue("SIMX", cfg).start()
    clients.append(cl)
    store = Store(tmp_path / "s.duckdb")
    oms = _oms(store, cl)
    oms.submit(_child(1, 60))  # walks several levels: several fills
    assert _until(lambda: (oms.poll(), oms.orders["k1"].state)[1] is OrderState.FILLED)
    fills_1 = len(oms.orders["k1"].fills)
    oms.submit(_child(2, 90))
    assert _until(lambda: ex.orders_received == 2)
    # the connection dies mid-order, and the client lost track of what it had received: k2 fills at the
    # exchange (300 ms later) while we are away, and on reconnect everything is sent again
    cl.drop_connection(forget_received=True)
    assert _until(lambda: ex.venue.order(max(ex._clids)).get("status") != "pending", 5)
    assert _until(lambda: cl.logged_on, 10)  # the initiator reconnects by itself
    assert _until(lambda: (oms.poll(), oms.orders["k2"].state)[1] is OrderState.FILLED)
    time.sleep(0.3)
    oms.poll()
    fills = store.read("fills").to_pandas()
    assert fills.groupby("client_order_id")["quantity"].sum().to_dict() == pytest.approx({"k1": 60, "k2": 90})
    assert fills["fill_id"].is_unique
    assert oms.duplicate_reports >= fills_1  # k1's fills came again and were recognised
    assert oms.rejected_reports == {}


def test_malformed_and_unknown_messages_are_refused_and_counted(session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import quickfix as fix
    import quickfix44 as f44

    cfg, ex, clients = session
    cl = FixVenue("SIMX", cfg).start()
    clients.append(cl)
    oms = _oms(Store(":memory:"), cl)
    sid = cfg.session_id("initiator")
    bad = f44.NewOrderSingle()  # no ClOrdID
    bad.setField(fix.Side(fix.Side_BUY))
    fix.Session.sendToTarget(bad, sid)
    nan_qty = f44.NewOrderSingle()
    for f in (fix.ClOrdID("z1"), fix.Side(fix.Side_BUY), fix.OrdType(fix.OrdType_MARKET), fix.OrderQty(-5.0)):
        nan_qty.setField(f)
    fix.Session.sendToTarget(nan_qty, sid)
    cancel = f44.OrderCancelRequest()
    for f in (fix.OrigClOrdID("ghost"), fix.ClOrdID("g-x"), fix.Side(fix.Side_BUY)):
        cancel.setField(f)
    fix.Session.sendToTarget(cancel, sid)
    assert _until(lambda: sum(ex.refused.values()) == 3)
    assert ex.refused["NewOrderSingle without ClOrdID"] == 1 and ex.refused["cancel for an unknown order"] == 1
    # the exchange answered the bad quantity with a rejected execution report for an order we never sent
    assert _until(lambda: (oms.poll(), oms.rejected_reports["unknown order"])[1] == 1)
    # and the session is still up: a good order still fills
    oms.submit(_child(5, 10))
    assert _until(lambda: (oms.poll(), oms.orders["k5"].state)[1] is OrderState.FILLED)


def test_execute_cli_over_fix_works_an_order_through_the_loopback_exchange(tmp_path: Path, data: Path) -> None:
    import json

    from typer.testing import CliRunner

    from impactlab.cli.main import app

    store = tmp_path / "s.duckdb"
    args = ["execute", "--venue", "fix", "--qty", "200", "--horizon", "3s", "--step", "1s", "--store", str(store)]
    r = CliRunner().invoke(app, [*args, "--order-id", "FX1", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["venue"] == "fix" and res["orders"][0]["filled"] == pytest.approx(200)
    assert res["fix_refused"] == {} and res["rejected_reports"] == {}
    with Store(store, read_only=True) as st:
        assert st.read("fills").to_pandas()["quantity"].sum() == pytest.approx(200)
        (pred,) = st.read("cost_predictions").to_pylist()  # the instrument model's forecast, with its interval
        assert pred["model"] == "GOOG-v1" and pred["lower_bps"] < pred["predicted_bps"] < pred["upper_bps"]


def test_execute_over_fix_prices_on_the_instruments_tick(tmp_path: Path, data: Path) -> None:
    """An E-mini (tick 0.25) over FIX: market orders go as IOC limits at the collar on its tick grid (they were
    priced on a 0.01 grid, off the book, and nothing filled)."""
    import json

    from typer.testing import CliRunner

    from impactlab.cli.main import app

    args = ["execute", "--symbol", "ESM4", "--venue", "fix", "--qty", "5", "--horizon", "3s", "--step", "1s",
            "--store", str(tmp_path / "s.duckdb"), "--json"]  # fmt: skip
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["orders"][0]["filled"] == pytest.approx(5)
