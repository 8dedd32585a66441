"""DuckDB store and Parquet cache round trips."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from impactlab.data.schemas import ChildOrder, Fill, OrderType, ParentOrder, Side
from impactlab.data.store import Store, read_parquet, write_parquet
from impactlab.errors import DataValidationError
from impactlab.testing import write_synthetic_lobster


def _records() -> list[ParentOrder | ChildOrder | Fill]:
    return [
        ParentOrder("p1", "GOOG", Side.BUY, 1000.0, 0, 10),
        ChildOrder("c1", "p1", "GOOG", Side.BUY, 100.0, OrderType.LIMIT, "XNAS", 5, limit_price=580.0),
        ChildOrder("c2", "p1", "GOOG", Side.BUY, 100.0, OrderType.MARKET, "XNAS", 6),
        Fill("f1", "c1", "p1", "GOOG", Side.BUY, 60.0, 580.0, 7, "XNAS", "maker", -0.1),
        Fill("f2", "c1", "p1", "GOOG", Side.BUY, 40.0, 580.0, 8, "XNAS"),
    ]


def test_records_round_trip_and_are_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    with Store(db) as st:
        assert st.add_records(_records()) == 5
        assert st.add_records(_records()) == 0  # a retry writes nothing twice
    with Store(db, read_only=True) as st:  # survives reopening
        fills = st.read("fills").to_pylist()
        assert [f["fill_id"] for f in fills] == ["f1", "f2"] and fills[0]["fee"] == -0.1
        child = st.read("child_orders", where="client_order_id = ?", params=["c2"]).to_pylist()
        assert child[0]["limit_price"] is None and child[0]["order_type"] == "market"
        assert st.read("parent_orders").to_pylist()[0]["side"] == 1


def test_load_report_and_quarantine(tmp_path: Path) -> None:
    from impactlab.data.lobster import load_lobster

    syn = write_synthetic_lobster(tmp_path, seed=2, n_events=300, levels=2)
    lines = syn.message_path.read_text().splitlines()
    parts = lines[4].split(",")
    parts[3] = "0"
    lines[4] = ",".join(parts)
    syn.message_path.write_text("\n".join(lines) + "\n")
    day = load_lobster(syn.message_path)
    with Store(":memory:") as st:
        st.record_load(day.report, day.quarantine)
        q = st.read("quarantine").to_pylist()
        assert [(r["line"], r["reason"], r["value"]) for r in q] == [(5, "non_positive_size", "0")]
        rep = st.read("load_reports").to_pylist()[0]
        assert rep["rows_read"] == len(lines) and rep["rows_quarantined"] == 1 and rep["load_id"] == q[0]["load_id"]


def test_write_rejects_a_table_of_the_wrong_shape() -> None:
    with Store(":memory:") as st, pytest.raises(DataValidationError, match="fills schema"):
        st.write("fills", pa.table({"fill_id": ["x"]}))
    with Store(":memory:") as st, pytest.raises(ValueError, match="must be one of"):
        st.read("nope")


def test_parquet_cache_round_trip(tmp_path: Path) -> None:
    t = pa.table({"ts_ns": [1, 2], "mid": [1.5, 2.5]})
    p = write_parquet(t, tmp_path / "cache/x.parquet", metadata={"source": "unit"})
    back = read_parquet(p)
    assert back.select(["ts_ns", "mid"]).equals(t) and back.schema.metadata[b"source"] == b"unit"
    assert not list((tmp_path / "cache").glob("*.tmp"))


def test_domain_records_validate() -> None:
    with pytest.raises(DataValidationError, match="'quantity' must be finite and > 0, got -1"):
        ParentOrder("p", "X", Side.BUY, -1, 0, 1)
    with pytest.raises(DataValidationError, match="'end_ns'"):
        ParentOrder("p", "X", Side.BUY, 1, 5, 1)
    with pytest.raises(DataValidationError, match="limit_price"):
        ChildOrder("c", "p", "X", Side.SELL, 1, OrderType.LIMIT, "V", 0)
    with pytest.raises(DataValidationError, match="side"):
        Fill("f", "c", "p", "X", 0, 1, 1, 0, "V")  # type: ignore[arg-type]


def test_a_store_held_by_a_writer_is_a_one_line_error_naming_the_process(tmp_path: Path) -> None:
    import subprocess
    import sys

    from impactlab.errors import DataValidationError

    path = tmp_path / "held.duckdb"
    Store(path).close()
    code = f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('ready', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(DataValidationError) as e:
            Store(path, read_only=True)
        msg = str(e.value)
        assert f"process {holder.pid}" in msg and "\n" not in msg.replace(" \n", "") and "held.duckdb" in msg
    finally:
        holder.kill()
        holder.communicate()
