"""A FIX client and a loopback exchange that can be killed, restarted and reset, with the execution engine
on top: the rig the fault tests and the fault benchmark inject their faults into.

Every check a risk officer makes is one call: :meth:`FixRig.books` compares the exchange's own record of
executions (``exchange-executions.jsonl``) with the order store's fills.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BookComparison", "FixRig", "free_port", "later"]

NS = 1_000_000_000


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def later(delay_s: float, action: Callable[[], Any]) -> threading.Thread:
    """Run ``action`` on a thread after ``delay_s`` seconds (the fault, while the engine works)."""

    def go() -> None:
        time.sleep(delay_s)
        action()

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


@dataclass(frozen=True)
class BookComparison:
    """The exchange's executions against the store's fills, in shares."""

    venue_shares: float
    store_shares: float
    lost: int  # executions at the exchange with no fill in the store
    phantom: int  # fills in the store the exchange never made
    breaks: int

    @property
    def agree(self) -> bool:
        return self.lost == 0 and self.phantom == 0 and abs(self.venue_shares - self.store_shares) < 1e-6


def executions(log: Path) -> dict[str, float]:
    """Exchange execution ids (as the store keys them, ``SIMX:<ExecID>``) and their quantities."""
    if not log.exists():
        return {}
    out = {}
    for line in log.read_text().splitlines():
        r = json.loads(line)
        out[f"SIMX:{r['exec_id']}"] = float(r["quantity"])
    return out


def _market(seed: int) -> Any:
    from impactlab.simulation import QueueReactiveMarket, QueueReactiveParams

    m = QueueReactiveMarket(QueueReactiveParams.published(), price=100.0, tick_size=0.01, initial_spread_ticks=1,
                            seed=seed)  # fmt: skip
    m.run_to(60 * NS)
    return m


class FixRig:
    """A FIX 4.4 session on loopback between an engine (guarded order manager, naive router, wall clock)
    and a simulated exchange, with its stores under ``root``.

    Parameters
    ----------
    root
        Folder for the order store, the FIX session stores and the exchange's execution log.
    recover_s
        The engine's wait for a venue to come back after a halt.
    ack_timeout_s
        The order manager's acknowledgement timeout.
    """

    def __init__(self, root: Path, *, recover_s: float = 8.0, ack_timeout_s: float = 2.0, seed: int = 3) -> None:
        from impactlab.data import Store
        from impactlab.execution import ExecutionEngine, NaiveRouter, RiskLimits, WallClock, guarded_order_manager
        from impactlab.execution.fix import FixConfig, FixExchange, FixVenue
        from impactlab.simulation import FeeModel

        self.cfg = FixConfig(port=free_port(), store_dir=root / "fix", reconnect_s=1)
        self.log = root / "fix" / "exchange-executions.jsonl"
        self.limits = RiskLimits(max_participation=1.0, max_order_notional=1e9)
        self._exchange = FixExchange
        self.ex = FixExchange(_market(seed), self.cfg, exec_log=self.log).start()
        self.cl = FixVenue("SIMX", self.cfg, collar=self.limits.collar_price, book=lambda: self.ex.book(),
                           fees=FeeModel(maker_bps=-0.2, taker_bps=0.3)).start()  # fmt: skip
        self.store = Store(root / "s.duckdb")
        self.clock = WallClock()
        self.oms = guarded_order_manager(self.store, {"SIMX": self.cl}, limits=self.limits, clock=self.clock,
                                         market_volume=1e9, ack_timeout_s=ack_timeout_s)  # fmt: skip
        self.eng = ExecutionEngine(self.oms, {"SIMX": self.cl}, NaiveRouter(), clock=self.clock, post_s=0.2,
                                   recover_s=recover_s)  # fmt: skip
        self.restarted_ns: int | None = None

    def restart_exchange(self, seed: int = 4) -> None:
        """A new exchange process on the same session store (its book is empty: what was working died)."""
        self.ex = self._exchange(_market(seed), self.cfg, exec_log=self.log).start()
        self.restarted_ns = time.time_ns()

    def outage(self, seconds: float) -> None:
        """Kill the exchange (no logout), wait, start a new one."""
        self.ex.kill()
        time.sleep(seconds)
        self.restart_exchange()

    def run(self, qty: float, horizon_s: float, step_s: float, order_id: str = "P1") -> Any:
        """Work a TWAP buy of ``qty`` over ``horizon_s`` (the engine's result)."""
        from impactlab.data import ParentOrder, Side
        from impactlab.execution import Slicer
        from impactlab.schedules import twap

        now = self.clock()
        parent = ParentOrder(order_id, "X", Side.BUY, qty, now, now + int(horizon_s * NS))
        return self.eng.run(parent, Slicer(twap(qty, horizon_s, step_s=step_s, side=1), parent))

    def settle(self, wait_s: float = 0.5) -> None:
        """Let the last reports in (a resend after the halt) before the books are compared."""
        time.sleep(wait_s)
        self.oms.poll()

    def books(self) -> BookComparison:
        venue = executions(self.log)
        store = {r["fill_id"]: float(r["quantity"]) for r in self.store.read("fills").to_pylist()}
        return BookComparison(sum(venue.values()), sum(store.values()), len(set(venue) - set(store)),
                              len(set(store) - set(venue)), self.store.count("breaks"))  # fmt: skip

    def close(self) -> None:
        self.cl.close()
        self.ex.stop()
        self.store.close()


def execute_cli(store: Path, *extra: str, qty: float = 2_000.0, horizon: str = "8s", order_id: str = "K1") -> Any:
    """Start ``impactlab execute --venue fix`` on ``store`` as a child process (a ``subprocess.Popen``)."""
    import os
    import subprocess
    import sys

    args = ["execute", "--venue", "fix", "--qty", f"{qty:g}", "--horizon", horizon, "--step", "500ms", "--router",
            "naive", "--order-id", order_id, "--store", str(store), "--json", *extra]  # fmt: skip
    cmd = [sys.executable, "-c", "from impactlab.cli.main import app; app()", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip


def kill_and_resume(store: Path, rng: Any, *, runs: int = 3, max_wait_s: float = 2.5, **kw: Any) -> tuple[int, Any]:
    """Run ``execute --venue fix`` ``runs`` times (``--resume`` after the first), each killed with SIGKILL a
    random time (up to ``max_wait_s``) after it starts trading, then once more to the end.  Returns the
    number of kills and the last run's (returncode, stdout, stderr, seconds)."""
    import signal

    log = store.with_name(store.name + ".fix") / "exchange-executions.jsonl"
    kills = 0
    for i in range(runs):
        proc = execute_cli(store, *(["--resume"] if i else []), **kw)
        seen = len(executions(log))
        deadline = time.monotonic() + 120
        while len(executions(log)) == seen and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # until this run trades
        time.sleep(float(rng.uniform(0.0, max_wait_s)))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=30)
    t0 = time.perf_counter()
    proc = execute_cli(store, "--resume", **kw)
    out, err = proc.communicate(timeout=300)
    return kills, (proc.returncode, out, err, time.perf_counter() - t0)
