"""Execution: order state machine and journal, risk checks that cannot be bypassed, the Cont–Kukanov router
against its closed form and a brute-force search, and a parent order worked on the GOOG replay."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest

from impactlab.data import ChildOrder, OrderType, ParentOrder, Side, Store
from impactlab.errors import DataValidationError, ExecutionError, RiskLimitError
from impactlab.execution import (
    ChildChoice,
    ChildContext,
    ContKukanovRouter,
    ExecutionEngine,
    ExecutionReport,
    MarketSnapshot,
    NaiveRouter,
    OrderManager,
    OrderState,
    RiskGate,
    RiskLimits,
    SimClock,
    SimulatedVenue,
    Slicer,
    VenueQuote,
    ck_expected_cost,
    ck_single_venue,
    guarded_order_manager,
    queue_outflow_samples,
)
from impactlab.execution import _kernels as k

T0 = 1_700_000_000 * 10**9


class FakeVenue:
    """Records what it is sent; the test writes the reports."""

    def __init__(self, name: str = "X", store: Store | None = None) -> None:
        self.name = name
        self.sent: list[ChildOrder] = []
        self.cancels: list[str] = []
        self.reports: list[ExecutionReport] = []
        self.store = store
        self.journalled_before_send: list[bool] = []

    def send(self, order: ChildOrder) -> None:
        if self.store is not None:
            ids = self.store.read("child_orders").column("client_order_id").to_pylist()
            self.journalled_before_send.append(order.client_order_id in ids)
        self.sent.append(order)

    def cancel(self, client_order_id: str) -> None:
        self.cancels.append(client_order_id)

    def poll(self, now_ns: int) -> list[ExecutionReport]:
        out, self.reports = self.reports, []
        return out


def _child(
    n: int = 0, qty: float = 100.0, *, typ: str = "limit", px: float | None = 100.0, venue: str = "X"
) -> ChildOrder:
    return ChildOrder(f"c{n}", "P1", "GOOG", Side.BUY, qty, OrderType(typ), venue, T0, px if typ != "market" else None)


def _fill(exec_id: str, clid: str, qty: float, px: float = 100.0, venue: str = "X") -> ExecutionReport:
    return ExecutionReport(exec_id, clid, "fill", T0 + 1, venue, qty, px)


def _oms(tmp_path: Path | None = None, **kw: object) -> tuple[OrderManager, FakeVenue, Store]:
    store = Store(":memory:" if tmp_path is None else tmp_path / "s.duckdb")
    v = FakeVenue(store=store)
    oms = OrderManager(store, {"X": v}, clock=lambda: T0, **kw)  # type: ignore[arg-type]
    oms.open_parent(ParentOrder("P1", "GOOG", Side.BUY, 10_000.0, T0, T0 + 600 * 10**9))
    return oms, v, store


# -- order state machine -----------------------------------------------------------------------------


def test_orders_are_journalled_before_sending_and_ids_are_idempotent() -> None:
    oms, v, store = _oms()
    a = oms.submit(_child(1))
    b = oms.submit(_child(1))  # a retry with the same client order id
    assert a is b and len(v.sent) == 1
    assert v.journalled_before_send == [True]
    assert store.count("child_orders") == 1 and store.count("order_events") == 1
    with pytest.raises(ExecutionError, match="unknown venue"):
        oms.submit(_child(2, venue="NOPE"))


def test_state_machine_partial_fill_fill_and_final_states() -> None:
    oms, _, store = _oms()
    mo = oms.submit(_child(1, qty=100, px=101.0))
    assert oms.apply(ExecutionReport("a1", "c1", "new", T0, "X"))
    assert mo.state is OrderState.NEW
    assert oms.apply(_fill("e1", "c1", 40))
    assert mo.state is OrderState.PARTIALLY_FILLED and mo.open_quantity == 60
    assert oms.apply(_fill("e2", "c1", 60, 101.0))
    assert mo.state is OrderState.FILLED and mo.average_price == pytest.approx(100.6)
    # a cancel after the fill is an invalid transition: refused and counted, state unchanged
    assert not oms.apply(ExecutionReport("x1", "c1", "cancelled", T0, "X"))
    assert mo.state is OrderState.FILLED
    assert oms.rejected_reports["cancelled on a filled order"] == 1
    assert store.count("fills") == 2


def test_bad_reports_are_refused_counted_and_never_raise() -> None:
    oms, _, store = _oms()
    oms.submit(_child(1, qty=100))
    assert not oms.apply(ExecutionReport("e4", "c1", "fill", T0, "X", 0.0, 100.0))  # zero quantity
    assert not oms.apply(ExecutionReport("n1", "ghost", "new", T0, "X"))  # an ack for an unknown order
    assert oms.apply(_fill("e5", "c1", 30))
    assert not oms.apply(_fill("e5", "c1", 30))  # the same execution id again, with no PossDup: refused
    assert not oms.apply(dataclasses.replace(_fill("e5", "c1", 30), poss_dup=True))  # a resend: a duplicate
    assert oms.duplicate_reports == 1
    assert dict(oms.rejected_reports) == {
        "unknown order": 1,
        "fill with a non-positive quantity or price": 1,
        "execution id seen before, without PossDup": 1,
    }
    assert oms.filled("P1") == 30 and store.count("fills") == 1 and store.count("breaks") == 0
    assert not oms.halted


@pytest.mark.parametrize(
    ("report", "why"),
    [
        (_fill("e1", "ghost", 10), "never sent"),
        (_fill("e2", "c1", 150), "fill of 150 with 100 open"),
        (_fill("e3", "c1", 10, venue="OTHER"), "fill from OTHER"),
        (_fill("e4", "c1", 10, px=1_000_000.0), "through the limit 100"),  # the red team's $1M fill on a limit
    ],
)
def test_a_fill_the_order_cannot_take_is_a_break_stored_alerted_and_halting_its_parent(
    report: ExecutionReport, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    seen = []
    oms, v, store = _oms(on_break=seen.append)
    oms.submit(_child(1, qty=100))
    with caplog.at_level("ERROR", logger="impactlab.alerts"):
        assert not oms.apply(report)
    assert len(seen) == 1 and why in seen[0].reason and "BREAK" in caplog.text
    row = store.read("breaks").to_pylist()[0]
    assert row["exec_id"] == report.exec_id and row["quantity"] == report.quantity and why in row["reason"]
    assert oms.filled("P1") == 0 and store.count("fills") == 0
    if report.client_order_id == "c1":  # the parent is known: halted, nothing more is sent for it
        assert "break" in oms.halted["P1"]
        with pytest.raises(RiskLimitError) as e:
            oms.submit(_child(2, qty=10))
        assert e.value.check == "parent_halted" and len(v.sent) == 1


def test_a_fill_on_a_filled_order_is_a_break_and_a_restart_keeps_the_parent_halted(tmp_path: Path) -> None:
    oms, _, store = _oms(tmp_path)
    oms.submit(_child(1, qty=100))
    assert oms.apply(_fill("e1", "c1", 100))
    assert not oms.apply(_fill("e2", "c1", 20))  # the red team's sequence reset: an old order filled again
    assert oms.breaks[0].reason == "fill on a filled order"
    store.close()
    back = OrderManager.restore(Store(tmp_path / "s.duckdb"), {"X": FakeVenue()}, clock=lambda: T0)
    assert "P1" in back.halted
    assert not back.apply(_fill("e2", "c1", 20))  # the same break again is not a second one
    assert back.duplicate_reports == 0 and len(back.breaks) == 0


def test_open_plus_filled_never_exceeds_the_parent_in_the_order_manager() -> None:
    oms, v, _ = _oms()
    oms.open_parent(ParentOrder("P2", "GOOG", Side.BUY, 250.0, T0, T0 + 10**9))
    kid = lambda n, q: ChildOrder(f"p2-{n}", "P2", "GOOG", Side.BUY, q, OrderType.LIMIT, "X", T0, 100.0)  # noqa: E731
    oms.submit(kid(1, 100))
    oms.submit(kid(2, 100))
    with pytest.raises(RiskLimitError) as e:
        oms.submit(kid(3, 100))  # 300 > 250 while the first two are open, whatever the slicer thinks
    assert e.value.check == "parent_quantity" and e.value.limit == 250
    oms.apply(_fill("f1", "p2-1", 100))
    oms.apply(ExecutionReport("x2", "p2-2", "cancelled", T0, "X"))
    oms.submit(kid(4, 150))  # 100 filled + 150 open = 250: allowed
    with pytest.raises(RiskLimitError, match=r"exceed"):
        oms.submit(kid(5, 1))
    with pytest.raises(ExecutionError, match="not opened"):
        oms.submit(ChildOrder("z", "NOPE", "GOOG", Side.BUY, 1, OrderType.LIMIT, "X", T0, 100.0))
    assert [o.client_order_id for o in v.sent] == ["p2-1", "p2-2", "p2-4"]


def test_an_unanswered_order_becomes_unknown_counts_as_open_and_is_settled_by_status() -> None:
    now = [T0]
    store = Store(":memory:")
    v = FakeVenue(store=store)
    asked: list[str] = []
    v.request_status = lambda order: asked.append(order.client_order_id)  # type: ignore[attr-defined]
    oms = OrderManager(store, {"X": v}, clock=lambda: now[0], ack_timeout_s=2.0)  # type: ignore[dict-item]
    oms.open_parent(ParentOrder("P1", "GOOG", Side.BUY, 100.0, T0, T0 + 10**10))
    mo = oms.submit(_child(1, qty=100))
    now[0] += 3 * 10**9
    oms.poll()
    assert mo.state is OrderState.UNKNOWN and asked == ["c1"] and mo.open_quantity == 100
    with pytest.raises(RiskLimitError, match="exceed"):
        oms.submit(_child(2, qty=1))  # unknown counts in full against the parent
    assert oms.apply(ExecutionReport("s1", "c1", "status", now[0], "X", status="unknown"))
    assert mo.state is OrderState.REJECTED and "never received" in mo.reason
    oms.submit(_child(3, qty=100))  # now the parent may send again


def test_a_status_that_disagrees_with_the_store_is_a_reconciliation_break() -> None:
    oms, _, store = _oms()
    oms.submit(_child(1, qty=100))
    oms.apply(_fill("e1", "c1", 40))
    assert not oms.apply(ExecutionReport("s1", "c1", "status", T0, "X", status="partially_filled", cum_quantity=60))
    assert oms.breaks[0].kind == "reconciliation" and oms.breaks[0].quantity == pytest.approx(20)
    assert store.count("breaks") == 1 and "P1" in oms.halted


def test_restart_restores_states_and_fills_and_ignores_resent_reports(tmp_path: Path) -> None:
    oms, _, store = _oms(tmp_path)
    oms.submit(_child(1, qty=100))
    oms.submit(_child(2, qty=50))
    oms.apply(ExecutionReport("a1", "c1", "new", T0, "X"))
    oms.apply(_fill("e1", "c1", 40))
    oms.apply(ExecutionReport("r2", "c2", "rejected", T0, "X", reason="no liquidity"))
    store.close()  # the process dies here
    store2 = Store(tmp_path / "s.duckdb")
    v2 = FakeVenue()
    back = OrderManager.restore(store2, {"X": v2}, clock=lambda: T0)
    assert back.parents == {"P1": 10_000.0}
    assert back.orders["c1"].state is OrderState.PARTIALLY_FILLED and back.orders["c1"].filled == 40
    assert back.orders["c2"].state is OrderState.REJECTED
    assert not back.apply(_fill("e1", "c1", 40))  # the venue resends the fill after the reconnect
    assert back.filled("P1") == 40
    back.submit(_child(1, qty=100))  # the restarted strategy re-creates the same child: not re-sent
    assert v2.sent == []
    assert back.apply(_fill("e9", "c1", 60))
    assert back.orders["c1"].state is OrderState.FILLED and store2.count("fills") == 2


# -- risk checks ---------------------------------------------------------------------------------------


def _gate(mid: float = 100.0, volume: float = 10_000.0, **limits: object) -> tuple[RiskGate, SimClock]:
    clock = SimClock(T0)
    lim = RiskLimits(**{"max_order_qty": 1_000.0, "max_order_notional": 80_000.0, "max_participation": 0.2,
                        "price_collar_bps": 50.0, "max_open_orders": 3, "max_parent_qty": 2_500.0, **limits})  # type: ignore[arg-type]  # fmt: skip
    return RiskGate(lim, lambda s: MarketSnapshot(mid, volume), clock=clock), clock


@pytest.mark.parametrize(
    ("child", "check"),
    [
        (_child(1, qty=1_001), "max_order_qty"),
        (_child(1, qty=900, px=100.4), "max_order_notional"),  # 90,360 > 80,000
        (_child(1, qty=799, typ="market"), "max_order_notional"),  # valued at the collar: 100.5 × 799
        (_child(1, qty=10, px=100.51), "price_collar"),  # 51 bps through the mid
    ],
)
def test_each_order_limit_refuses_an_order_that_tries_to_pass_it(child: ChildOrder, check: str) -> None:
    gate, _ = _gate()
    with pytest.raises(RiskLimitError) as e:
        gate(child)
    assert e.value.check == check
    gate(_child(2, qty=10, px=100.0))  # an order inside every limit passes


def test_participation_counts_fills_and_open_orders_so_splitting_cannot_dodge_it() -> None:
    from impactlab.data import Fill

    open_qty = {"GOOG": 0.0}
    clock = SimClock(T0)
    lim = RiskLimits(max_order_notional=1e9, max_participation=0.2, max_parent_qty=1e9)
    gate = RiskGate(lim, lambda s: MarketSnapshot(100.0, 10_000.0), clock=clock, open_quantity=open_qty.__getitem__)
    # 20% of (10,000 + ours) allows 2,500 of our shares in the window
    gate(_child(1, qty=1_000))
    open_qty["GOOG"] = 2_000.0  # two children resting, unfilled
    with pytest.raises(RiskLimitError) as e:
        gate(_child(2, qty=600))  # 2,600 / 12,600 = 20.6%
    assert e.value.check == "max_participation"
    open_qty["GOOG"] = 0.0  # cancelled: a re-post is not counted twice
    gate(_child(3, qty=600))
    for i in range(2):  # then they fill
        gate.record_fill(Fill(f"f{i}", "c", "P1", "GOOG", Side.BUY, 1_000.0, 100.0, T0 + i, "X"))
    with pytest.raises(RiskLimitError, match="max_participation"):
        gate(_child(4, qty=600))
    clock.advance_to(T0 + 301 * 10**9)  # the window has rolled past the fills
    gate(_child(5, qty=600))


def test_parent_quantity_open_orders_and_no_mid_are_enforced() -> None:
    gate, clock = _gate(volume=1e9, max_order_notional=1e9)
    for i in range(2):
        gate(dataclasses.replace(_child(i, qty=1_000)))
    with pytest.raises(RiskLimitError) as e:
        gate(_child(5, qty=600))
    assert e.value.check == "max_parent_qty"
    busy = RiskGate(
        RiskLimits(max_open_orders=2), lambda s: MarketSnapshot(100.0, 1e9), clock=clock, open_orders=lambda: 2
    )
    with pytest.raises(RiskLimitError, match="max_open_orders"):
        busy(_child(1, qty=1))
    blind = RiskGate(RiskLimits(), lambda s: MarketSnapshot(float("nan"), 1e9), clock=clock)
    with pytest.raises(RiskLimitError) as e:
        blind(_child(1, qty=1))
    assert e.value.check == "price_collar"


def test_limits_are_frozen_validated_and_the_gate_is_not_optional() -> None:
    lim = RiskLimits()
    with pytest.raises(dataclasses.FrozenInstanceError):
        lim.max_order_qty = 1e12  # type: ignore[misc]
    with pytest.raises(RiskLimitError, match="max_order_qty"):
        RiskLimits(max_order_qty=float("nan"))
    with pytest.raises(DataValidationError, match="quantity"):
        _child(1, qty=float("inf"))  # an unbounded order cannot even be built
    with pytest.raises(RiskLimitError, match="unknown"):
        RiskLimits.from_dict({"max_order_qty": 1.0, "skip_checks": True})
    with pytest.raises(RiskLimitError, match="RiskLimits"):
        RiskGate({"max_order_qty": 1e12}, lambda s: MarketSnapshot(1.0, 1.0), clock=lambda: 0)  # type: ignore[arg-type]
    # through the order manager: a refused order is neither journalled nor sent
    gate, _ = _gate()
    oms, v, store = _oms(risk=gate)
    with pytest.raises(RiskLimitError):
        oms.submit(_child(1, qty=5_000))
    assert v.sent == [] and oms.refused_orders["max_order_qty"] == 1
    # the refusal is in the audit trail, and a retry of the same id does not slip through
    ev = store.read("order_events").to_pylist()
    assert [(e["client_order_id"], e["state"]) for e in ev] == [("c1", "rejected")] and "max_order_qty" in ev[0][
        "reason"
    ]
    assert oms.submit(_child(1, qty=5_000)).state is OrderState.REJECTED and v.sent == []


def test_kill_switch_refuses_new_orders_cancels_open_ones_and_needs_a_confirmed_reset() -> None:
    gate, _ = _gate()
    oms, v, _ = _oms(risk=gate)
    oms.submit(_child(1, qty=10))
    oms.submit(_child(2, qty=10))
    gate.kill_switch.on_trip(oms.cancel_all)
    gate.kill_switch.trip("loss limit")
    assert sorted(v.cancels) == ["c1", "c2"]
    with pytest.raises(RiskLimitError) as e:
        oms.submit(_child(3, qty=1))
    assert e.value.check == "kill_switch" and len(v.sent) == 2
    with pytest.raises(RiskLimitError):
        gate.kill_switch.reset(confirm="yes")
    gate.kill_switch.reset(confirm="RESET")
    assert oms.submit(_child(3, qty=1)).state is OrderState.REJECTED  # the refused id stays refused
    oms.submit(_child(4, qty=1))  # a new order goes through
    assert len(v.sent) == 3


def test_guarded_order_manager_checks_every_order_and_its_kill_switch_cancels() -> None:
    class PricedVenue(FakeVenue):
        def mid(self) -> float:
            return 100.0

    v = PricedVenue()
    oms = guarded_order_manager(Store(":memory:"), {"X": v}, limits=RiskLimits(price_collar_bps=10.0),
                                clock=lambda: T0, market_volume=1e6)  # fmt: skip
    oms.open_parent(ParentOrder("P1", "GOOG", Side.BUY, 1_000.0, T0, T0 + 10**9))
    oms.submit(_child(1, qty=10, px=100.05))
    with pytest.raises(RiskLimitError) as e:
        oms.submit(_child(2, qty=10, px=100.2))  # 20 bps through the mid read from the venue
    assert e.value.check == "price_collar" and len(v.sent) == 1
    with pytest.raises(AttributeError):
        oms.risk = None  # type: ignore[misc]
    assert isinstance(oms.risk, RiskGate)
    oms.risk.kill_switch.trip("drill")
    assert v.cancels == ["c1"]
    assert RiskLimits(price_collar_bps=10.0).collar_price(1, 100.0, 0.01) == pytest.approx(100.10)
    assert RiskLimits(price_collar_bps=10.0).collar_price(-1, 100.0, 0.03) == pytest.approx(99.90)


# -- router --------------------------------------------------------------------------------------------


def _quote(
    name: str, price: float, queue: float, taker: float, rebate: float, outflow: np.ndarray, size: float = 1e6
) -> VenueQuote:
    return VenueQuote(name, price, size, queue, taker, rebate, outflow)


def test_single_venue_split_is_the_closed_form_and_the_brute_force_optimum() -> None:
    rng = np.random.default_rng(0)
    out = rng.gamma(2.0, 400.0, 500)
    q = _quote("A", 100.05, 300, 3.0, 2.0, out)
    router = ContKukanovRouter(under_penalty_bps=20.0, max_samples=500)
    d = router.route(1000, 1, [q], mid=100.0, with_cost=True)
    m_star, l_star = ck_single_venue(1000, 300, 5.0, 3.0, 2.0, 20.0, out)
    assert m_star + l_star == 1000 and d.limit["A"] == pytest.approx(np.floor(l_star), abs=1)
    assert d.market["A"] + d.limit["A"] == 1000
    unit, depth, gain, xi = router.arrays(1, [q], 100.0)
    brute = min(
        ck_expected_cost(1000, 1000 - L, np.array([float(L)]), unit, depth, gain, xi, 20.0) for L in range(0, 1001)
    )
    assert d.expected_cost_bps == pytest.approx(brute, abs=1e-3)
    # more under-fill penalty → fewer limit shares; a bigger rebate → more
    assert (
        ContKukanovRouter(under_penalty_bps=60.0, max_samples=500).route(1000, 1, [q], mid=100.0).limit["A"]
        < d.limit["A"]
    )
    q2 = dataclasses.replace(q, maker_rebate_bps=6.0)
    assert router.route(1000, 1, [q2], mid=100.0).limit["A"] > d.limit["A"]


def test_multi_venue_split_matches_a_grid_search_and_never_over_fills() -> None:
    rng = np.random.default_rng(1)
    quotes = [
        _quote("A", 100.05, 400, 3.0, 2.5, rng.gamma(2.0, 300.0, 256)),
        _quote("B", 100.05, 100, 2.0, 0.5, rng.gamma(1.5, 300.0, 256)),
    ]
    router = ContKukanovRouter(under_penalty_bps=12.0)
    d = router.route(1200, 1, quotes, mid=100.0, with_cost=True)
    assert d.market_total + d.limit_total == 1200
    unit, depth, gain, xi = router.arrays(1, quotes, 100.0)
    best = min(
        ck_expected_cost(1200, 1200 - a - b, np.array([a, b], float), unit, depth, gain, xi, 12.0)
        for a, b in itertools.product(range(0, 1201, 20), repeat=2)
        if a + b <= 1200
    )
    assert d.expected_cost_bps <= best + 1e-6
    # the compiled kernel and its Python twin agree
    args = (1200.0, float(unit.min()), gain, xi, 12.0)
    np.testing.assert_allclose(k.ck_limits(*args), k.ck_limits_py(*args))
    # when posting is always worth it the limits are capped at the order, not over-posted
    many = [_quote(f"V{i}", 100.05, 0, 3.0, 3.0, rng.gamma(2.0, 300.0, 64)) for i in range(5)]
    d5 = ContKukanovRouter(under_penalty_bps=1.0).route(500, 1, many, mid=100.0)
    assert d5.limit_total + d5.market_total == 500 and d5.limit_total <= 500


def test_router_improves_the_bid_by_a_tick_only_when_that_level_is_worth_more() -> None:
    rng = np.random.default_rng(2)
    join = rng.gamma(1.0, 150.0, 256)  # little reaches the back of a 400-share queue at the bid
    inside = rng.gamma(2.0, 400.0, 256)  # the flow that reaches a lone bid one tick better
    wide = VenueQuote("A", 100.10, 1e6, 400.0, 3.0, 2.0, join, near_price=99.90, tick=0.01, improve_outflow=inside)
    router = ContKukanovRouter(under_penalty_bps=10.0)
    d = router.route(1_000, 1, [wide], mid=100.0)
    assert d.limit_price["A"] == pytest.approx(99.91) and d.limit["A"] > 0
    # the same split as the paper's router on a venue whose own best is the improved level with no queue
    as_joined = dataclasses.replace(wide, near_price=99.91, queue=0.0, outflow=inside, improve_outflow=None)
    assert router.route(1_000, 1, [as_joined], mid=100.0).limit == d.limit
    # the choice is the level with the lower objective: evaluate both at their own optimum
    values = []
    for q in (dataclasses.replace(wide, improve_outflow=None), as_joined):
        unit, depth, gain, xi = router.arrays(1, [q], 100.0)
        lim = router.route(1_000, 1, [q], mid=100.0).limit["A"]
        values.append(ck_expected_cost(1_000, 1_000 - lim, np.array([lim]), unit, depth, gain, xi, 10.0))
    assert values[1] < values[0]
    # no improvement when it is switched off, the spread is one tick, or nothing reaches the inside
    assert ContKukanovRouter(under_penalty_bps=10.0, improve=False).route(1_000, 1, [wide], mid=100.0).limit_price[
        "A"
    ] == pytest.approx(99.90)
    tight = dataclasses.replace(wide, price=99.91, near_price=99.90)
    assert router.route(1_000, 1, [tight], mid=99.905).limit_price["A"] == pytest.approx(99.90)
    empty = dataclasses.replace(wide, queue=0.0, outflow=inside, improve_outflow=np.zeros(256))
    assert router.route(1_000, 1, [empty], mid=100.0).limit_price["A"] == pytest.approx(99.90)
    # a seller improves the ask downwards
    sell = VenueQuote("A", 99.90, 1e6, 400.0, 3.0, 2.0, join, near_price=100.10, tick=0.01, improve_outflow=inside)
    assert router.route(1_000, -1, [sell], mid=100.0).limit_price["A"] == pytest.approx(100.09)
    # the compiled kernels and their Python twins agree, and ordering the samples does not change the answer
    unit, depth, gain, xi = router.arrays(1, [wide, sell], 100.0)
    x_in = np.column_stack([inside, inside])
    args = (1_000.0, float(unit.min()), gain, xi, gain - 1.0, x_in, np.array([True, False]), 10.0)
    np.testing.assert_array_equal(k.ck_levels(*args), k.ck_levels_py(*args))

    def fresh() -> tuple:  # type: ignore[type-arg]
        return 1_000.0, float(unit.min()), gain.copy(), xi.copy(), gain - 1.0, x_in, np.array([True, False]), 10.0

    got, want = k.ck_route(*fresh()), k.ck_route_py(*fresh())
    np.testing.assert_allclose(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(k.ck_limits(1_000.0, 3.0, gain, np.sort(xi, axis=0), 10.0),
                               k.ck_limits_py(1_000.0, 3.0, gain, xi, 10.0))  # fmt: skip


def test_naive_router_sends_everything_at_market_to_the_best_price() -> None:
    quotes = [
        _quote("A", 100.06, 0, 0.0, 0.0, np.ones(3), size=300),
        _quote("B", 100.05, 0, 9.0, 0.0, np.ones(3), size=200),
    ]
    d = NaiveRouter().route(1000, 1, quotes)
    # B has the best price (its fee is ignored): its 200 displayed, then A's 300, the rest to B
    assert d.limit_total == 0 and d.market == {"A": 300.0, "B": 700.0}


# -- a parent order on the GOOG replay -----------------------------------------------------------------


@pytest.fixture(scope="module")
def goog(data: Path):  # type: ignore[no-untyped-def]
    from impactlab.rl.tasks import load_day
    from impactlab.simulation import ReplayData

    day = load_day("GOOG", data)
    return day, ReplayData.from_day(day)


def _run(goog, router, start_s: float, store: Store, pid: str = "P1", improve=None, child=None):  # type: ignore[no-untyped-def]
    from impactlab.schedules import twap
    from impactlab.simulation import ConstantLatency, FeeModel, ReplayMarket

    day, data = goog
    start = int(data.start_ns + start_s * 1e9)
    clock = SimClock(start)
    venue = ReplayMarket(data, start_ns=start, fees=FeeModel(-0.2, 0.3), entry_latency=ConstantLatency(10**6),
                         response_latency=ConstantLatency(10**6))  # fmt: skip
    lim = RiskLimits(max_participation=0.5)
    sv = SimulatedVenue("NASDAQ", venue, collar=lim.collar_price)
    oms = guarded_order_manager(store, {"NASDAQ": sv}, limits=lim, clock=clock, market_volume=1e6)
    outflow = {"NASDAQ": queue_outflow_samples(day, 1, 60.0)}
    eng = ExecutionEngine(oms, {"NASDAQ": sv}, router, clock=clock, outflow=outflow, improve_outflow=improve,
                          child_policy=child)  # fmt: skip
    parent = ParentOrder(pid, "GOOG", Side.BUY, 1_500.0, start, start + 300 * 10**9)
    return eng.run(parent, Slicer(twap(1_500.0, 300.0, step_s=60.0), parent))


def test_a_parent_order_is_worked_to_completion_and_recorded(goog) -> None:  # type: ignore[no-untyped-def]
    store = Store(":memory:")
    res = _run(goog, ContKukanovRouter(under_penalty_bps=5.0), 3_600, store)
    assert res.filled == pytest.approx(1_500.0)
    assert res.refused == {} and res.rejected_reports == {}
    fills = store.read("fills").to_pandas()
    assert fills["quantity"].sum() == pytest.approx(1_500.0) and fills["fill_id"].is_unique
    row = store.read("parent_orders").to_pylist()[0]
    assert row["avg_price"] == pytest.approx(res.average_price) and row["arrival_mid"] == pytest.approx(res.arrival_mid)
    assert np.isfinite(row["post_mid"])
    # the shortfall identity: paid over the arrival value, fees included
    a = res.arrival_mid
    s = (res.average_price - a) / a * 1e4 + fills["fee"].sum() / (1_500 * a) * 1e4
    assert res.shortfall_bps == pytest.approx(s)
    naive = _run(goog, NaiveRouter(), 3_600, store, pid="P2")  # a second run into the same store
    assert naive.filled == pytest.approx(1_500.0)
    both = store.read("fills").to_pandas().groupby("parent_order_id")["quantity"].sum()
    assert both.to_dict() == pytest.approx({"P1": 1_500.0, "P2": 1_500.0})  # no fill id collides
    assert all(f.liquidity == "taker" for f in naive.fills)
    # the router worked part of it passively: limit children at the own best bid, below the arrival ask
    kids = store.read("child_orders").to_pandas()
    limits = kids[kids["order_type"] == "limit"]
    assert len(limits) > 0 and (limits["limit_price"] < res.arrival_mid + 0.5).all()


def test_engine_posts_one_tick_inside_a_wide_spread_when_the_router_says_so(goog, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    day, _ = goog
    seen: list[tuple[float, float]] = []  # (limit price sent, best bid the venue showed at that moment)
    send = SimulatedVenue.send

    def spy(self: SimulatedVenue, order: ChildOrder) -> None:
        if order.limit_price is not None and order.order_type.value == "limit":
            seen.append((order.limit_price, self.own_best(int(order.side))))
        send(self, order)

    monkeypatch.setattr(SimulatedVenue, "send", spy)
    store = Store(":memory:")
    inside = {"NASDAQ": queue_outflow_samples(day, 1, 60.0, improve_ticks=1)}
    res = _run(goog, ContKukanovRouter(under_penalty_bps=5.0), 3_600, store, improve=inside)
    assert res.filled == pytest.approx(1_500.0)
    # every limit child joins the best bid or improves it by one tick, and the router did improve
    steps = [round((px - bid) / 0.01) for px, bid in seen]
    assert set(steps) <= {0, 1} and 1 in steps
    assert any(f.liquidity == "maker" for f in res.fills)


class _HalfAtTheBid:
    """A child policy: half the planned child, as a limit order at the own best (every other slice at market)."""

    def __init__(self) -> None:
        self.seen: list[ChildContext] = []

    def choose(self, ctx: ChildContext) -> ChildChoice:
        self.seen.append(ctx)
        return ChildChoice(0.5 * ctx.planned, 0 if ctx.slice_index % 2 == 0 else None)


def test_a_child_policy_sizes_and_prices_each_non_urgent_child(goog, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    sent: list[tuple[ChildOrder, float]] = []
    send = SimulatedVenue.send

    def spy(self: SimulatedVenue, order: ChildOrder) -> None:
        sent.append((order, self.own_best(int(order.side))))
        send(self, order)

    monkeypatch.setattr(SimulatedVenue, "send", spy)
    pol = _HalfAtTheBid()
    res = _run(goog, ContKukanovRouter(under_penalty_bps=5.0), 3_600, Store(":memory:"), child=pol)
    assert res.filled == pytest.approx(1_500.0)  # urgent slices and the sweep still finish it
    assert [c.slice_index for c in pol.seen] == list(range(len(pol.seen))) and 2 <= len(pol.seen) <= 4
    for c in pol.seen:  # what the policy saw is the slicer's plan
        assert c.target_end - c.target_start == pytest.approx(300.0) and c.quantity == 1_500.0 and c.side == 1
        assert c.planned == pytest.approx(max(c.target_end - c.filled, 0.0))
    # the children it chose were sent as chosen: half the plan, at the bid on even slices, at market on odd
    ours = sent[: len(pol.seen)]
    for (order, bid), c in zip(ours, pol.seen, strict=True):
        assert order.quantity == np.floor(0.5 * c.planned)
        if c.slice_index % 2 == 0:
            assert order.order_type is OrderType.LIMIT and order.limit_price == pytest.approx(bid)
        else:
            assert order.order_type is OrderType.MARKET
    with pytest.raises(ExecutionError, match="one venue"):
        ExecutionEngine(None, {"A": None, "B": None}, NaiveRouter(), clock=SimClock(0), child_policy=pol)  # type: ignore[arg-type]


def test_slicer_targets_and_urgency(goog) -> None:  # type: ignore[no-untyped-def]
    from impactlab.schedules import twap

    parent = ParentOrder("P", "GOOG", Side.BUY, 1_000.0, T0, T0 + 500 * 10**9)
    sl = Slicer(twap(1_000.0, 500.0, step_s=100.0), parent, catch_up_fraction=0.1)
    assert sl.n_slices == 5 and sl.end_ns == T0 + 500 * 10**9
    p = sl.plan(0, 0.0)
    assert p.quantity == 200 and not p.urgent
    assert sl.plan(2, 150.0).urgent  # 250 behind the 400 due by slice 2's start: > 10% of the parent
    assert sl.plan(4, 800.0).urgent and sl.plan(4, 800.0).quantity == 200  # the last slice goes to market
    with pytest.raises(ExecutionError, match="side"):
        Slicer(twap(1_000.0, 500.0, step_s=100.0, side=-1), parent)


# -- the red team's findings on the command line ------------------------------------------------------------


def test_a_reused_parent_id_is_refused_unless_resumed_and_a_run_cannot_loosen_its_limits(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from impactlab.cli.main import app

    run = CliRunner().invoke
    store = str(tmp_path / "s.duckdb")
    args = ["execute", "--qty", "1000", "--horizon", "5m", "--step", "1m", "--store", store, "--json"]
    first = run(app, [*args, "--order-id", "R1"])
    assert first.exit_code == 0, first.output
    again = run(app, [*args, "--order-id", "R1", "--seed", "7"])  # the red team's second run on the same id
    assert again.exit_code == 2 and "already in the store" in again.output and "--resume" in again.output
    resumed = run(app, [*args, "--order-id", "R1", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["orders"][0]["filled"] == pytest.approx(1_000)  # not 2,000
    with Store(store, read_only=True) as st:
        assert st.read("parent_orders").num_rows == 1
        assert sum(st.read("fills").column("quantity").to_pylist()) == pytest.approx(1_000)
    wrong = run(app, [*args, "--order-id", "R1", "--resume", "--qty", "2000"])
    assert wrong.exit_code == 2 and "same --symbol/--side/--qty/--horizon" in wrong.output
    two = run(app, args)
    assert two.exit_code == 0 and json.loads(two.stdout)["order_id"] != "R1"  # a fresh unique id
    loose = run(app, [*args, "--max-order-qty", "20000"])
    assert loose.exit_code == 2 and "would loosen" in loose.output
    limits = tmp_path / "limits.toml"
    limits.write_text("[limits]\nmax_order_qty = 100\n")
    tight = run(app, [*args, "--limits", str(limits)])
    assert tight.exit_code == 0, tight.output
    assert json.loads(tight.stdout)["refused_orders"] == {}  # slices above the per-order limit are split
    with Store(store, read_only=True) as st:
        pid = json.loads(tight.stdout)["order_id"]
        kids = st.read("child_orders", where="parent_order_id = ?", params=[pid]).column("quantity").to_pylist()
        done = sum(st.read("fills", where="parent_order_id = ?", params=[pid]).column("quantity").to_pylist())
    assert max(kids) <= 100 and done == pytest.approx(1_000)


def test_the_kill_switch_is_persisted_beside_the_store_and_stops_the_next_run(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from impactlab.cli.main import app

    run = CliRunner().invoke
    store = str(tmp_path / "s.duckdb")
    assert run(app, ["kill-switch", "status", "--store", store]).exit_code == 0
    assert run(app, ["kill-switch", "trip", "--reason", "desk drill", "--store", store]).exit_code == 0
    r = run(app, ["execute", "--qty", "1000", "--horizon", "5m", "--step", "1m", "--store", store, "--json"])
    assert r.exit_code == 1 and "kill switch: desk drill" in r.output
    assert json.loads(r.stdout)["orders"][0]["filled"] == 0
    assert run(app, ["kill-switch", "reset", "--store", store]).exit_code == 2  # needs --confirm RESET
    assert run(app, ["kill-switch", "reset", "--confirm", "RESET", "--by", "risk", "--store", store]).exit_code == 0
    st = json.loads(run(app, ["kill-switch", "status", "--store", store, "--json"]).stdout)
    assert st["tripped"] is False and [h["event"] for h in st["history"]] == ["trip", "reset"]


def test_participation_is_shared_by_consecutive_runs_through_the_store(tmp_path: Path) -> None:
    from impactlab.data import Fill

    store = Store(tmp_path / "s.duckdb")
    # an earlier run filled 2,000 shares a minute ago
    store.add_records([Fill(f"X:old{i}", "o", "OLD", "GOOG", Side.BUY, 1_000.0, 100.0, T0 - 60 * 10**9 + i, "X")
                       for i in range(2)])  # fmt: skip

    class PricedVenue(FakeVenue):
        def mid(self) -> float:
            return 100.0

    oms = guarded_order_manager(store, {"X": PricedVenue()}, limits=RiskLimits(max_participation=0.25),
                                clock=lambda: T0, market_volume=10_000.0)  # fmt: skip
    oms.open_parent(ParentOrder("P1", "GOOG", Side.BUY, 10_000.0, T0, T0 + 10**9))
    with pytest.raises(RiskLimitError) as e:
        oms.submit(_child(1, qty=2_000))  # alone 2,000 / 12,000 = 17%; with the earlier run's 4,000 / 14,000
    assert e.value.check == "max_participation"
