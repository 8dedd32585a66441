"""Machine-learned impact: the block dataset, conformal LightGBM, forest, Bayesian and neural forecasts, ONNX."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impactlab.book.cost import walk_the_book
from impactlab.calibration import evaluate
from impactlab.calibration.blocks import hypothetical_blocks
from impactlab.data.lobster import load_lobster
from impactlab.errors import CalibrationError
from impactlab.features import BLOCK_FEATURES
from impactlab.features.book import l1_features
from impactlab.features.trades import state_at
from impactlab.impact import ConformalRegressorImpact, OnnxForecaster, QuantileGBMImpact, load_model
from impactlab.testing import check_impact_model
from tests.conftest import lobster_path

SMALL = {"n_estimators": 40, "num_leaves": 15, "min_child_samples": 20}


def _hetero(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    y = 5 * np.sqrt(x1) + 2 * x2 + rng.standard_t(4, n) * (0.2 + 2 * x2)  # fat tails, heteroskedastic
    return pd.DataFrame({"x1": x1, "x2": x2, "y": y})


@pytest.mark.parametrize("coverage", [0.8, 0.9, 0.95])
def test_conformal_intervals_cover_nominally_out_of_sample(coverage: float) -> None:
    model = QuantileGBMImpact(features=("x1", "x2"), target="y", **SMALL)
    ev = evaluate(model, _hetero(8000, 1), coverage=coverage)
    assert abs(ev["out_of_sample"]["coverage"] - coverage) < 0.03, ev["out_of_sample"]


def test_estimate_distribution_is_consistent_with_the_quantiles() -> None:
    m = QuantileGBMImpact(features=("x1", "x2"), target="y", **SMALL).fit(_hetero(4000, 2))
    est = m.predict_estimate({"x1": 0.5, "x2": 0.5})
    q = est.quantiles
    values = [q[p] for p in sorted(q)]
    assert values == sorted(values)  # conformalized quantiles do not cross
    assert est.prob_exceeds(q[0.9]) == pytest.approx(0.1, abs=1e-9)
    assert est.prob_exceeds(q[0.5]) == pytest.approx(0.5, abs=1e-9)
    assert est.prob_exceeds(q[0.025] - 100) > 0.975 and est.prob_exceeds(q[0.975] + 100) < 0.025
    with pytest.raises(CalibrationError, match="not calibrated"):
        m.predict_interval(pd.DataFrame({"x1": [0.1], "x2": [0.1]}), coverage=0.5)


def test_contract_and_safe_round_trip() -> None:
    X = _hetero(1500, 3)
    check_impact_model(QuantileGBMImpact(features=("x1", "x2"), target="y", **SMALL), X, {"x1": 0.3, "x2": 0.7})


def test_blocks_on_real_data(data: Path) -> None:
    day = load_lobster(lobster_path(data, "GOOG", 10))
    b = hypothetical_blocks(day, n_blocks=3000, seed=4)
    assert 0 < len(b) <= 3000 and len(b) + b.attrs["beyond_depth"] + b.attrs["dropped_undefined"] == 3000
    assert np.all(np.diff(b["ts_ns"]) >= 0) and set(BLOCK_FEATURES) <= set(b.columns)
    bp, bz = day.bid()
    ap, az = day.ask()
    mid = l1_features(day)["mid"]
    ofi = l1_features(day)["ofi"]
    for r in (0, len(b) // 2, len(b) - 1):
        row = b.iloc[r]
        i = state_at(day.ts_ns, np.array([row.ts_ns]))[0]
        walk = walk_the_book(
            row.quantity, int(row.side), ask_price=ap[i], ask_size=az[i], bid_price=bp[i], bid_size=bz[i]
        )
        assert row.immediate_cost_bps == pytest.approx(walk.cost_bps)
        assert row.arrival_mid == mid[i]
        # features look back only: OFI of the events in (t − 10 s, t]
        t = int(row.ts_ns)
        sel = (day.ts_ns > t - 10_000_000_000) & (day.ts_ns <= t)
        assert row.ofi_10s_signed == pytest.approx(row.side * ofi[sel].sum())
    assert b["immediate_cost_bps"].min() > 0  # a market order always pays at least the half-spread


def test_gbm_beats_the_mean_on_the_immediate_cost_with_nominal_coverage(data: Path) -> None:
    b = hypothetical_blocks(load_lobster(lobster_path(data, "AMZN", 5)), n_blocks=6000, seed=5)
    ev = evaluate(QuantileGBMImpact(target="immediate_cost_bps", **SMALL), b, coverage=0.9)
    assert ev["out_of_sample"]["r2"] > 0.4
    assert 0.85 <= ev["out_of_sample"]["coverage"] <= 0.95


def test_hybrid_is_the_baseline_plus_the_learned_residual() -> None:
    from impactlab.calibration import order_outcomes
    from impactlab.testing import simulate_parent_orders

    o = order_outcomes(simulate_parent_orders(3000, seed=21, model="square_root", noise_bps=1.0))
    o["x_noise"] = np.random.default_rng(0).normal(size=len(o))
    hybrid = QuantileGBMImpact(features=("x_noise",), baseline="square_root", **SMALL).fit(o)
    p = hybrid.baseline_params_
    assert p["Y"] == pytest.approx(0.8, rel=0.05) and p["delta"] == pytest.approx(0.5, abs=0.03)
    # the residual carries no signal, so the hybrid predicts the baseline up to the boosters' noise
    base = p["Y"] * o["daily_vol"] * 1e4 * (o["quantity"] / o["adv"]) ** p["delta"]
    assert np.corrcoef(hybrid.predict(o), base)[0, 1] > 0.99
    plain = QuantileGBMImpact(features=("x_noise",), **SMALL).fit(o)
    assert hybrid.result_.rmse_bps < 0.5 * plain.result_.rmse_bps  # the feature alone cannot explain the cost
    check_impact_model(
        QuantileGBMImpact(features=("x_noise",), baseline="square_root", **SMALL),
        o,
        dict(o.iloc[0][["x_noise", "quantity", "adv", "daily_vol"]]),
    )


# -- random forest, Bayesian ridge, neural net --------------------------------------------------------------

FAST = {
    "random_forest": {"n_estimators": 30, "min_samples_leaf": 20},
    "bayesian_ridge": {},
    "mlp": {"hidden_layers": (16,)},
}


@pytest.mark.parametrize("kind", sorted(FAST))
def test_regressors_cover_nominally_and_round_trip_exactly(kind: str, tmp_path: Path) -> None:
    df = _hetero(6000, 11)
    model = ConformalRegressorImpact(kind=kind, features=("x1", "x2"), target="y", **FAST[kind])  # type: ignore[arg-type]
    ev = evaluate(model, df, coverage=0.9)
    assert abs(ev["out_of_sample"]["coverage"] - 0.9) < 0.03, ev["out_of_sample"]
    assert ev["out_of_sample"]["r2"] > 0.3  # the signal is learnt, not just the mean
    fitted = ev["fitted"]
    back = load_model(fitted.save(tmp_path / "m.json"))
    np.testing.assert_array_equal(back.predict(df), fitted.predict(df))
    for p, v in back.predict_quantiles(df).items():
        np.testing.assert_array_equal(v, fitted.predict_quantiles(df)[p])
    assert "pickle" not in (tmp_path / "m.json").read_text()[:200]


@pytest.mark.parametrize("kind", sorted(FAST))
def test_regressors_pass_the_contract(kind: str) -> None:
    model = ConformalRegressorImpact(kind=kind, features=("x1", "x2"), target="y", **FAST[kind])  # type: ignore[arg-type]
    check_impact_model(model, _hetero(1500, 3), {"x1": 0.3, "x2": 0.7})


def test_bayesian_interval_widens_where_the_data_are_noisier() -> None:
    m = ConformalRegressorImpact(kind="bayesian_ridge", features=("x1", "x2"), target="y").fit(_hetero(4000, 5))
    lo, hi = m.predict_interval(pd.DataFrame({"x1": [0.5, 0.5], "x2": [0.5, 3.0]}), coverage=0.9)
    assert (hi - lo)[1] > (hi - lo)[0]  # predictive sd grows away from the data


def test_extrapolation_is_flagged_by_name() -> None:
    m = QuantileGBMImpact(features=("x1", "x2"), target="y", **SMALL).fit(_hetero(2000, 6))
    assert m.predict_estimate({"x1": 0.5, "x2": 0.5}).extrapolated_features == ()
    assert m.predict_estimate({"x1": 1.7, "x2": -0.2}).extrapolated_features == ("x1", "x2")
    assert m.forecaster().estimate({"x1": 0.5, "x2": 9.0}).extrapolated_features == ("x2",)


def test_quantiles_are_nested_outward() -> None:
    m = QuantileGBMImpact(features=("x1", "x2"), target="y", **SMALL).fit(_hetero(3000, 8))
    q = m.predict_quantiles(_hetero(500, 9))
    probs = sorted(q)
    for a, b in itertools.pairwise(probs):
        assert np.all(q[a] <= q[b])


def test_recalibration_restores_coverage_on_shifted_data() -> None:
    train = _hetero(4000, 12)
    shifted = _hetero(6000, 13)
    shifted["y"] = 2.5 * shifted["y"]  # a noisier, more expensive market
    m = QuantileGBMImpact(features=("x1", "x2"), target="y", **SMALL).fit(train)
    first, rest = shifted.iloc[:3000], shifted.iloc[3000:]

    def cover(model: QuantileGBMImpact) -> float:
        lo, hi = model.predict_interval(rest, coverage=0.9)
        return float(np.mean((rest["y"] >= lo) & (rest["y"] <= hi)))

    before = cover(m)
    m.recalibrate(first)
    assert before < 0.8 and abs(cover(m) - 0.9) < 0.03
    assert m.result_.extra["recalibrated_on_rows"] == 3000


# -- ONNX -------------------------------------------------------------------------------------------------


def test_onnx_forecaster_matches_the_native_model() -> None:
    df = _hetero(3000, 14)
    m = QuantileGBMImpact(features=("x1", "x2"), target="y", **SMALL).fit(df)
    fc = m.forecaster()
    for row in df.iloc[:50].to_dict("records"):
        a, b = m.predict_estimate(row), fc.estimate(row)
        assert b.total_bps == pytest.approx(a.total_bps, abs=1e-4)
        for p in a.quantiles:
            assert b.quantiles[p] == pytest.approx(a.quantiles[p], abs=1e-4)
        assert b.prob_exceeds(a.total_bps) == pytest.approx(a.prob_exceeds(a.total_bps), abs=1e-4)
    batch = fc.predict_batch(df)
    np.testing.assert_allclose(batch["total_bps"], m.predict(df), atol=1e-4)
    np.testing.assert_allclose(batch["q0.95"], m.predict_quantiles(df)[0.95], atol=1e-4)


def test_onnx_of_the_hybrid_adds_the_baseline() -> None:
    rng = np.random.default_rng(15)
    n = 3000
    df = pd.DataFrame(
        {
            "x1": rng.uniform(0, 1, n),
            "quantity": np.exp(rng.uniform(np.log(100), np.log(1e5), n)),
            "adv": 1e6,
            "daily_vol": 0.02,
        }
    )
    df["y"] = 0.8 * 200 * np.sqrt(df["quantity"] / 1e6) + df["x1"] + rng.normal(0, 0.3, n)
    m = QuantileGBMImpact(features=("x1",), target="y", baseline="square_root", **SMALL).fit(df)
    fc = m.forecaster()
    row = df.iloc[7].to_dict()
    assert fc.estimate(row).total_bps == pytest.approx(m.predict_estimate(row).total_bps, abs=1e-4)


def test_feature_list_mismatches_are_clear_errors(tmp_path: Path) -> None:
    m = QuantileGBMImpact(features=("x1", "x2"), target="y", **SMALL).fit(_hetero(1000, 16))
    with pytest.raises(CalibrationError, match=r"lacks the model's features \['x2'\]"):
        m.forecaster().estimate({"x1": 0.2})
    with pytest.raises(CalibrationError, match="needs columns"):
        m.predict(pd.DataFrame({"x1": [0.1]}))
    doc = json.loads(m.save(tmp_path / "m.json").read_text())
    doc["settings"]["features"] = ["x1", "x3"]
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(CalibrationError, match="feature list"):
        load_model(tmp_path / "bad.json")
    with pytest.raises(CalibrationError, match="not a valid ONNX model"):
        OnnxForecaster(m, b"not onnx")


def test_shap_values_add_up_to_the_forecast() -> None:
    df = _hetero(2000, 17)
    m = QuantileGBMImpact(features=("x1", "x2"), target="y", **SMALL).fit(df)
    contrib = m.shap_values(df.iloc[:100])
    assert contrib.shape == (100, 3)
    np.testing.assert_allclose(contrib.sum(axis=1), m.predict(df.iloc[:100]), atol=1e-6)


def test_scaled_intervals_cover_adapt_and_export(tmp_path: Path) -> None:
    df = _hetero(8000, 18)
    model = QuantileGBMImpact(features=("x1", "x2"), target="y", intervals="scaled", **SMALL)
    ev = evaluate(model, df, coverage=0.9)
    assert abs(ev["out_of_sample"]["coverage"] - 0.9) < 0.03, ev["out_of_sample"]
    m = ev["fitted"]
    lo, hi = m.predict_interval(pd.DataFrame({"x1": [0.5, 0.5], "x2": [0.05, 0.95]}), coverage=0.9)
    assert (hi - lo)[1] > 2 * (hi - lo)[0]  # the noise grows with x2: so does the interval
    back = load_model(m.save(tmp_path / "s.json"))
    np.testing.assert_array_equal(back.predict_quantiles(df)[0.95], m.predict_quantiles(df)[0.95])
    fc = m.forecaster()
    row = df.iloc[5].to_dict()
    a, b = m.predict_estimate(row), fc.estimate(row)
    for p in a.quantiles:
        assert b.quantiles[p] == pytest.approx(a.quantiles[p], abs=1e-4)
    np.testing.assert_allclose(fc.predict_batch(df)["q0.025"], m.predict_quantiles(df)[0.025], atol=1e-4)


def test_hybrid_learns_from_the_desks_own_parent_orders() -> None:
    # parent-order outcomes (the layout outcomes_from_store rebuilds from the system's fills), power-law truth:
    # the square-root law of Q/V alone misses the duration effect the overlay can learn
    from impactlab.calibration import order_outcomes
    from impactlab.impact import SquareRootImpact
    from impactlab.testing import simulate_parent_orders

    orders = order_outcomes(simulate_parent_orders(5000, seed=21, model="power_law", noise_bps=2.0))
    orders = orders.sort_values("start_ns").reset_index(drop=True)
    hybrid = QuantileGBMImpact(
        features=("participation", "duration_days", "daily_vol"), baseline="square_root", **SMALL
    )
    ev = evaluate(hybrid, orders, coverage=0.9)
    base = evaluate(SquareRootImpact(delta=None), orders)
    assert ev["out_of_sample"]["rmse_bps"] < 0.8 * base["out_of_sample"]["rmse_bps"]
    assert abs(ev["out_of_sample"]["coverage"] - 0.9) < 0.04
