"""The pre-trade report on GOOG's real day, from the book-calibrated model and from a saved model file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from impactlab.calibration.pretrade import book_cost_model, market_context
from impactlab.cli.main import app
from impactlab.data.lobster import load_lobster
from impactlab.errors import InfeasibleScheduleError
from impactlab.impact import SquareRootImpact
from impactlab.schedules import ModelCost, PreTradeReport, pretrade, vwap
from tests.conftest import lobster_path

runner = CliRunner()


@pytest.fixture(scope="module")
def goog(data: Path) -> tuple[object, object]:
    day = load_lobster(lobster_path(data, "GOOG", 10), lobster_path(data, "GOOG", 10, "orderbook"))
    return market_context(day), book_cost_model(day)


def test_book_cost_model_is_calibrated_on_the_day(goog: tuple[object, object]) -> None:
    market, book = goog
    d = book.describe()  # type: ignore[attr-defined]
    assert 100 < d["depth_shares_per_bps"] < 200 and 2 < d["half_life_s"] < 10  # BENCHMARKS.md: 139, 4.6 s
    assert 0.3 < d["sqrt_delta"] < 0.7
    assert market.price == pytest.approx(575, rel=0.02) and market.adv > 1e6  # type: ignore[attr-defined]
    assert set(market.state) >= {"near_depth_1", "near_depth_5", "spread_bps"}  # type: ignore[attr-defined]


def test_report_curve_and_strategies(goog: tuple[object, object]) -> None:
    market, book = goog
    r = pretrade(50_000, side=1, model=book.model, market=market)  # type: ignore[attr-defined, arg-type]
    assert isinstance(r, PreTradeReport) and len(r.curve) == 20
    h = np.array([p.horizon_s for p in r.curve])
    assert h[0] == pytest.approx(60) and h[-1] == pytest.approx(23_400)
    temp = np.array([p.cost.temporary for p in r.curve])
    sd = np.array([p.cost.std for p in r.curve])
    assert temp[0] > 3 * temp[-1]  # trading faster costs more transient impact
    assert np.all(np.diff(sd[5:]) > 0)  # and carries less risk
    perm = {round(p.cost.permanent or 0, 9) for p in r.curve}
    assert len(perm) == 1  # the square-root permanent move depends on size, not speed
    a, b, p = (r.strategy(n) for n in ("aggressive", "balanced", "passive"))
    assert a.horizon_s < b.horizon_s < p.horizon_s
    assert a.participation == pytest.approx(0.25, rel=1e-6) and p.participation == pytest.approx(0.05, rel=1e-6)
    assert a.cost.total > b.cost.total > p.cost.total and a.cost.std < b.cost.std < p.cost.std
    for s in (a, b, p):
        assert 0 <= s.prob_exceeds <= 1
        assert s.prob_exceeds == pytest.approx(s.cost.prob_exceeds(10.0))
    z = 1.6448536269514722
    assert r.recommended == min(r.strategies, key=lambda s: s.cost.total + z * s.cost.std).name
    d = r.to_dict()
    json.dumps(d)
    assert d["strategies"][0]["schedule"]["trades"] and "prob_cost_above_10bps" in d["cost_curve"][0]
    page = r.to_html()
    assert page.count("<svg") == 3 and "Efficient frontier" in page and "GOOG" in page


def test_urgency_horizon_and_participation_limits(goog: tuple[object, object]) -> None:
    market, book = goog
    r = pretrade(50_000, side=-1, model=book.model, market=market, horizon_s=3600, urgency="passive")  # type: ignore[attr-defined, arg-type]
    assert r.recommended == "passive" and max(s.horizon_s for s in r.strategies) <= 3600
    with pytest.raises(InfeasibleScheduleError, match="participation cap too low"):
        pretrade(500_000, side=1, model=book.model, market=market, horizon_s=600)  # type: ignore[attr-defined, arg-type]
    with pytest.raises(InfeasibleScheduleError, match="quantity"):
        pretrade(0, side=1, model=book.model, market=market)  # type: ignore[attr-defined, arg-type]
    with pytest.raises(InfeasibleScheduleError, match="side"):
        pretrade(100, side=0, model=book.model, market=market)  # type: ignore[attr-defined, arg-type]


def test_any_calibrated_model_prices_the_curve(goog: tuple[object, object]) -> None:
    """A parametric model through ModelCost: the square-root law's cost does not depend on the horizon, the
    timing risk does."""
    market, _ = goog
    rng = np.random.default_rng(0)
    q = rng.uniform(1e3, 1e5, 400)
    df = {"quantity": q, "adv": np.full(400, 2e6), "daily_vol": np.full(400, 0.015)}
    y = 0.8 * 0.015 * 1e4 * np.sqrt(q / 2e6) + rng.normal(0, 1, 400)
    model = SquareRootImpact().fit(df, y)
    cost = ModelCost(model)
    s1 = vwap(5e4, 600, curve=market.volume_curve, daily_volume=market.adv, start_s=1800)  # type: ignore[attr-defined]
    s2 = vwap(5e4, 7200, curve=market.volume_curve, daily_volume=market.adv, start_s=1800)  # type: ignore[attr-defined]
    c1, c2 = s1.cost(cost, market), s2.cost(cost, market)  # type: ignore[arg-type]
    assert c1.total == pytest.approx(c2.total) and c2.timing_std > 2 * c1.timing_std
    assert c1.total == pytest.approx(
        model.predict({"quantity": [5e4], "adv": [market.adv], "daily_vol": [market.daily_vol]})[0]
    )  # type: ignore[attr-defined]
    with pytest.raises(InfeasibleScheduleError, match="MarketContext"):
        s1.cost(cost)
    # the report says so and does not choose a horizon by it (the red team: "always aggressive")
    assert c1.horizon_free == pytest.approx(c1.total) and c1.horizon_dependent is False
    r = pretrade(5e4, side=1, model=cost, market=market)  # type: ignore[arg-type]
    assert r.horizon_dependent is False and r.recommended == ""
    assert any("cannot choose a horizon" in n for n in r.notes) and "recommended: none" in str(r.tables()[1].title)
    assert pretrade(5e4, side=1, model=cost, market=market, urgency="balanced").recommended == "balanced"  # type: ignore[arg-type]


def test_the_report_says_which_parts_depend_on_the_horizon(goog: tuple[object, object]) -> None:
    market, book = goog
    r = pretrade(50_000, side=1, model=book.model, market=market)  # type: ignore[attr-defined, arg-type]
    assert r.horizon_dependent is True and r.recommended in ("aggressive", "balanced", "passive")
    d = r.to_dict()["cost_curve"]
    # the half-spread and the square-root part are the same at every horizon; the transient part is what moves
    free = {round(p["horizon_free_bps"], 9) for p in d}
    assert len(free) == 1 and all(p["horizon_dependent_bps"] > 0 for p in d)
    assert d[0]["horizon_dependent_bps"] > 5 * d[-1]["horizon_dependent_bps"]
    assert any("do not depend on the horizon" in n for n in r.notes)


def test_cli_pretrade_json_html_and_model_file(data: Path, tmp_path: Path) -> None:
    html = tmp_path / "r.html"
    r = runner.invoke(
        app, ["pretrade", "--symbol", "GOOG", "--side", "buy", "--qty", "50000", "--json", "--html", str(html)]
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["symbol"] == "GOOG" and len(doc["cost_curve"]) == 20 and len(doc["strategies"]) == 3
    assert html.read_text().count("<svg") == 3
    # a saved model file prices the same request
    rng = np.random.default_rng(1)
    q = rng.uniform(1e3, 1e5, 300)
    m = SquareRootImpact().fit(
        {"quantity": q, "adv": np.full(300, 2e6), "daily_vol": np.full(300, 0.015)},
        0.8 * 150 * np.sqrt(q / 2e6) + rng.normal(0, 1, 300),
    )
    path = m.save(tmp_path / "sqrt.json")
    r = runner.invoke(
        app, ["pretrade", "--symbol", "GOOG", "--side", "sell", "--qty", "20000", "--model", str(path), "--json"]
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["model"].startswith("SquareRootImpact") and doc["side"] == "sell"
    r = runner.invoke(app, ["pretrade", "--symbol", "GOOG", "--side", "buy", "--qty", "-5", "--json"])
    assert r.exit_code == 2 and "quantity" in r.output
    r = runner.invoke(app, ["pretrade", "--symbol", "ZZZZ", "--side", "buy", "--qty", "5", "--json"])
    assert r.exit_code == 2 and "ZZZZ" in r.output


def test_cli_schedules() -> None:
    r = runner.invoke(
        app,
        [
            "schedule",
            "almgren-chriss",
            "--shares",
            "1e6",
            "--horizon",
            "5",
            "--steps",
            "5",
            "--sigma",
            "0.95",
            "--eta",
            "2.5e-6",
            "--gamma",
            "2.5e-7",
            "--epsilon",
            "0.0625",
            "--risk-aversion",
            "1e-6",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert round(d["kappa"], 1) == 0.6 and d["holdings"][0] == 1e6 and d["holdings"][-1] == 0
    assert d["expected_cost"] == pytest.approx(d["closed_form"]["expected_cost"])
    assert sum(d["trades"]) == pytest.approx(1e6) and d["variance"] > 0
    r = runner.invoke(
        app,
        [
            "schedule",
            "obizhaeva-wang",
            "--shares",
            "100000",
            "--horizon",
            "1",
            "--depth",
            "5000",
            "--resilience",
            "2.231",
            "--permanent",
            "0.0001",
            "--steps",
            "10",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert int(d["trades"][0]) == 26_317 and d["expected_cost"] > d["continuous"]["expected_cost"]
    r = runner.invoke(
        app,
        [
            "schedule",
            "almgren-chriss",
            "--shares",
            "0",
            "--horizon",
            "5",
            "--steps",
            "5",
            "--sigma",
            "1",
            "--eta",
            "1e-6",
            "--json",
        ],
    )
    assert r.exit_code == 2 and "quantity" in r.output
    r = runner.invoke(
        app,
        [
            "schedule",
            "almgren-chriss",
            "--shares",
            "10",
            "--horizon",
            "5",
            "--steps",
            "1",
            "--sigma",
            "1",
            "--eta",
            "1e-7",
            "--gamma",
            "1e-6",
            "--json",
        ],
    )
    assert r.exit_code == 2 and "not convex" in r.output


def test_machine_learned_model_prices_the_curve_from_the_book_at_arrival(data: Path) -> None:
    """An ML block model reads the book at arrival from the market context and the horizon and participation
    from the schedule; a block far outside its training range is flagged as extrapolated."""
    from impactlab.calibration.blocks import hypothetical_blocks
    from impactlab.impact import QuantileGBMImpact

    day = load_lobster(lobster_path(data, "GOOG", 5), lobster_path(data, "GOOG", 5, "orderbook"))
    blocks = hypothetical_blocks(day, n_blocks=3000, seed=3)
    model = QuantileGBMImpact(n_estimators=60, quantile_estimators=30).fit(blocks)
    market = market_context(day)
    r = pretrade(3_000, side=1, model=ModelCost(model), market=market, horizon_s=600, max_participation=0.5)
    totals = {round(p.cost.total, 6) for p in r.curve[:8]}
    assert len(totals) > 1  # the horizon and participation move the forecast
    assert all(np.isfinite(p.cost.total) and p.cost.std > 0 for p in r.curve)
    assert any("horizon_s" in p.cost.extrapolated_features for p in r.curve)  # trained on horizons ≤ 300 s
    assert any("extrapolates" in n for n in r.notes)
