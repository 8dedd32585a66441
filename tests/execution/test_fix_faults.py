"""Faults on the FIX order path, each asserting the two things a desk's risk officer checks: the parent is
never over-executed, and the exchange's own record of executions and the order store agree exactly.

The faults: the acceptor killed (no logout) mid-parent and restarted with its session store, the acceptor
forgetting what it received (a sequence reset, which makes it ask for every order again), the client's TCP
connection cut, and an acceptor that never comes back."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from impactlab.data import ParentOrder, Side, Store
from impactlab.execution import ExecutionEngine, NaiveRouter, RiskLimits, Slicer, WallClock, guarded_order_manager
from impactlab.execution.fix import FixConfig, FixExchange, FixVenue
from impactlab.schedules import twap
from impactlab.simulation import FeeModel, QueueReactiveMarket, QueueReactiveParams

NS = 10**9


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _market(seed: int = 3) -> QueueReactiveMarket:
    m = QueueReactiveMarket(QueueReactiveParams.published(), price=100.0, tick_size=0.01, initial_spread_ticks=1,
                            seed=seed)  # fmt: skip
    m.run_to(60 * NS)
    return m


class Rig:
    """A FIX client and a loopback exchange that can be killed and restarted, with the engine on top."""

    def __init__(self, tmp_path: Path, *, recover_s: float = 8.0) -> None:
        self.cfg = FixConfig(port=_port(), store_dir=tmp_path / "fix", reconnect_s=1)
        self.log = tmp_path / "fix" / "exchange-executions.jsonl"
        self.limits = RiskLimits(max_participation=1.0, max_order_notional=1e9)
        self.ex = FixExchange(_market(), self.cfg, exec_log=self.log).start()
        self.cl = FixVenue("SIMX", self.cfg, collar=self.limits.collar_price, book=lambda: self.ex.book(),
                           fees=FeeModel(maker_bps=-0.2, taker_bps=0.3)).start()  # fmt: skip
        self.store = Store(tmp_path / "s.duckdb")
        self.clock = WallClock()
        self.oms = guarded_order_manager(self.store, {"SIMX": self.cl}, limits=self.limits, clock=self.clock,
                                         market_volume=1e9, ack_timeout_s=2.0)  # fmt: skip
        self.eng = ExecutionEngine(self.oms, {"SIMX": self.cl}, NaiveRouter(), clock=self.clock, post_s=0.2,
                                   recover_s=recover_s)  # fmt: skip

    def restart_exchange(self, seed: int = 4) -> None:
        self.ex = FixExchange(_market(seed), self.cfg, exec_log=self.log).start()

    def run(self, qty: float, horizon_s: float, step_s: float) -> Any:
        now = self.clock()
        parent = ParentOrder("P1", "X", Side.BUY, qty, now, now + int(horizon_s * NS))
        return self.eng.run(parent, Slicer(twap(qty, horizon_s, step_s=step_s, side=1), parent))

    def settle(self) -> None:
        """Let the last reports in (a resend after the halt) before the books are compared."""
        time.sleep(0.5)
        self.oms.poll()

    def venue_executions(self) -> dict[str, float]:
        rows = [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []
        return {f"SIMX:{r['exec_id']}": r["quantity"] for r in rows}

    def store_fills(self) -> dict[str, float]:
        t = self.store.read("fills").to_pylist()
        return {r["fill_id"]: r["quantity"] for r in t}

    def close(self) -> None:
        self.cl.close()
        self.ex.stop()
        self.store.close()


@pytest.fixture
def rig(tmp_path: Path):  # type: ignore[no-untyped-def]
    r = Rig(tmp_path)
    yield r
    r.close()


def _later(delay_s: float, action: Any) -> threading.Thread:
    t = threading.Thread(target=lambda: (time.sleep(delay_s), action()), daemon=True)
    t.start()
    return t


def _assert_books_agree(rig: Rig, qty: float) -> None:
    venue, store = rig.venue_executions(), rig.store_fills()
    assert store == pytest.approx(venue)  # every execution at the venue is a fill in the store, and no more
    assert sum(store.values()) <= qty + 1e-9
    assert rig.store.count("breaks") == 0


def test_an_acceptor_killed_and_restarted_mid_parent_never_over_executes(rig: Rig) -> None:
    def outage() -> None:
        rig.ex.kill()
        time.sleep(4.0)
        rig.restart_exchange()

    t = _later(1.6, outage)
    res = rig.run(1_000.0, 6.0, 0.5)
    t.join()
    rig.settle()
    assert "session dropped" in res.halted  # the drop tripped the kill switch and halted the parent
    assert rig.oms.risk.kill_switch.tripped  # type: ignore[union-attr]
    assert 0 < res.filled < 1_000.0
    _assert_books_agree(rig, 1_000.0)
    assert not rig.oms.open_orders() and res.unresolved == ()  # every order settled by the new exchange's word


def test_a_sequence_reset_at_the_acceptor_does_not_execute_old_orders_again(rig: Rig) -> None:
    t = _later(1.6, lambda: rig.ex.drop_connection(forget_received=True))
    received: list[int] = []
    res = rig.run(600.0, 4.0, 0.5)
    t.join()
    received.append(rig.ex.orders_received)
    rig.settle()
    assert rig.cl.refused["resend of an order message replaced by a gap fill"] >= 1  # it asked for them again
    assert rig.ex.orders_received == received[0] == len(rig.oms.orders) - rig.oms.refused_orders.total()
    assert "session dropped" in res.halted
    _assert_books_agree(rig, 600.0)


def test_a_client_connection_cut_mid_parent_is_reconciled_and_halts(rig: Rig) -> None:
    t = _later(1.3, lambda: rig.cl.drop_connection(forget_received=True))
    res = rig.run(600.0, 4.0, 0.5)
    t.join()
    rig.settle()
    assert "session dropped" in res.halted
    assert rig.oms.duplicate_reports >= 1  # everything came again, with PossDup, and was applied once
    _assert_books_agree(rig, 600.0)


def test_an_acceptor_that_never_comes_back_leaves_orders_unknown_and_reported(tmp_path: Path) -> None:
    r = Rig(tmp_path, recover_s=2.0)
    try:
        # a resting limit far from the market that the dead exchange never answers for
        t = _later(1.2, r.ex.kill)
        r.eng.router = NaiveRouter()
        res = r.run(400.0, 4.0, 1.0)
        t.join()
        assert "session dropped" in res.halted and r.cl.available is False
        assert all(r.oms.orders[c].state.value == "unknown" for c in res.unresolved)
        assert sum(f.quantity for f in res.fills) <= 400.0
        _assert_books_agree(r, 400.0)
    finally:
        r.cl.close()
        r.store.close()
