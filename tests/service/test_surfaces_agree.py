"""One order priced through every surface gives the same numbers: the CLI's pre-trade report, the service's
estimate, report, schedule and frontier (what the dashboard draws), and the hedging engine's cost profile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from impactlab.hedging import cost_profile, hedge_schedule
from impactlab.schedules.pretrade import _steps

Q = 50_000.0


def test_one_order_one_price_on_every_surface(make_client, calibrated, data: Path) -> None:  # type: ignore[no-untyped-def]
    from impactlab.cli.main import app

    c, state = make_client()
    r = CliRunner().invoke(app, ["pretrade", "--side", "buy", "--qty", f"{Q:g}", "--symbol", "GOOG", "--data",
                                 str(data), "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    cli = json.loads(r.stdout)
    svc = c.post("/pretrade/report", json={"symbol": "GOOG", "side": "buy", "quantity": Q}).json()
    for a, b in zip(cli["strategies"], svc["strategies"], strict=True):  # the dashboard's report is the service's
        assert a["horizon_s"] == pytest.approx(b["horizon_s"]) and a["total_bps"] == pytest.approx(b["total_bps"])
        assert a["std_bps"] == pytest.approx(b["std_bps"])
    for a, b in zip(cli["cost_curve"], svc["cost_curve"], strict=True):
        assert a["total_bps"] == pytest.approx(b["total_bps"]) and a["temporary_bps"] == pytest.approx(
            b["temporary_bps"]
        )
    agg = cli["strategies"][0]
    h = agg["horizon_s"]
    est = c.post("/impact/estimate", json={"symbol": "GOOG", "side": "buy", "quantity": Q, "horizon_s": h}).json()
    assert est["total_bps"] == pytest.approx(agg["total_bps"]) and est["std_bps"] == pytest.approx(agg["std_bps"])
    assert est["temporary_bps"] == pytest.approx(agg["temporary_bps"])
    vw = c.post("/schedule", json={"symbol": "GOOG", "side": "buy", "quantity": Q, "kind": "vwap", "horizon_s": h,
                                   "step_s": _steps(h)}).json()  # fmt: skip
    assert vw["cost"]["total_bps"] == pytest.approx(est["total_bps"]) and vw["model_version"] == est["model_version"]
    # the TWAP over 30 minutes: /schedule, the frontier's risk-neutral end and the hedging engine's profile at λ = 0
    tw = c.post("/schedule", json={"symbol": "GOOG", "side": "buy", "quantity": Q, "kind": "twap", "horizon_s": 1800,
                                   "step_s": 60}).json()  # fmt: skip
    fr = c.post("/frontier", json={"symbol": "GOOG", "side": "buy", "quantity": Q, "horizon_s": 1800, "n_steps": 30,
                                   "n_points": 10}).json()  # fmt: skip
    assert fr["twap"]["expected_cost_bps"] == pytest.approx(tw["cost"]["total_bps"])
    model = state.models.get("GOOG")
    mk = model.market(1)
    prof = cost_profile(model, Q, 1, (1800.0,), 60.0, 0.0, market=mk)
    _, cost, usd, _ = hedge_schedule(model, "twap", Q, 1800.0, 60.0, 1, 0.0, mk)
    assert prof.cost_bps[0] == pytest.approx(tw["cost"]["total_bps"]) == pytest.approx(cost.total)
    assert usd == pytest.approx(cost.total * Q * mk.price / 1e4)
    assert prof.std_bps[0] == pytest.approx(tw["cost"]["std_bps"])
    # the form was chosen out of sample on the day, and the choice is recorded with the version
    sc = model.selection["scores"]
    assert model.selection["chosen"] == model.kind == "spread+ow+sqrt"
    assert sc["spread+ow+sqrt"]["oos_rmse_bps"] < sc["spread+sqrt"]["oos_rmse_bps"]
    assert state.models.versions()[0]["params"]["selection"]["chosen"] == "spread+ow+sqrt"
    # and the same version everywhere
    assert (
        est["model_version"] == svc["model_version"] == tw["model_version"] == fr["model_version"] == prof.model_version
    )
