"""The acceptor outage of bench_faults on the engine before issue 26: run by bench_faults with PYTHONPATH set to a
git worktree of f80f45d (its own API: no open_parent, no exec log; filled is read from its store)."""

import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from impactlab.data import ParentOrder, Side, Store
from impactlab.execution import ExecutionEngine, NaiveRouter, RiskLimits, Slicer, WallClock, guarded_order_manager
from impactlab.execution.fix import FixConfig, FixExchange, FixVenue
from impactlab.schedules import twap
from impactlab.simulation import FeeModel, QueueReactiveMarket, QueueReactiveParams


def market(seed):
    m = QueueReactiveMarket(
        QueueReactiveParams.published(), price=100.0, tick_size=0.01, initial_spread_ticks=1, seed=seed
    )
    m.run_to(60 * 10**9)
    return m


with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
root = Path(tempfile.mkdtemp())
cfg = FixConfig(port=port, store_dir=root / "fix", reconnect_s=1)
lim = RiskLimits(max_participation=1.0, max_order_notional=1e9)
holder = {"ex": FixExchange(market(3), cfg).start()}
cl = FixVenue(
    "SIMX", cfg, collar=lim.collar_price, book=lambda: holder["ex"].book(), fees=FeeModel(maker_bps=-0.2, taker_bps=0.3)
).start()
store = Store(root / "s.duckdb")
clock = WallClock()
oms = guarded_order_manager(store, {"SIMX": cl}, limits=lim, clock=clock, market_volume=1e9)
eng = ExecutionEngine(oms, {"SIMX": cl}, NaiveRouter(), clock=clock, post_s=0.2)
outage = float(sys.argv[1])


def fault():
    time.sleep(1.6)
    holder["ex"].stop()
    time.sleep(outage)
    holder["ex"] = FixExchange(market(4), cfg).start()


threading.Thread(target=fault, daemon=True).start()
now = clock()
parent = ParentOrder("P1", "X", Side.BUY, 1000.0, now, now + 6 * 10**9)
res = eng.run(parent, Slicer(twap(1000.0, 6.0, step_s=0.5, side=1), parent))
time.sleep(1.0)
oms.poll()
filled = sum(store.read("fills").column("quantity").to_pylist())
print(f"RESULT {filled:.0f}", flush=True)
cl.close()
holder["ex"].stop()
