"""`impactlab execute --venue fix` killed with SIGKILL at random points and resumed with `--resume`: the
parent is never over-executed and the order store holds exactly the executions the exchange made."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from impactlab.data import Store
from impactlab.testing.fix_rig import executions, kill_and_resume


def test_killed_at_random_points_a_fix_run_resumes_the_same_parent_and_session(tmp_path: Path, data: Path) -> None:
    store = tmp_path / "s.duckdb"
    kills, (rc, out, err, _) = kill_and_resume(store, np.random.default_rng(11), runs=3)
    assert kills >= 2
    assert rc in (0, 1), err[-3000:]  # done, or halted with a reason (never a crash)
    res = json.loads(out)
    assert res["order_id"] == "K1" and res["resumed"] is True
    with Store(store, read_only=True) as st:
        fills = {r["fill_id"]: r["quantity"] for r in st.read("fills").to_pylist()}
        parents = st.read("parent_orders").to_pylist()
        assert st.count("breaks") == 0
    assert [p["order_id"] for p in parents] == ["K1"]  # one parent, resumed, never a second one
    assert fills == pytest.approx(executions(tmp_path / "s.duckdb.fix" / "exchange-executions.jsonl"))
    assert sum(fills.values()) <= 2_000.0 + 1e-9
    if rc == 0:
        assert sum(fills.values()) == pytest.approx(2_000.0)
