"""The store's one interface on both backends (the embedded DuckDB file and the shared PostgreSQL
database), and what only the shared one can do: writers and readers in several processes at once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from impactlab.data import ChildOrder, Fill, OrderType, ParentOrder, Side, Store
from impactlab.data.store import PostgresStore

T0 = 1_700_000_000 * 10**9


@pytest.fixture(params=["duckdb", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    target = tmp_path / "s.duckdb" if request.param == "duckdb" else request.getfixturevalue("pg_url")
    s = Store(target)
    yield s
    s.close()


def test_one_interface_on_both_backends(store: Store) -> None:
    parent = ParentOrder("P1", "GOOG", Side.BUY, 1_000.0, T0, T0 + 10**9)
    kid = ChildOrder("P1-1", "P1", "GOOG", Side.BUY, 100.0, OrderType.LIMIT, "X", T0, 580.5)
    fill = Fill("X:e1", "P1-1", "P1", "GOOG", Side.BUY, 40.0, 580.5, T0 + 5, "X", "maker", -0.01)
    assert store.add_records([parent, kid, fill]) == 3
    assert store.add_records([parent, kid, fill]) == 0  # a retry never duplicates
    assert store.read("fills").to_pylist()[0] == {
        "fill_id": "X:e1", "client_order_id": "P1-1", "parent_order_id": "P1", "symbol": "GOOG", "side": 1,
        "quantity": 40.0, "price": 580.5, "ts_ns": T0 + 5, "venue": "X", "liquidity": "maker", "fee": -0.01,
    }  # fmt: skip
    assert store.record_outcome("P1", arrival_mid=580.0, avg_price=580.5)
    assert not store.record_outcome("nope", arrival_mid=1.0)
    p = store.read("parent_orders", where="order_id = ?", params=["P1"]).to_pylist()[0]
    assert p["arrival_mid"] == 580.0 and p["end_mid"] is None and p["side"] == 1
    for i in range(5):
        store.add_records([Fill(f"X:e{i + 2}", "P1-1", "P1", "GOOG", Side.BUY, 1.0, 580.0 + i, T0 + 10 + i, "X")])
    last = store.read("fills", where="parent_order_id = ? AND price > ?", params=["P1", 580.0], order_by="ts_ns DESC",
                      limit=2).to_pylist()  # fmt: skip
    assert [r["price"] for r in last] == [584.0, 583.0]
    store.put_state("k", {"offset": 3}, ts_ns=T0)
    store.put_state("k", {"offset": 4}, ts_ns=T0 + 1)  # replaced, not added
    assert store.get_state("k") == {"offset": 4} and store.get_state("none", 7) == 7
    assert store.count("engine_state") == 1 and store.count("fills") == 6
    assert store.update("parent_orders", "P1", post_mid=581.0)
    assert store.read("model_versions").num_rows == 0
    assert set(store.read("breaks").schema.names) >= {"break_id", "reason"}


def test_a_load_report_and_its_quarantine_are_one_transaction(store: Store) -> None:
    bad = pa.table({"load_id": ["L1"], "source": ["x"]})  # does not fit the schema
    from impactlab.errors import DataValidationError

    with pytest.raises(DataValidationError):
        store.write("load_reports", bad)
    assert store.count("load_reports") == 0


WRITER = """
import sys
from impactlab.data import Fill, Side, Store
s = Store(sys.argv[1])
for i in range(int(sys.argv[2])):
    s.add_records([Fill(f"W:{i}", "c", "P", "GOOG", Side.BUY, 1.0, 100.0, i, "W")])
print("done", flush=True)
"""


def test_the_shared_store_is_written_by_two_processes_and_read_by_a_third_at_once(pg_url: str) -> None:
    Store(pg_url).close()  # the tables exist before the writers start
    writers = [subprocess.Popen([sys.executable, "-c", WRITER.replace('f"W:{i}"', f'f"W{k}:{{i}}"'), pg_url, "150"],
                                stdout=subprocess.PIPE, text=True) for k in range(2)]  # fmt: skip
    seen = []
    with Store(pg_url, read_only=True) as reader:
        while any(w.poll() is None for w in writers):
            seen.append(reader.count("fills"))  # reads while both write: never "a lock is held"
        outs = [w.communicate(timeout=60)[0] for w in writers]
        assert all(o.strip() == "done" for o in outs) and all(w.returncode == 0 for w in writers)
        assert reader.count("fills") == 300
    assert seen == sorted(seen) and len(seen) > 1


def test_a_wrong_postgres_url_is_a_one_line_error_without_the_password() -> None:
    from impactlab.errors import DataValidationError

    with pytest.raises(DataValidationError) as e:
        Store("postgresql://u:secret@127.0.0.1:1/none")
    assert "secret" not in str(e.value) and "127.0.0.1:1/none" in str(e.value)
    assert isinstance(Store.__new__(Store, "postgresql://x/y"), PostgresStore)


def test_execute_tca_and_the_kill_switch_on_the_shared_store(pg_url: str, data: Path) -> None:
    from typer.testing import CliRunner

    from impactlab.cli.main import app

    run = CliRunner().invoke
    args = ["execute", "--qty", "1000", "--horizon", "5m", "--step", "1m", "--store", pg_url, "--json"]
    r = run(app, [*args, "--order-id", "PG1"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["orders"][0]["filled"] == pytest.approx(1_000)
    t = run(app, ["tca", "--store", pg_url, "--json"])
    assert t.exit_code == 0 and json.loads(t.stdout)["orders"][0]["order_id"] == "PG1"
    assert run(app, ["kill-switch", "trip", "--reason", "drill", "--store", pg_url]).exit_code == 0
    halted = run(app, [*args, "--order-id", "PG2"])
    assert halted.exit_code == 1 and "kill switch: drill" in halted.output
    st = run(app, ["kill-switch", "status", "--store", pg_url, "--json"])
    assert st.exit_code == 1 and json.loads(st.stdout)["tripped"] is True


@pytest.mark.parametrize("backend", ["duckdb", "postgresql"])
def test_a_store_of_an_older_release_gains_the_new_columns_and_keeps_its_rows(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Tables made before issue 24 lack the forecast and version columns: opening the store adds them (null for
    the old rows) and the new code reads and writes it."""
    import pyarrow as pa

    from impactlab.calibration.costmodel import ModelVersions
    from impactlab.data.schemas import COST_PREDICTIONS, MODEL_VERSIONS

    target = tmp_path / "old.duckdb" if backend == "duckdb" else request.getfixturevalue("pg_url")
    old_cols = {"cost_predictions": COST_PREDICTIONS.names[:6], "model_versions": MODEL_VERSIONS.names[:5]}
    with Store(target) as st:  # make the tables as the older release had them
        for name, cols in old_cols.items():
            st._run(f"DROP TABLE IF EXISTS {name}")
            schema = pa.schema([f for f in (COST_PREDICTIONS if name == "cost_predictions" else MODEL_VERSIONS)
                                if f.name in cols])  # fmt: skip
            from impactlab.data.store import _ddl

            st._run(_ddl(name, schema, cols[0], st._types))
        st._run("INSERT INTO model_versions VALUES ('v1', 1, '{}', 'initial', 0)")
        st._run("INSERT INTO cost_predictions VALUES ('P1:hedge-model', 'P1', 'hedge-model', 2.0, 3.0, 5)")
    with Store(target) as st:
        assert set(st.read("cost_predictions").column_names) == set(COST_PREDICTIONS.names)
        old = st.read("cost_predictions").to_pylist()
        assert old[0]["realised_bps"] == 3.0 and old[0]["lower_bps"] is None
        v = ModelVersions(st)
        assert v.rows() == [] and v.live_row("GOOG") is None  # the old engine's rows have no symbol: left out
        from impactlab.testing.costs import known_cost_model

        m = v.resume(known_cost_model())
        assert m.version == "GOOG-v1" and v.live_row("GOOG")["version"] == "GOOG-v1"  # type: ignore[index]
        assert st.count("model_versions") == 2
