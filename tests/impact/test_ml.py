"""Machine-learned impact: the block dataset and the conformal LightGBM forecast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impactlab.book.cost import walk_the_book
from impactlab.calibration import evaluate
from impactlab.calibration.blocks import lobster_blocks
from impactlab.data.lobster import load_lobster
from impactlab.errors import CalibrationError
from impactlab.features import BLOCK_FEATURES
from impactlab.features.book import lobster_l1_features
from impactlab.features.trades import state_at
from impactlab.impact import QuantileGBMImpact
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
    b = lobster_blocks(day, n_blocks=3000, seed=4)
    assert 0 < len(b) <= 3000 and len(b) + b.attrs["beyond_depth"] + b.attrs["dropped_undefined"] == 3000
    assert np.all(np.diff(b["ts_ns"]) >= 0) and set(BLOCK_FEATURES) <= set(b.columns)
    bp, bz = day.bid()
    ap, az = day.ask()
    mid = lobster_l1_features(day)["mid"]
    ofi = lobster_l1_features(day)["ofi"]
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
    b = lobster_blocks(load_lobster(lobster_path(data, "AMZN", 5)), n_blocks=6000, seed=5)
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
