"""The universe dataset and its calibration: real files to partitions, the same fits as the single-day
runner, local processes and a Dask LocalCluster equal to a serial run, failures retried and recorded."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from impactlab.calibration.partitions import build_universe
from impactlab.calibration.runner import calibrate, load_source
from impactlab.calibration.universe import FitTask, calibrate_universe, fit_instrument_day, universe_fits
from impactlab.data import Store
from impactlab.data.universe import PartitionKey, list_partitions, read_instrument_day
from impactlab.errors import CalibrationError, DataValidationError
from impactlab.simulation import _kernels as k
from impactlab.simulation.universe import SyntheticUniverse, synthetic_instrument_day, write_synthetic_universe
from impactlab.testing import FlakyFit
from tests.conftest import lobster_path

MODELS = ("sqrt", "ofi", "propagator")


@pytest.fixture(scope="module")
def real_universe(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Path:
    root = tmp_path_factory.mktemp("universe")
    build_universe(data, root)
    return root


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    write_synthetic_universe(SyntheticUniverse(instruments=4, days=2, session_s=5_400.0, seed=7), root)
    return root


def test_real_files_become_one_partition_per_instrument_day(real_universe: Path) -> None:
    keys = [str(k) for k in list_partitions(real_universe)]
    assert "GOOG/2012-06-21" in keys and "AMZN/2012-06-21" in keys
    # the spot capture runs across midnight: two dates; futures carry their own symbol
    assert {"BTCUSDT/2024-08-08", "BTCUSDT/2024-08-09", "ETHUSDT-PERP/2024-07-19"} <= set(keys)
    goog = read_instrument_day(real_universe, PartitionKey("GOOG", dt.date(2012, 6, 21)))
    assert goog.n_states == 147_916  # the deepest file: every message of the day
    assert goog.adv is not None and goog.daily_vol is not None  # GOOG has a daily file
    amzn = read_instrument_day(real_universe, PartitionKey("AMZN", dt.date(2012, 6, 21)))
    assert amzn.adv is None  # no daily file: the fit says so in its notes
    spot = read_instrument_day(real_universe, PartitionKey("BTCUSDT", dt.date(2024, 8, 9)))
    assert (spot.trades["pre_state"] < spot.n_states).all() and spot.trades["pre_state"].min() >= -1


def test_partition_fit_equals_the_single_day_runner(real_universe: Path, data: Path) -> None:
    """A GOOG partition fitted by a worker gives the numbers ``impactlab calibrate`` gives on its file."""
    res = fit_instrument_day(FitTask(str(real_universe), "GOOG", "2012-06-21", MODELS))
    src = load_source(lobster=(lobster_path(data, "GOOG", 10), None))
    for m in MODELS:
        want = calibrate(m, src)
        got = res["fits"][m]
        assert got["n"] == want["n"]
        for name, v in want["params"].items():
            assert got["params"][name] == pytest.approx(v, rel=1e-12, abs=1e-15), (m, name)
        assert got["metrics"]["out_of_sample"]["rmse_bps"] == pytest.approx(
            want["metrics"]["out_of_sample"]["rmse_bps"]
        )


def test_a_broken_partition_names_file_row_field_and_value(real_universe: Path, tmp_path: Path) -> None:
    root = tmp_path / "u"
    shutil.copytree(real_universe, root)
    key = PartitionKey("AAPL", dt.date(2012, 6, 21))
    p = key.path(root, "book")
    t = pq.read_table(p)
    sizes = t.column("bid_size").to_numpy().copy()
    sizes[41] = -5.0
    pq.write_table(t.set_column(t.schema.get_field_index("bid_size"), "bid_size", [sizes])
                   .replace_schema_metadata(t.schema.metadata), p)  # fmt: skip
    with pytest.raises(DataValidationError) as e:
        read_instrument_day(root, key)
    assert e.value.path == str(p) and e.value.line == 42 and e.value.field == "bid_size" and e.value.value == -5.0


def test_l1_kernel_rebuilds_the_simulated_book() -> None:
    """The compiled kernel equals its Python twin, and the ladder it ends with is the simulator's own."""
    from impactlab.simulation import QueueReactiveMarket, QueueReactiveParams

    m = QueueReactiveMarket(QueueReactiveParams.published(), price=40.0, tick_size=0.01, record=True, seed=5)
    q0, base = m._q.copy(), int(m._st[k.ST_BASE])
    m.run_to(600 * 1_000_000_000)
    r = m.records()

    def ladder(px: np.ndarray) -> np.ndarray:
        return np.where(np.isfinite(px), np.rint(np.nan_to_num(px) / 0.01) - base, -1).astype(np.int64)

    args = (r["side"].to_numpy(np.int64), ladder(r["price"].to_numpy()), r["size"].to_numpy(float),
            r["type"].to_numpy(np.int64), ladder(r["best_bid"].to_numpy()),
            ladder(r["best_ask"].to_numpy()))  # fmt: skip
    outs = []
    for fn in (k.l1_from_events, k.l1_from_events_py):
        q = q0.copy()
        b, a = np.zeros(len(r)), np.zeros(len(r))
        fn(q, *args, b, a)
        outs.append((q, b, a))
    for x, y in zip(outs[0], outs[1], strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_allclose(outs[0][0], m._q, atol=1e-6)
    view = m.book(1)
    assert outs[0][1][-1] == pytest.approx(view.bid_size[0]) and outs[0][2][-1] == pytest.approx(view.ask_size[0])


def test_synthetic_days_are_seeded_and_differ_by_instrument() -> None:
    u = SyntheticUniverse(instruments=3, days=2, session_s=600.0, seed=11)
    a, b = synthetic_instrument_day(u, 1, 1), synthetic_instrument_day(u, 1, 1)
    np.testing.assert_array_equal(a.book["bid_size"], b.book["bid_size"])
    c = synthetic_instrument_day(u, 2, 1)
    assert a.extra["price"] != c.extra["price"] and a.key.date == dt.date(2024, 1, 3)
    assert a.trades["pre_state"].min() >= 0 and set(np.unique(a.trades["sign"])) <= {-1, 1}


def _serial(root: Path) -> dict[tuple[str, str, str], str]:
    out = {}
    for key in list_partitions(root):
        res = fit_instrument_day(FitTask(str(root), key.symbol, key.date.isoformat(), MODELS))
        for m, r in res["fits"].items():
            out[(key.symbol, key.date.isoformat(), m)] = json.dumps(r["params"]) if "error" not in r else "error"
    return out


def _recorded(store: Store, run_id: str) -> dict[tuple[str, str, str], str]:
    df = universe_fits(store, run_id)
    return {(r.symbol, r.date, r.model): (r.params_json if r.status == "ok" else "error") for r in df.itertuples()}


def test_local_processes_and_a_dask_cluster_equal_a_serial_run(synth: Path) -> None:
    from distributed import LocalCluster

    want = _serial(synth)
    with Store(":memory:") as st:
        local = calibrate_universe(synth, MODELS, st, workers=2)
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            dask = calibrate_universe(synth, MODELS, st, scheduler=cluster.scheduler_address)
        assert local.ok == dask.ok == 8 and not local.failed and not dask.failed
        assert dask.executor.startswith("dask tcp://") and dask.workers == 2
        assert _recorded(st, local.run_id) == want == _recorded(st, dask.run_id)
        assert sum(v != "error" for v in want.values()) >= 16  # sqrt and ofi fit on every day
        runs = {r["run_id"]: r for r in st.read("universe_runs").to_pylist()}
        assert runs[dask.run_id]["partitions_ok"] == 8 and runs[dask.run_id]["finished_ns"] is not None


def test_a_failing_partition_is_retried_then_recorded_and_the_run_resumes(synth: Path, tmp_path: Path) -> None:
    flaky = FlakyFit(str(tmp_path / "a"), {"SYN0001/2024-01-02": 1, "SYN0002/2024-01-03": 99})
    with Store(tmp_path / "s.duckdb") as st:
        run = calibrate_universe(synth, MODELS, st, workers=2, retries=2, fit=flaky)
        assert run.ok == 7 and run.retried["SYN0001/2024-01-02"] == 1
        assert list(run.failed) == ["SYN0002/2024-01-03"] and "injected fault" in run.failed["SYN0002/2024-01-03"]
        assert flaky.attempts("SYN0002/2024-01-03") == 3 and flaky.attempts("SYN0000/2024-01-02") == 1
        df = universe_fits(st, run.run_id)
        bad = df[df["status"] == "failed"]
        assert set(bad["date"]) == {"2024-01-03"} and set(bad["symbol"]) == {"SYN0002"} and (bad["attempts"] == 3).all()
        # finish the run once the fault is gone: only the failed partition is fitted again
        again = calibrate_universe(synth, MODELS, st, workers=1, resume=run.run_id)
        assert again.run_id == run.run_id and again.skipped == 7 and again.ok == 1
    with Store(tmp_path / "s.duckdb") as st:  # everything survived in the file
        assert st.read("universe_runs").to_pylist()[0]["partitions_ok"] == 8


def test_a_killed_worker_process_costs_only_its_own_partition(synth: Path, tmp_path: Path) -> None:
    flaky = FlakyFit(str(tmp_path / "k"), {"SYN0003/2024-01-02": 1}, kill=True)
    with Store(":memory:") as st:
        run = calibrate_universe(synth, MODELS, st, workers=2, retries=1, fit=flaky)
        assert run.ok == 8 and not run.failed
        assert flaky.attempts("SYN0003/2024-01-02") == 2
        assert _recorded(st, run.run_id) == _serial(synth)


def test_bad_arguments_are_refused(synth: Path) -> None:
    with Store(":memory:") as st:
        with pytest.raises(CalibrationError, match="universe models"):
            calibrate_universe(synth, ["ow"], st)
        with pytest.raises(CalibrationError, match="no universe run"):
            calibrate_universe(synth, MODELS, st, resume="U9999")
        with pytest.raises(CalibrationError, match="no instrument-days"):
            calibrate_universe(synth, MODELS, st, symbols=["NOPE"])


def test_cli_synthesises_and_calibrates_a_universe(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from impactlab.cli.main import app

    runner = CliRunner()
    root, store = tmp_path / "syn", tmp_path / "s.duckdb"
    r = runner.invoke(app, ["data", "universe", "synth", "--out", str(root), "--instruments", "3", "--session", "1h"])
    assert r.exit_code == 0, r.output
    args = ["calibrate", "universe", "--data", str(root), "--models", "sqrt,ofi", "--store", str(store)]
    r = runner.invoke(app, [*args, "--workers", "1", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["ok"] == 3 and res["models"]["ofi"]["fitted"] == 3 and res["models"]["sqrt"]["fitted"] == 3
    with Store(store) as st:
        assert st.count("universe_fits") == 6
    r = runner.invoke(app, ["calibrate", "universe", "--data", str(root), "--models", "ow", "--store", str(store)])
    assert r.exit_code == 2 and "universe models" in r.output


def test_workers_end_when_the_process_that_started_them_is_killed(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "workers.txt"
    code = (
        "import time\n"
        "from pathlib import Path\n"
        "from impactlab.calibration.universe import _Pool\n"
        "p = _Pool(None, 2)\n"
        "[f.result() for f in [p.pool.submit(time.sleep, 0) for _ in range(4)]]\n"
        f"Path({str(out)!r}).write_text(' '.join(str(k) for k in p.pool._processes))\n"
        "time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (out.exists() and out.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = [int(x) for x in out.read_text().split()]
    assert len(workers) == 2
    proc.send_signal(signal.SIGKILL)  # the red team's kill -9 of `calibrate universe`
    proc.wait(30)

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        st = Path(f"/proc/{pid}/stat")
        return st.exists() and st.read_text().split()[2] != "Z"

    deadline = time.monotonic() + 10
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(w) for w in workers)
