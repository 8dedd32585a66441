"""Regimes: detection, ordering, labels without look-ahead, parameters per regime, the timeline plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from impactlab.calibration import order_outcomes
from impactlab.calibration.regimes import (
    RegimeDetector,
    fit_by_regime,
    label_rows,
    market_regimes,
    plot_regime_timeline,
    regime_inputs,
)
from impactlab.cli.main import app
from impactlab.data.lobster import load_lobster
from impactlab.errors import CalibrationError
from impactlab.impact import PowerLawImpact
from impactlab.testing import simulate_parent_orders
from tests.conftest import lobster_path

BAR_NS = 10_000_000_000


def _two_regime_bars(seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = np.repeat([0, 1, 0, 1, 0], [600, 200, 500, 150, 550])  # calm, stressed, ...
    n = len(truth)
    vol = np.where(truth == 1, 6.0, 1.5)
    bars = pd.DataFrame(
        {
            "bar_start_ns": np.arange(n, dtype=np.int64) * BAR_NS,
            "return_bps": rng.normal(0, vol),
            "spread_bps_mean": np.where(truth == 1, 9.0, 4.0) * rng.lognormal(0, 0.1, n),
            "depth_1_mean": np.where(truth == 1, 150.0, 400.0) * rng.lognormal(0, 0.2, n),
        }
    )
    return bars, truth


def test_detector_finds_the_regimes_and_numbers_them_by_volatility(tmp_path: Path) -> None:
    bars, truth = _two_regime_bars(1)
    inputs = regime_inputs(bars, window_bars=10)
    det = RegimeDetector.fit(inputs, n_regimes=2, seed=0)
    lab = det.predict(inputs)
    inner = np.ones(len(truth), bool)
    for edge in np.flatnonzero(np.diff(truth)) + 1:  # rolling windows blur the switches
        inner[edge : edge + 10] = False
    assert np.mean(lab[inner] == truth[inner]) > 0.97
    desc = det.describe(inputs)
    assert desc.loc[1, "rolling_vol_bps"] > 2 * desc.loc[0, "rolling_vol_bps"]
    assert desc["share"].sum() == pytest.approx(1.0)
    back = RegimeDetector.from_dict(json.loads(json.dumps(det.to_dict())))
    np.testing.assert_allclose(back.predict_proba(inputs), det.predict_proba(inputs))
    png = plot_regime_timeline(inputs, lab, tmp_path / "t.png")
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(head[16:20], "big") == 1100  # 10 in × 110 dpi


def test_labels_come_from_bars_already_closed() -> None:
    inputs = pd.DataFrame({"bar_start_ns": np.arange(5, dtype=np.int64) * BAR_NS})
    labels = np.array([0, 1, 2, 1, 0])
    t = np.array([5 * 10**9, BAR_NS, BAR_NS + 1, 3 * BAR_NS - 1, 10 * BAR_NS])
    # inside bar 0 nothing has closed; at its close bar 0 is known; within bar 2 only bars 0-1 are
    assert label_rows(t, inputs, labels, BAR_NS).tolist() == [-1, 0, 0, 1, 0]


def test_power_law_parameters_per_regime() -> None:
    calm = order_outcomes(simulate_parent_orders(3000, seed=1, model="power_law", params={"gamma": 0.2, "eta": 0.1}))
    hot = order_outcomes(simulate_parent_orders(3000, seed=2, model="power_law", params={"gamma": 0.5, "eta": 0.3}))
    data = pd.concat([calm, hot], ignore_index=True)
    regimes = np.repeat([0, 1], [len(calm), len(hot)])
    fits = fit_by_regime(PowerLawImpact, data, regimes)
    for r, truth in ((0, {"gamma": 0.2, "eta": 0.1}), (1, {"gamma": 0.5, "eta": 0.3})):
        ci = fits[r].conf_int()
        for k, v in truth.items():
            assert ci[k][0] < v < ci[k][1], (r, k, ci[k])
    with pytest.raises(CalibrationError, match="regime 1"):
        fit_by_regime(PowerLawImpact, data.iloc[:3005], regimes[:3005])


def test_bad_regime_inputs() -> None:
    bars, _ = _two_regime_bars(3)
    with pytest.raises(CalibrationError, match="need bar columns"):
        regime_inputs(bars.drop(columns="depth_1_mean"))
    inputs = regime_inputs(bars)
    with pytest.raises(CalibrationError, match="too little data"):
        RegimeDetector.fit(inputs.iloc[:30], n_regimes=3)
    with pytest.raises(CalibrationError, match="positive"):
        RegimeDetector.fit(inputs.assign(rolling_depth=0.0))


def test_real_day_has_a_stressed_open(data: Path) -> None:
    day = load_lobster(lobster_path(data, "GOOG", 10))
    det, inputs, labels = market_regimes(day)
    stressed = det.n_regimes - 1
    first_10_min = inputs["bar_start_ns"] < inputs["bar_start_ns"].iloc[0] + 600 * 10**9
    assert np.mean(labels[first_10_min] == stressed) > 0.8
    assert np.mean(labels == stressed) < 0.2
    desc = det.describe(inputs)
    assert desc.loc[stressed, "rolling_spread_bps"] > desc.loc[0, "rolling_spread_bps"]
    # fitted on the morning only, the detector still labels the afternoon (out of sample)
    det2, _, lab2 = market_regimes(day, fit_until_ns=int(inputs["bar_start_ns"].iloc[len(inputs) // 2]))
    assert len(lab2) == len(inputs) and set(np.unique(lab2)) <= set(range(det2.n_regimes))


def test_regimes_cli(data: Path, tmp_path: Path) -> None:
    r = CliRunner().invoke(
        app,
        [
            "regimes",
            "--lobster",
            str(lobster_path(data, "AMZN", 5)),
            "--blocks",
            "3000",
            "--plot",
            str(tmp_path / "r.png"),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert len(doc["regimes"]) == 3 and sum(x["share"] for x in doc["regimes"]) == pytest.approx(1.0)
    vols = [x["rolling_vol_bps"] for x in doc["regimes"]]
    assert vols[-1] == max(vols) and (tmp_path / "r.png").stat().st_size > 10_000  # the last is the stressed one
    assert doc["regimes"][0]["spread_sqrt"]["conf_int"]["c"][0] > 0
