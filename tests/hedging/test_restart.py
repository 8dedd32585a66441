"""Killing the hedging engine at random points and restarting it loses and duplicates nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from impactlab.data import Store

SCRIPT = Path(__file__).with_name("killable_run.py")


def _run(store: Path, kill_at: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), str(store), str(kill_at)], capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip


def test_killed_at_random_points_the_engine_resumes_without_losing_or_duplicating(tmp_path: Path, data: Path) -> None:
    rng = np.random.default_rng(7)
    store = tmp_path / "hedge.duckdb"
    kills = 0
    for _ in range(12):
        proc = _run(store, int(rng.integers(3, 60)))
        if proc.returncode == 0:
            break
        assert proc.returncode == -9, proc.stderr[-2000:]  # killed by the test, not by a crash
        kills += 1
    else:
        proc = _run(store, 0)
    assert proc.returncode == 0 and "DONE" in proc.stdout, proc.stderr[-2000:]
    assert kills >= 3  # the run really was interrupted, more than once
    # the same scenario without interruption, for comparison
    clean = tmp_path / "clean.duckdb"
    assert _run(clean, 0).returncode == 0

    with Store(store, read_only=True) as s:
        hedges = s.read("hedges").to_pylist()
        events = s.read("hedge_events").to_pylist()
        kids = s.read("child_orders").to_pylist()
        order_events = s.read("order_events").to_pylist()
        fills = s.read("fills").to_pylist()
    assert hedges, "the scenario hedged nothing"
    done = {e["hedge_id"]: e for e in events if e["kind"] == "done"}
    # no hedge lost: every journalled hedge finished, and what it filled is what the store holds
    assert set(done) == {h["hedge_id"] for h in hedges}
    for h in hedges:
        got = sum(f["quantity"] for f in fills if f["parent_order_id"] == h["parent_order_id"])
        assert got == pytest.approx(done[h["hedge_id"]]["filled"]) and got <= h["quantity"] + 1e-9
        assert got == pytest.approx(h["quantity"]), f"hedge {h['hedge_id']} filled {got} of {h['quantity']}"
    # no child order twice: its ids number 0..n-1 per parent with no gap or reuse, each opened once
    by_parent: dict[str, list[int]] = {}
    for k in kids:
        by_parent.setdefault(k["parent_order_id"], []).append(int(k["client_order_id"].rsplit("-", 1)[1]))
    for nums in by_parent.values():
        assert sorted(nums) == list(range(len(nums)))
    firsts = [e for e in order_events if e["seq"] == 0]
    assert len(firsts) == len(kids) == len({e["client_order_id"] for e in firsts})
    # no fill twice, and none larger than its order
    assert len({f["fill_id"] for f in fills}) == len(fills)
    qty = {k["client_order_id"]: k["quantity"] for k in kids}
    per_child: dict[str, float] = {}
    for f in fills:
        per_child[f["client_order_id"]] = per_child.get(f["client_order_id"], 0.0) + f["quantity"]
    assert all(v <= qty[c] + 1e-9 for c, v in per_child.items())
    # no hedge decided twice: one per triggering message; about as many as the clean run decided
    assert len({h["ts_ns"] for h in hedges}) == len(hedges)
    with Store(clean, read_only=True) as c:
        n_clean = c.count("hedges")
    assert abs(len(hedges) - n_clean) <= max(2, n_clean // 3)
