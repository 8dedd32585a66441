"""Propagator and Obizhaeva–Wang models: estimators, recovery, identities, real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from impactlab.calibration import large_order_events, market_trade_series
from impactlab.data.lobster import load_lobster
from impactlab.data.market import EventKind
from impactlab.errors import CalibrationError
from impactlab.impact import ObizhaevaWangImpact, PropagatorModel, load_model
from impactlab.impact.propagator import response_function, sign_autocorrelation
from impactlab.testing import simulate_impact_events, simulate_trades
from impactlab.testing.impact import fractional_gaussian_noise
from tests.conftest import lobster_path


def test_fft_correlations_equal_direct_sums() -> None:
    rng = np.random.default_rng(0)
    e = np.sign(rng.normal(size=3000))
    p = np.cumsum(rng.normal(size=3000)) + 0.3 * np.cumsum(e)
    c = sign_autocorrelation(e, 50)
    r = response_function(e, p, 50)
    x = e - e.mean()
    for lag in (0, 1, 7, 50):
        assert c[lag] == pytest.approx(np.mean(x[: 3000 - lag] * x[lag:]), rel=1e-9, abs=1e-12)
        assert r[lag] == pytest.approx(np.mean((p[lag:] - p[: 3000 - lag]) * e[: 3000 - lag]), rel=1e-9, abs=1e-12)


def test_fgn_signs_have_the_expected_memory() -> None:
    e = np.sign(fractional_gaussian_noise(200_000, 0.75, seed=1))
    c = sign_autocorrelation(e, 200)
    lags = np.arange(10, 201)
    slope = -np.polyfit(np.log(lags), np.log(c[10:201]), 1)[0]
    assert slope == pytest.approx(0.5, abs=0.1)  # gamma = 2 - 2H


def test_power_law_kernel_recovery_over_50_seeds() -> None:
    hits = {"g0_bps": 0, "beta": 0}
    for seed in range(50):
        res = (
            PropagatorModel(kernel="power_law", max_lag=50, fit_lags=(1, 50), n_blocks=10)
            .fit(simulate_trades(8000, seed=seed, max_lag=50))
            .result_
        )
        ci = res.conf_int()
        hits["g0_bps"] += ci["g0_bps"][0] <= 1.0 <= ci["g0_bps"][1]
        hits["beta"] += ci["beta"][0] <= 0.25 <= ci["beta"][1]
    assert all(h >= 45 for h in hits.values()), hits  # >= 90% of 50 seeds, jackknife intervals


def test_nonparametric_kernel_matches_the_true_kernel() -> None:
    m = PropagatorModel(kernel="nonparametric", max_lag=50, n_blocks=10).fit(
        simulate_trades(60_000, seed=3, max_lag=50)
    )
    true = np.arange(1, 51, dtype=float) ** -0.25
    assert np.allclose(m.kernel_[:20], true[:20], atol=0.08)
    assert m.result_.extra["gamma"] == pytest.approx(0.5, abs=0.15)


def test_kernel_that_never_decays_is_permanent_impact() -> None:
    """With G constant, each trade moves the price by G for ever: a schedule's impact path is linear."""
    m = PropagatorModel(kernel="power_law", max_lag=50, n_blocks=10).fit(
        simulate_trades(20_000, seed=4, beta=0.0, max_lag=50)
    )
    m.result_.extra["kernel_bps"] = np.full(50, 0.5)
    path = m.predict_schedule(np.ones(10))["impact_path_bps"]
    assert np.allclose(np.diff(path), 0.5)
    est = m.predict_estimate({"side": 1, "n_children": 10})
    assert est.permanent_bps == pytest.approx(10 * 0.5)
    assert m.predict_estimate({"side": -1, "n_children": 10}).total_bps == pytest.approx(est.total_bps)


def test_propagator_round_trip_and_bad_input(tmp_path: Path) -> None:
    t = simulate_trades(5000, seed=5, max_lag=30)
    m = PropagatorModel(max_lag=30, n_blocks=10).fit(t)
    back = load_model(m.save(tmp_path / "p.json"))
    assert np.allclose(back.predict(t), m.predict(t))
    with pytest.raises(CalibrationError, match="too little data"):
        PropagatorModel(max_lag=100).fit(t.head(1000))
    with pytest.raises(CalibrationError, match="constant"):
        PropagatorModel(max_lag=30, n_blocks=10).fit(t.assign(sign=1.0))


def test_ow_recovery_over_seeds() -> None:
    truth = {"lambda_bps": 0.002, "kappa_bps": 0.004, "rho_per_s": 0.2, "phi_bps": 0.001}
    hits = dict.fromkeys(truth, 0)
    for seed in range(50):
        ci = ObizhaevaWangImpact().fit(simulate_impact_events(150, seed=seed)).result_.conf_int()
        for k, v in truth.items():
            hits[k] += ci[k][0] <= v <= ci[k][1]
    assert all(h >= 45 for h in hits.values()), hits
    res = ObizhaevaWangImpact().fit(simulate_impact_events(5000, seed=99)).result_
    assert res.extra["resilience_identified"]
    assert res.extra["half_life_s"] == pytest.approx(np.log(2) / 0.2, rel=0.1)
    assert res.extra["permanent_fraction"] == pytest.approx(1 / 3, abs=0.05)


def test_ow_estimate_is_walking_a_block_book() -> None:
    m = ObizhaevaWangImpact().fit(simulate_impact_events(2000, seed=7, noise_bps=0.1))
    est = m.predict_estimate({"signed_quantity": 1000, "tau_s": 0.0, "later_signed_volume": 0.0})
    lam, kap = m.result_.params[:2]
    assert est.total_bps == pytest.approx((lam + kap) * 1000 / 2) and est.permanent_bps == pytest.approx(lam * 1000)


def test_real_data_series(data: Path) -> None:
    day = load_lobster(lobster_path(data, "GOOG", 1))
    t = market_trade_series(day)
    execs = day.events.kind == EventKind.FILL  # LOBSTER types 4 and 5
    assert t["size"].sum() <= day.events.size[execs].sum() and len(t) < execs.sum()  # prints merged into orders
    assert np.isclose(
        np.nansum(t["next_return_bps"]), t["mid_bps"].iloc[-1] - t["mid_bps"].iloc[0] + t["next_return_bps"].iloc[-1]
    )
    res = PropagatorModel(max_lag=100).fit(t).result_
    assert res.n == len(t) and 0 < res.extra["gamma"] < 2 and res.params_dict()["g0_bps"] > 0
    ev = large_order_events(day)
    assert set(ev["tau_s"]) == {0.0, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0} and ev["event"].nunique() > 50
    ow = ObizhaevaWangImpact().fit(ev).result_
    assert ow.extra["events"] == ev["event"].nunique()
    # on this day the mid does not revert after large orders: the model says so instead of printing a depth
    assert ow.extra["resilience_identified"] is (ow.conf_int()["kappa_bps"][0] > 0)
    if not ow.extra["resilience_identified"]:
        assert ow.extra["depth_shares_per_bps"] is None and "no resilience" in ow.extra["diagnosis"]


def test_residual_degrees_of_freedom_count_every_free_parameter() -> None:
    ev = simulate_impact_events(100, seed=11)
    with_flow = ObizhaevaWangImpact().fit(ev).result_
    without = ObizhaevaWangImpact(control_later_flow=False).fit(ev).result_
    assert with_flow.dof_resid == len(ev) - 4 and without.dof_resid == len(ev) - 3
