"""Obizhaeva–Wang from the book: depth from its shape, resilience from the spread, permanent fraction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impactlab.calibration import (
    BookResilience,
    depth_profile,
    fit_book_resilience,
    resilience_events,
)
from impactlab.data.lobster import load_lobster
from impactlab.errors import CalibrationError
from impactlab.impact import ObizhaevaWangImpact, load_model
from impactlab.testing import simulate_book_resilience
from tests.conftest import lobster_path

TRUTH = {"depth": 140.0, "rho": 0.15, "permanent_fraction": 0.6}


def test_true_parameters_inside_95pct_intervals_in_90pct_of_50_seeds() -> None:
    hits = dict.fromkeys(TRUTH, 0)
    for seed in range(50):
        r = fit_book_resilience(*simulate_book_resilience(seed=seed))
        for name, true in TRUTH.items():
            lo, hi = r.conf_int(name)
            hits[name] += lo <= true <= hi
    assert all(h >= 45 for h in hits.values()), hits


def test_point_estimates_at_large_n() -> None:
    r = fit_book_resilience(*simulate_book_resilience(seed=3, n_snapshots=20_000, n_events=5_000))
    assert r.depth_shares_per_bps == pytest.approx(140.0, rel=0.02)
    assert r.rho_per_s == pytest.approx(0.15, rel=0.05)
    assert r.permanent_fraction == pytest.approx(0.6, abs=0.03)
    assert r.half_life_s == pytest.approx(np.log(2) / 0.15, rel=0.05)
    assert not r.fraction_at_bound


def test_fraction_outside_zero_one_is_clipped_and_flagged() -> None:
    r = fit_book_resilience(*simulate_book_resilience(seed=4, permanent_fraction=1.3, n_events=3000))
    assert r.permanent_fraction_raw > 1.1
    assert r.permanent_fraction == 1.0 and r.fraction_at_bound
    assert r.model().result_.params_dict()["kappa_bps"] == 0.0


def test_model_is_ow_with_lambda_f_over_q(tmp_path: Path) -> None:
    r = fit_book_resilience(*simulate_book_resilience(seed=5))
    m = r.model()
    p = m.result_.params_dict()
    assert p["lambda_bps"] + p["kappa_bps"] == pytest.approx(1 / r.depth_shares_per_bps)
    assert p["lambda_bps"] / (p["lambda_bps"] + p["kappa_bps"]) == pytest.approx(r.permanent_fraction)
    assert p["rho_per_s"] == r.rho_per_s
    # delta method: the error of λ = f/q combines both
    se = m.result_.stderr_dict()["lambda_bps"]
    want = np.hypot(
        r.permanent_fraction_se / r.depth_shares_per_bps, r.permanent_fraction * r.depth_se / r.depth_shares_per_bps**2
    )
    assert se == pytest.approx(want, rel=1e-9)
    est = m.predict_estimate({"signed_quantity": 700.0, "tau_s": 0.0})
    assert est.total_bps == pytest.approx(700.0 / r.depth_shares_per_bps / 2)
    assert est.permanent_bps == pytest.approx(700.0 * p["lambda_bps"])
    back = load_model(m.save(tmp_path / "ow.json"))
    assert isinstance(back, ObizhaevaWangImpact)
    assert back.result_.extra["method"] == "book"
    grid = pd.DataFrame({"signed_quantity": [100.0, -300.0], "tau_s": [0.0, 7.0]})
    np.testing.assert_allclose(back.predict(grid), m.predict(grid))


def test_bad_inputs_say_what_is_wrong() -> None:
    prof, ev = simulate_book_resilience(seed=6)
    with pytest.raises(CalibrationError, match="lack columns"):
        fit_book_resilience(prof, ev.drop(columns="spread_excess_bps"))
    with pytest.raises(CalibrationError, match="too few events"):
        fit_book_resilience(prof, ev[ev["event"] < 10])
    flat = ev.assign(spread_excess_bps=np.random.default_rng(0).normal(0, 1, len(ev)))
    with pytest.raises(CalibrationError, match="does not recover"):
        fit_book_resilience(prof, flat)
    with pytest.raises(CalibrationError, match="two levels"):
        fit_book_resilience(prof[prof["level"] == 1], ev)
    with pytest.raises(CalibrationError, match="0 <= f <= 1"):
        ObizhaevaWangImpact.from_estimates(
            depth_shares_per_bps=100.0,
            permanent_fraction=1.5,
            rho_per_s=0.1,
            cov=np.eye(3),
            n=10,
            resid_std_bps=1.0,
            r2=0.1,
        )


# -- real data -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real(data: Path) -> dict[str, BookResilience]:
    out = {}
    for sym, lev in (("GOOG", 10), ("GOOG", 5), ("AMZN", 5)):
        day = load_lobster(lobster_path(data, sym, lev))
        prof, ev = depth_profile(day), resilience_events(day)
        assert ev.attrs["events"] > 3000 and ev.attrs["events_without_control"] < 0.05 * ev.attrs["events"]
        out[f"{sym}{lev}"] = fit_book_resilience(prof, ev)
    return out


def test_real_average_book_is_linear_and_the_same_at_five_and_ten_levels(real: dict[str, BookResilience]) -> None:
    for r in real.values():
        assert r.depth_r2 > 0.95
        assert r.depth_se < 0.1 * r.depth_shares_per_bps
    g10, g5 = real["GOOG10"], real["GOOG5"]
    # the slope seen through five levels is the slope seen through ten: a block-shaped book
    assert abs(g10.depth_shares_per_bps - g5.depth_shares_per_bps) < 1.96 * np.hypot(g10.depth_se, g5.depth_se)


def test_real_spread_recovers_exponentially(real: dict[str, BookResilience]) -> None:
    for r in real.values():
        lo, _ = r.conf_int("rho")
        assert lo > 0
        assert 1.0 < r.half_life_s < 30.0
        assert r.spread_jump_bps > 2 * abs(r.spread_floor_bps)  # most of the widening recovers


def test_real_permanent_fraction(real: dict[str, BookResilience]) -> None:
    goog, amzn = real["GOOG10"], real["AMZN5"]
    lo, hi = goog.conf_int("permanent_fraction")
    assert lo > 0 and hi < 1 and not goog.fraction_at_bound  # part of GOOG's jump stays, part recovers
    lo, hi = amzn.conf_int("permanent_fraction")
    assert hi > 0.9  # AMZN's near quote does not fall back at all within a minute
    assert amzn.permanent_fraction == min(amzn.permanent_fraction_raw, 1.0)
