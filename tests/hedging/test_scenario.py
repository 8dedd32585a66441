"""Hedging scenarios end to end: the replayed GOOG day and the simulator fitted to it, the report and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from impactlab.calibration.costmodel import calibrate_instrument
from impactlab.cli.main import app
from impactlab.data import Store
from impactlab.hedging import HedgingConfig
from impactlab.hedging.report import compare, report_html, report_json
from impactlab.hedging.scenario import BookSpec, SimulatorSource, run_scenario


def test_hedge_run_cli_on_the_replay_writes_json_and_an_html_frontier(tmp_path: Path, data: Path) -> None:
    from impactlab.cli.rl import build_train

    agent = tmp_path / "overlay"  # a (barely) trained RL overlay, compared as a fourth policy
    build_train("overlay", "replay", agent, timesteps=256, quantity=500, horizon_s=180, step_s=60, data=data)
    html_path = tmp_path / "report.html"
    r = CliRunner().invoke(app, ["hedge", "run", "--start", "10m", "--end", "50m", "--risk-aversion", "1e-3",
                                 "--twap", "1m", "--threshold", "500", "--out", str(tmp_path / "stores"), "--json",
                                 "--html", str(html_path), "--data", str(data),
                                 "--overlay-agent", str(agent)])  # fmt: skip
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    names = [p["policy"] for p in doc["policies"]]
    assert names == ["immediate", "twap-60s", "impact-λ0.001", "impact-λ0.001+overlay"]
    for p in doc["policies"]:
        assert p["hedges"] > 0 and p["total_cost_usd"] > 0 and p["hedge_error_sd_usd"] > 0
    assert set(doc["vs_immediate"]) == {"twap-60s", "impact-λ0.001", "impact-λ0.001+overlay"}
    # the overlay works the impact-aware policy's schedules: its first hedge is the same decision
    first = [doc["hedges"][n][0] for n in ("impact-λ0.001", "impact-λ0.001+overlay")]
    assert first[0]["hedge_id"] == first[1]["hedge_id"] and first[0]["horizon_s"] == first[1]["horizon_s"]
    assert "RL overlay" in doc["meta"]["execution"]
    bad = CliRunner().invoke(app, ["hedge", "run", "--end", "11m", "--out", str(tmp_path / "x"), "--data", str(data),
                                   "--overlay-agent", str(tmp_path / "missing")])  # fmt: skip
    assert bad.exit_code == 2 and "missing" in bad.output
    # every hedge was priced by a stored version and executed in full through the store
    for name in names:
        with Store(tmp_path / "stores" / f"hedge-{name}.duckdb", read_only=True) as s:
            hedges = s.read("hedges").to_pylist()
            fills = s.read("fills").to_pylist()
            versions = {r["version"] for r in s.read("model_versions").to_pylist()}
            assert {h["model_version"] for h in hedges} <= versions
            assert s.count("cost_predictions") >= len(hedges)  # TCA recorded realised against predicted
            done = sum(f["quantity"] for f in fills)
            assert done == pytest.approx(sum(h["quantity"] for h in hedges), rel=0.02)
    # the red team's finding: running it again on the same folder erased every journal; now it is refused
    # and nothing is touched, unless told to resume (every hedge already done stays done) or to replace
    again = ["hedge", "run", "--start", "10m", "--end", "50m", "--risk-aversion", "1e-3", "--twap", "1m",
             "--threshold", "500", "--out", str(tmp_path / "stores"), "--data", str(data), "--json"]  # fmt: skip
    before = {n: Store(tmp_path / "stores" / f"hedge-{n}.duckdb", read_only=True) for n in names[:3]}
    counts = {n: (s.count("hedges"), s.count("fills")) for n, s in before.items()}
    for s in before.values():
        s.close()
    refused = CliRunner().invoke(app, again)
    assert refused.exit_code == 2 and "--resume" in refused.output and "--replace" in refused.output
    resumed = CliRunner().invoke(app, [*again, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    for n, (hedges, fills) in counts.items():
        with Store(tmp_path / "stores" / f"hedge-{n}.duckdb", read_only=True) as s:
            assert (s.count("hedges"), s.count("fills")) == (hedges, fills)  # nothing lost, nothing done twice
    # the impact-aware hedges chose their horizon; immediate ones went at once
    imm = doc["hedges"]["immediate"]
    assert {h["horizon_s"] for h in imm} == {1.0}
    assert all(h["policy"] == "almgren-chriss" for h in doc["hedges"]["impact-λ0.001"])
    page = html_path.read_text()
    assert "<svg" in page and "Hedging frontier" in page and "impact-λ0.001" in page


def test_simulator_scenario_hedges_in_the_fitted_market_and_the_monitor_sees_its_quotes(
    tmp_path: Path, data: Path
) -> None:
    from impactlab.rl.tasks import load_day

    day = load_day("GOOG", data)
    model = calibrate_instrument(day)
    cfg = HedgingConfig("GOOG", threshold_shares=300.0, risk_aversion=1e-3)
    src = SimulatorSource(day, duration_s=3_600.0, md_step_s=5.0, seed=3)
    res = run_scenario(src, cfg, tmp_path / "sim.duckdb", model=model, book=BookSpec(contracts=-400.0))
    assert len(res.hedges) >= 2
    assert all(h["realised_cost_usd"] is not None for h in res.hedges)
    # quotes kept coming while hedges worked: no data-gap trips, one quote per grid time, in order
    assert "data gap" not in res.status["breaker_trips"]
    ts = [m["ts_ns"] for m in src.recorded]
    assert ts == sorted(ts) and len(set(ts)) == len(ts) and len(ts) >= 0.95 * src.n
    # the simulator cannot resume: a second run on the same store is refused
    with pytest.raises(Exception, match="cannot resume"):
        run_scenario(SimulatorSource(day, duration_s=60.0, md_step_s=5.0), cfg, tmp_path / "sim.duckdb", model=model)
    # the report's pieces
    doc = report_json([res])
    assert doc["policies"][0]["hedges"] == len(res.hedges) and compare([res]) == {}
    assert "<svg" in report_html([res])
