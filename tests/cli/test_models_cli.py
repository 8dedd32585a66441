"""`impactlab models`: versions, approval of a held one, accuracy on the store's own fills, the catalogue."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
from typer.testing import CliRunner

from impactlab.calibration.costmodel import ModelVersions, accuracy
from impactlab.cli.main import app
from impactlab.data import Store
from impactlab.data.schemas import COST_PREDICTIONS
from impactlab.testing.costs import known_cost_model


def _store(path: Path) -> None:
    m = known_cost_model()
    with Store(path) as st:
        v = ModelVersions(st, clock=lambda: 1, approve_above=0.5)
        live = v.resume(m)
        big = live.with_refit(live.refit([
            {"parts_json": json.dumps({"base": {"spread": 1.3, "transient": 0.5, "sqrt": 1.0}, "timing_sd_bps": 0.1}),
             "realised_bps": 12.0 + i % 3} for i in range(20)
        ]), reason="test")  # fmt: skip
        assert v.propose(live, big).status == "pending"
        rows = [{"prediction_id": f"P{i}:GOOG-v1", "parent_order_id": f"P{i}", "model": "GOOG-v1",
                 "predicted_bps": 2.0, "realised_bps": r, "ts_ns": i, "symbol": "GOOG", "lower_bps": 0.0,
                 "upper_bps": 5.0, "predicted_temporary_bps": 1.5, "realised_temporary_bps": None, "parts_json": None}
                for i, r in enumerate([1.0, 2.0, 4.0, 8.0, 6.0])]  # fmt: skip
        st.write("cost_predictions", pa.Table.from_pylist(rows, schema=COST_PREDICTIONS.remove_metadata()))


def test_list_approve_and_accuracy(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    _store(path)
    r = CliRunner().invoke(app, ["models", "list", "--store", str(path), "--json"])
    assert r.exit_code == 0, r.output
    status = {v["version"]: v["status"] for v in json.loads(r.stdout)["versions"]}
    assert status == {"GOOG-v1": "live", "GOOG-v2": "pending"}
    r = CliRunner().invoke(app, ["models", "approve", "GOOG-v2", "--store", str(path), "--by", "desk head", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["status"] == "live" and "approved by desk head" in json.loads(r.stdout)["reason"]
    with Store(path, read_only=True) as st:
        assert ModelVersions(st).live_row("GOOG")["version"] == "GOOG-v2"  # type: ignore[index]
        expected = accuracy(st.read("cost_predictions").to_pylist())
    r = CliRunner().invoke(app, ["models", "approve", "GOOG-v2", "--store", str(path)])
    assert r.exit_code != 0 and "not pending" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["models", "accuracy", "--store", str(path), "--json"])
    got = json.loads(r.stdout)["accuracy"][0]
    # realised / predicted: 0.5, 1, 2, 4, 3 → median |log| = log 2; three of five inside [0, 5]
    assert abs(got["median_abs_log_ratio"] - 0.6931471805599453) < 1e-12 and got["coverage_90"] == 0.6
    assert got["bias_bps"] == expected[0]["bias_bps"] == 2.2
    r = CliRunner().invoke(app, ["models", "accuracy", "--store", str(path)])
    assert r.exit_code == 0 and "GOOG-v1" in r.stdout and "60% of 5" in r.stdout


def test_the_catalogue_lists_every_model_with_what_it_needs() -> None:
    r = CliRunner().invoke(app, ["models", "catalogue", "--json"])
    rows = {m["name"]: m for m in json.loads(r.stdout)["models"]}
    assert {"instrument", "sqrt", "power-law", "propagator", "ow-book", "gbm", "hybrid"} <= set(rows)
    assert rows["ow-book"]["needs"] == ["depth>=2"] and rows["sqrt"]["horizon_dependent"] is False
    from impactlab.calibration.runner import MODELS

    assert set(MODELS) <= set(rows)  # calibrate's names come from the catalogue
    r = CliRunner().invoke(app, ["calibrate", "--help"])
    assert all(n in r.stdout for n in MODELS)
