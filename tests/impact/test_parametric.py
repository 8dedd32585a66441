"""Parametric impact models: parameter recovery, the contract, bad input, persistence."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impactlab.calibration import order_outcomes
from impactlab.errors import CalibrationError, ConvergenceWarning
from impactlab.impact import (
    ImpactModel,
    IStarImpact,
    KyleLambdaImpact,
    ObizhaevaWangImpact,
    OFIImpact,
    PowerLawImpact,
    PropagatorModel,
    SpreadSquareRootImpact,
    SquareRootImpact,
    load_model,
)
from impactlab.testing import (
    check_impact_model,
    simulate_bars,
    simulate_impact_events,
    simulate_parent_orders,
    simulate_trades,
)
from impactlab.testing.impact import DEFAULTS


def _with_spread(seed: int, n: int) -> pd.DataFrame:
    """Square-root outcomes plus 0.9 × the half-spread, spreads log-normal around 5 bps."""
    o = order_outcomes(simulate_parent_orders(n, seed=seed, model="square_root"))
    spread = np.exp(np.random.default_rng(seed + 10_000).normal(np.log(5.0), 0.6, len(o)))
    return o.assign(spread_bps=spread, cost_bps=o["cost_bps"] + 0.9 * spread / 2)


# (factory, data maker, true parameters)
CASES = {
    "spread_sqrt": (SpreadSquareRootImpact, _with_spread, {"c": 0.9, **DEFAULTS["square_root"]}),
    "sqrt_free": (
        lambda: SquareRootImpact(delta=None),
        lambda s, n: order_outcomes(simulate_parent_orders(n, seed=s, model="square_root")),
        DEFAULTS["square_root"],
    ),
    "sqrt_fixed": (
        lambda: SquareRootImpact(),
        lambda s, n: order_outcomes(simulate_parent_orders(n, seed=s, model="square_root")),
        {"Y": 0.8},
    ),
    "power_law_free": (
        lambda: PowerLawImpact(alpha=None, beta=None),
        lambda s, n: order_outcomes(simulate_parent_orders(n, seed=s, model="power_law")),
        {k: v for k, v in DEFAULTS["power_law"].items() if k != "delta"},
    ),
    "power_law_turnover": (
        lambda: PowerLawImpact(),
        lambda s, n: order_outcomes(simulate_parent_orders(n, seed=s, model="power_law", with_shares_outstanding=True)),
        {"gamma": 0.314, "eta": 0.142},
    ),
    "istar": (
        lambda: IStarImpact(),
        lambda s, n: order_outcomes(simulate_parent_orders(n, seed=s, model="istar", noise_bps=2.0)),
        DEFAULTS["istar"],
    ),
    "ofi": (
        lambda: OFIImpact(),
        lambda s, n: simulate_bars(n, seed=s, slope=1.5, intercept=0.2),
        {"intercept_bps": 0.2, "c_bps": 1.5},
    ),
    "kyle": (
        lambda: KyleLambdaImpact(),
        lambda s, n: simulate_bars(n, seed=s, slope=0.004, intercept=-0.1, regressor="signed_volume"),
        {"intercept_bps": -0.1, "lambda_bps_per_share": 0.004},
    ),
}


# five non-linear I-Star parameters, b1 near its bound of 1: Wald intervals need more orders to be accurate
RECOVERY_N = {"istar": 4000}


@pytest.mark.parametrize("case", sorted(CASES))
def test_true_values_inside_95_percent_intervals_in_at_least_90_percent_of_50_seeds(case: str) -> None:
    make, data, truth = CASES[case]
    hits = {k: 0 for k in truth}
    for seed in range(50):
        res = make().fit(data(seed, RECOVERY_N.get(case, 1500))).result_
        ci = res.conf_int(0.05)
        for k, v in truth.items():
            lo, hi = ci[k]
            hits[k] += lo <= v <= hi
    assert all(h >= 45 for h in hits.values()), hits


@pytest.mark.parametrize("case", sorted(CASES))
def test_point_estimates_at_large_n(case: str) -> None:
    make, data, truth = CASES[case]
    est = make().fit(data(1234, 40_000)).result_.params_dict()
    for k, v in truth.items():
        tol = 0.05 * abs(v) if k != "intercept_bps" else 0.05
        assert est[k] == pytest.approx(v, abs=tol), (k, est[k], v)


ALL_MODELS = {
    **{k: (v[0], lambda d=v[1]: d(7, 800)) for k, v in CASES.items()},
    "propagator": (lambda: PropagatorModel(max_lag=30, n_blocks=10), lambda: simulate_trades(4000, seed=7, max_lag=30)),
    "ow": (ObizhaevaWangImpact, lambda: simulate_impact_events(120, seed=7)),
}


@pytest.mark.parametrize("case", sorted(ALL_MODELS))
def test_every_model_passes_the_shared_contract(case: str) -> None:
    make, data = ALL_MODELS[case]
    X = data()
    model = make()
    if isinstance(model, PropagatorModel):
        order = {"side": 1, "n_children": 10}
    else:
        order = X.iloc[0][list(dict.fromkeys([*model.required_columns, *(["quantity"] if "quantity" in X else [])]))]
    check_impact_model(model, X, dict(order))


def test_sell_and_buy_cost_the_same() -> None:
    o = order_outcomes(simulate_parent_orders(3000, seed=3, model="square_root", noise_bps=0.0))
    buys, sells = o[o.side == 1], o[o.side == -1]
    assert np.allclose(
        SquareRootImpact().fit(buys).result_.params, SquareRootImpact().fit(sells).result_.params, rtol=1e-9
    )


def test_cost_in_bps_does_not_change_when_prices_are_scaled() -> None:
    raw = simulate_parent_orders(1000, seed=4, model="power_law")
    scaled = raw.copy()
    for c in ("arrival_mid", "avg_price", "end_mid", "post_mid"):
        scaled[c] *= 37.0
    a = PowerLawImpact().fit(order_outcomes(raw)).result_.params
    b = PowerLawImpact().fit(order_outcomes(scaled)).result_.params
    assert np.allclose(a, b, rtol=1e-8)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (lambda o: o.head(5), "too little data"),
        (lambda o: o.assign(cost_bps=np.where(np.arange(len(o)) == 3, np.nan, o.cost_bps)), "NaN or infinite"),
        (lambda o: o.assign(cost_bps=np.inf), "NaN or infinite"),
        (lambda o: o.assign(quantity=1000.0), "constant"),
        (lambda o: o.drop(columns="adv"), "needs columns"),
        (lambda o: o.assign(quantity=-o.quantity), "must be > 0"),
    ],
)
def test_bad_input_is_a_clear_calibration_error(frame, message: str) -> None:  # type: ignore[no-untyped-def]
    o = order_outcomes(simulate_parent_orders(200, seed=5, model="square_root"))
    with pytest.raises(CalibrationError, match=message):
        SquareRootImpact(delta=None).fit(frame(o))


def test_non_convergence_warns_and_keeps_finite_parameters() -> None:
    o = order_outcomes(simulate_parent_orders(500, seed=6, model="istar", noise_bps=50.0))
    import scipy.optimize as so

    real = so.least_squares

    def capped(*a, **k):  # type: ignore[no-untyped-def]
        k["max_nfev"] = 1
        return real(*a, **k)

    so.least_squares = capped
    try:
        with pytest.warns(ConvergenceWarning, match="did not converge"):
            m = IStarImpact().fit(o)
    finally:
        so.least_squares = real
    assert np.all(np.isfinite(m.result_.params))


def test_unfitted_model_and_bad_model_file(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="not fitted"):
        SquareRootImpact().predict(pd.DataFrame({"quantity": [1.0], "adv": [1.0], "daily_vol": [0.01]}))
    (tmp_path / "x.json").write_text('{"format": "pickle"}')
    with pytest.raises(CalibrationError, match="not an impactlab model file"):
        load_model(tmp_path / "x.json")


def test_every_model_is_registered() -> None:
    from impactlab.impact._base import _REGISTRY

    for cls in (
        IStarImpact,
        KyleLambdaImpact,
        ObizhaevaWangImpact,
        OFIImpact,
        PowerLawImpact,
        PropagatorModel,
        SquareRootImpact,
    ):
        assert _REGISTRY[cls.__name__] is cls and issubclass(cls, ImpactModel)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from sklearn.base import clone

        assert clone(SquareRootImpact(delta=None)).get_params() == {"cov_type": "HC1", "delta": None}


def test_context_columns_may_be_constant_but_regressors_may_not() -> None:
    o = order_outcomes(simulate_parent_orders(500, seed=13, model="square_root"))
    one_day = o.assign(adv=2e6, daily_vol=0.02)  # one instrument-day: ADV and volatility are constants
    assert SquareRootImpact().fit(one_day).result_.n == 500
    with pytest.raises(CalibrationError, match="'quantity' is constant"):
        SquareRootImpact().fit(one_day.assign(quantity=5000.0))
