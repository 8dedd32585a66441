"""Calibration workflow: splits, metrics, datasets from files and the store, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from impactlab.calibration import (
    evaluate,
    load_source,
    metrics,
    order_outcomes,
    outcomes_from_store,
    walk_forward_splits,
)
from impactlab.cli.main import app
from impactlab.data.schemas import Fill, Side
from impactlab.data.store import Store
from impactlab.errors import CalibrationError
from impactlab.impact import SquareRootImpact, load_model
from impactlab.testing import simulate_parent_orders
from tests.conftest import lobster_path

runner = CliRunner()


def test_walk_forward_has_no_look_ahead() -> None:
    seen = []
    for train, test in walk_forward_splits(1000, n_splits=4, gap=10):
        assert train.max() + 10 < test.min() and np.all(np.diff(test) == 1)
        seen.append(test)
    allt = np.concatenate(seen)
    assert allt.min() == 500 and allt.max() == 999 and len(np.unique(allt)) == allt.size == 500


def test_metrics_by_hand() -> None:
    m = metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]), np.array([0, 0, 0.0]), np.array([2, 2, 2.0]))
    assert m["rmse_bps"] == pytest.approx(np.sqrt(4 / 3)) and m["mae_bps"] == pytest.approx(2 / 3)
    assert m["r2"] == pytest.approx(1 - 4 / 2) and m["bias_bps"] == pytest.approx(2 / 3)
    assert m["coverage"] == pytest.approx(2 / 3)


def test_out_of_sample_intervals_cover_nominally_on_well_specified_data() -> None:
    ev = evaluate(SquareRootImpact(), order_outcomes(simulate_parent_orders(4000, seed=8)))
    assert 0.87 <= ev["out_of_sample"]["coverage"] <= 0.93
    assert ev["out_of_sample"]["r2"] > 0.5 and abs(ev["out_of_sample"]["bias_bps"]) < 0.5


def test_order_outcomes_signs_and_in_flight() -> None:
    raw = simulate_parent_orders(100, seed=9, noise_bps=0.0)
    raw.loc[3, "avg_price"] = np.nan  # still executing
    o = order_outcomes(raw)
    assert len(o) == 99 and o.attrs["orders_in_flight"] == 1
    assert np.all(o["cost_bps"] > 0)  # no noise: buys and sells both pay
    assert np.allclose(o["temporary_bps"], o["cost_bps"] - o["permanent_bps"] / 2)


def test_outcomes_from_the_store_use_the_fills(tmp_path: Path) -> None:
    raw = simulate_parent_orders(20, seed=10, noise_bps=0.0)
    with Store(tmp_path / "s.duckdb") as st:
        st.write("parent_orders", _to_table(raw))
        r0 = raw.iloc[0]
        px = float(r0.arrival_mid) * 1.001
        st.add_records([Fill("f1", "c1", r0.order_id, "SIM", Side(int(r0.side)), float(r0.quantity), px, 1, "X")])
        o = outcomes_from_store(st)
    row = o.set_index("order_id").loc[r0.order_id]
    assert row["avg_price"] == pytest.approx(px) and len(o) == 20


def _to_table(df):  # type: ignore[no-untyped-def]
    import pyarrow as pa

    from impactlab.data.schemas import PARENT_ORDERS

    cols = {f.name: (df[f.name].tolist() if f.name in df else [None] * len(df)) for f in PARENT_ORDERS}
    return pa.table(cols, schema=PARENT_ORDERS.remove_metadata())


def test_calibrate_orders_file_json_and_save(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    simulate_parent_orders(1500, seed=11, model="power_law").to_csv(path, index=False)
    r = runner.invoke(
        app, ["calibrate", "power-law", "--orders", str(path), "--save", str(tmp_path / "m.json"), "--json"]
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    for key in ("model", "params", "stderr", "conf_int", "n", "metrics"):
        assert key in out
    assert out["n"] == 1500 and set(out["metrics"]) == {"in_sample", "out_of_sample"}
    for phase in out["metrics"].values():
        assert {"rmse_bps", "mae_bps", "r2"} <= set(phase)
    lo, hi = out["conf_int"]["gamma"]
    assert lo < out["params"]["gamma"] < hi and abs(out["params"]["gamma"] - 0.314) < 4 * out["stderr"]["gamma"]
    assert type(load_model(tmp_path / "m.json")).__name__ == "PowerLawImpact"


def test_calibrate_on_real_lobster_data(data: Path) -> None:
    msg = lobster_path(data, "AMZN", 5)
    r = runner.invoke(app, ["calibrate", "ofi", "--lobster", str(msg), "--bar", "60s", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["n"] == 390 and out["params"]["c_bps"] > 0 and out["metrics"]["in_sample"]["r2"] > 0.3
    assert any("no daily file for AMZN" in n for n in out["notes"])
    r = runner.invoke(app, ["calibrate", "compare", "--lobster", str(msg), "--bar", "60s", "--json"])
    assert r.exit_code == 0, r.output
    models = {m["model"] for m in json.loads(r.stdout)["models"]}
    assert models == {"kyle", "ofi", "sqrt", "sqrt-free", "propagator", "ow", "ow-book"}


def test_calibrate_ow_from_the_book_cli(data: Path, tmp_path: Path) -> None:
    msg = lobster_path(data, "AMZN", 5)
    r = runner.invoke(
        app, ["calibrate", "ow-book", "--lobster", str(msg), "--save", str(tmp_path / "ow.json"), "--json"]
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    p, ex = out["params"], out["extra"]
    assert p["lambda_bps"] + p["kappa_bps"] == pytest.approx(1 / ex["depth_shares_per_bps"])
    assert out["conf_int"]["rho_per_s"][0] > 0 and 1 < ex["half_life_s"] < 30
    assert out["metrics"]["out_of_sample"]["n"] > 1000 and out["metrics"]["out_of_sample"]["rmse_bps"] > 0
    if ex["fraction_at_bound"]:
        assert any("clipped" in n for n in out["notes"])
    m = load_model(tmp_path / "ow.json")
    assert m.result_.extra["method"] == "book"


def test_calibrate_errors(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    simulate_parent_orders(100, seed=12).to_csv(path, index=False)
    r = runner.invoke(app, ["calibrate", "ofi", "--orders", str(path)])
    assert r.exit_code == 2 and "is fitted on bars" in r.stderr
    r = runner.invoke(app, ["calibrate", "nope", "--orders", str(path)])
    assert r.exit_code == 2 and "unknown model" in r.stderr
    with pytest.raises(CalibrationError, match="exactly one"):
        load_source()
