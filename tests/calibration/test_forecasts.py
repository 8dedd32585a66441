"""Scoring forecasts: pinball loss, Brier scores, P(cost > x) in batch, cross-ticker evaluation, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from impactlab.calibration.forecasts import (
    best_of,
    brier_score,
    evaluate_forecasts,
    feature_importance,
    pinball_loss,
    prob_exceeds,
)
from impactlab.cli.main import app
from impactlab.impact import ImpactEstimate, QuantileGBMImpact, SpreadSquareRootImpact, load_model
from tests.conftest import lobster_path

runner = CliRunner()


def test_batch_prob_exceeds_equals_the_estimate_one_row_at_a_time() -> None:
    rng = np.random.default_rng(0)
    probs = (0.05, 0.1, 0.5, 0.9, 0.95)
    base = rng.normal(5, 2, 200)
    q = {p: base + 3 * (p - 0.5) + rng.normal(0, 0.05, 200) for p in probs}  # may cross slightly
    total = base + 0.1
    for x in (-10.0, 2.0, 5.0, 6.5, 30.0):
        batch = prob_exceeds(q, x, total, 1.5)
        for i in range(0, 200, 17):
            est = ImpactEstimate(
                temporary_bps=total[i],
                permanent_bps=None,
                total_bps=total[i],
                std_bps=1.5,
                model="t",
                quantiles={p: float(q[p][i]) for p in probs},
                quantiles_are_distribution=True,
            )
            assert batch[i] == pytest.approx(est.prob_exceeds(x), abs=1e-12)


def test_permutation_importance_finds_the_feature_that_matters() -> None:
    data = _nonlinear(3000, 5).assign(noise=np.random.default_rng(9).normal(size=3000))
    m = QuantileGBMImpact(features=("x", "noise", "spread_bps", "quantity"), n_estimators=150, learning_rate=0.1).fit(
        data
    )
    imp = feature_importance(m, data.iloc[2000:], data["cost_bps"].to_numpy()[2000:])
    assert (
        imp.index[-1] == "noise"
        and imp.loc["noise", "permutation_rmse_bps"] < 0.1 * imp.loc["x", "permutation_rmse_bps"]
    )
    assert (
        imp.loc["x", "permutation_rmse_bps"] > 1.0
        and imp.loc["x", "mean_abs_shap_bps"] > imp.loc["noise", "mean_abs_shap_bps"]
    )


def test_pinball_and_brier_by_hand() -> None:
    y = np.array([1.0, 3.0])
    # p = 0.9 at 2: losses 0.1·1 (over-forecast) and 0.9·1 (under) → mean 0.5
    assert pinball_loss(y, {0.9: np.array([2.0, 2.0])}) == pytest.approx(0.5)
    assert brier_score(y, np.array([0.2, 0.7]), 2.0) == pytest.approx((0.2**2 + 0.3**2) / 2)


def _nonlinear(n: int, seed: int, scale: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    q = np.exp(rng.uniform(np.log(100), np.log(1e5), n))
    spread = rng.uniform(1, 10, n)
    x = rng.uniform(0, 1, n)
    cost = spread / 2 + 0.8 * 200 * np.sqrt(q / 1e6) + 4 * np.sin(6 * x) ** 2 + rng.normal(0, 0.5 * scale, n)
    return pd.DataFrame({"quantity": q, "adv": 1e6, "daily_vol": 0.02, "spread_bps": spread, "x": x, "cost_bps": cost})


def test_ml_beats_the_parametric_law_where_the_truth_has_a_nonlinear_term() -> None:
    data = _nonlinear(6000, 1)
    models = {
        "gbm": QuantileGBMImpact(
            features=("x", "spread_bps", "quantity"), n_estimators=300, learning_rate=0.1, quantile_estimators=None
        ),
        "spread-sqrt": SpreadSquareRootImpact(),
    }
    wf = evaluate_forecasts(models, data, target="cost_bps")
    assert wf["gbm"]["rmse_bps"] < 0.5 * wf["spread-sqrt"]["rmse_bps"]
    assert abs(wf["gbm"]["coverage_90"] - 0.9) < 0.03 and wf["gbm"]["calibrated_quantiles"]
    assert not wf["spread-sqrt"]["calibrated_quantiles"]
    assert wf["gbm"]["pinball_bps"] < wf["spread-sqrt"]["pinball_bps"]
    assert wf["gbm"]["brier_skill_" + next(k.split("_")[2] for k in wf["gbm"] if k.startswith("brier_skill"))] > 0
    best = best_of(wf)
    assert best["best_ml"] == "gbm" and best["rmse_improvement"] > 0.5
    # another market, noisier: the first quarter of it resets the margins, the rest is scored
    other = _nonlinear(4000, 2, scale=3.0)
    raw = evaluate_forecasts(models, data, target="cost_bps", test=other)
    fixed = evaluate_forecasts(models, data, target="cost_bps", test=other, recalibrate_fraction=0.25)
    assert raw["gbm"]["coverage_90"] < 0.8 and abs(fixed["gbm"]["coverage_90"] - 0.9) < 0.03


def test_forecast_cli_on_real_data(data: Path, tmp_path: Path) -> None:
    amzn, goog = lobster_path(data, "AMZN", 5), lobster_path(data, "GOOG", 10)
    r = runner.invoke(
        app,
        [
            *("forecast", "train", "--lobster", str(amzn), "--blocks", "2000"),
            *("--save", str(tmp_path / "m.json"), "--onnx", str(tmp_path / "m.onnx"), "--json"),
        ],
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["class"] == "QuantileGBMImpact" and doc["rows"] > 500 and (tmp_path / "m.onnx").stat().st_size > 1000
    m = load_model(tmp_path / "m.json")
    assert isinstance(m, QuantileGBMImpact) and m.result_.n == doc["rows"]
    imp = doc["importance"]
    assert set(imp) == set(m.features) and abs(sum(v["gain_share"] for v in imp.values()) - 1) < 1e-9
    # the order's size relative to the depth it must walk drives the cost of crossing the book
    top = max(imp, key=lambda f: imp[f]["permutation_rmse_bps"])
    assert top in {"q_over_near_depth_1", "q_over_near_depth_5", "spread_bps", "log_q_over_adv"}, imp
    r = runner.invoke(
        app,
        [
            *("forecast", "evaluate", "--lobster", str(amzn), "--test-lobster", str(goog), "--blocks", "2000"),
            *("--models", "gbm,spread-sqrt", "--json"),
        ],
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert set(doc["models"]) == {"gbm", "spread-sqrt"} and doc["test"].startswith("GOOG")
    for res in doc["models"].values():
        assert {"rmse_bps", "mae_bps", "r2", "pinball_bps", "coverage_80", "coverage_90", "coverage_95"} <= set(res)
    assert doc["best_ml"] == "gbm" and doc["best_parametric"] == "spread-sqrt"
    r = runner.invoke(app, ["forecast", "evaluate", "--lobster", str(amzn), "--models", "gbm,nope"])
    assert r.exit_code == 2 and "unknown forecast models ['nope']" in r.stderr
