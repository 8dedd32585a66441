"""`impactlab execute --venue fix` killed with SIGKILL at random points and resumed with `--resume`: the
parent is never over-executed and the order store holds exactly the executions the exchange made."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from impactlab.data import Store

CLI = [sys.executable, "-c", "from impactlab.cli.main import app; app()"]


def _start(store: Path, *extra: str) -> subprocess.Popen[str]:
    args = ["execute", "--venue", "fix", "--qty", "2000", "--horizon", "8s", "--step", "500ms", "--router", "naive",
            "--order-id", "K1", "--store", str(store), "--json", *extra]  # fmt: skip
    return subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip


def _executions(log: Path) -> dict[str, float]:
    if not log.exists():
        return {}
    return {f"SIMX:{r['exec_id']}": r["quantity"] for r in map(json.loads, log.read_text().splitlines())}


def test_killed_at_random_points_a_fix_run_resumes_the_same_parent_and_session(tmp_path: Path, data: Path) -> None:
    rng = np.random.default_rng(11)
    store = tmp_path / "s.duckdb"
    log = tmp_path / "s.duckdb.fix" / "exchange-executions.jsonl"
    kills = 0
    for i in range(3):
        proc = _start(store, *(["--resume"] if i else []))
        seen = len(_executions(log))
        deadline = time.monotonic() + 120
        while len(_executions(log)) == seen and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # until this run trades
        time.sleep(float(rng.uniform(0.0, 2.5)))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=30)
    assert kills >= 2
    proc = _start(store, "--resume")
    out, errs = proc.communicate(timeout=300)
    assert proc.returncode in (0, 1), errs[-3000:]  # done, or halted with a reason (never a crash)
    res = json.loads(out)
    assert res["order_id"] == "K1" and res["resumed"] is True
    with Store(store, read_only=True) as st:
        fills = {r["fill_id"]: r["quantity"] for r in st.read("fills").to_pylist()}
        parents = st.read("parent_orders").to_pylist()
        assert st.count("breaks") == 0
    assert [p["order_id"] for p in parents] == ["K1"]  # one parent, resumed, never a second one
    assert fills == pytest.approx(_executions(log))  # no fill lost, none invented
    assert sum(fills.values()) <= 2_000.0 + 1e-9
    if proc.returncode == 0:
        assert sum(fills.values()) == pytest.approx(2_000.0)
