"""Every instrument-day in the shared data goes through the whole loop: load → features → calibrate →
pre-trade → execute on its replay → TCA (full days cut to their first 45 minutes to keep the suite short)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from impactlab.data import scan

NS = 1_000_000_000


def _entries() -> list[Any]:
    from impactlab.config import data_dir

    return list(scan(data_dir()).entries) if data_dir().is_dir() else []


def _short(day: Any) -> Any:
    if day.span_s > 3600:
        return day.window(day.start_ns, day.start_ns + 45 * 60 * NS)
    return day


@pytest.mark.parametrize("entry", _entries(), ids=lambda e: e.key)
def test_the_whole_loop_runs_on_every_instrument_day(entry: Any, tmp_path: Path, data: Path) -> None:
    from impactlab.calibration import calibrate, day_source
    from impactlab.cli.execution import build_execute, build_tca
    from impactlab.cli.schedules import build_pretrade
    from impactlab.features import market_features

    day = _short(entry.load())
    assert day.symbol == entry.symbol and day.venue == entry.venue and len(day.book) > 0
    fs = market_features(day, bar_s=max(min(10.0, day.session_s / 50), 0.01))
    assert fs.events.num_rows == len(day) and fs.bars.num_rows > 0
    src = day_source(day, bar_s=max(min(10.0, day.session_s / 50), 0.01))
    assert ("book" in src.builders) == (day.depth >= 2)
    fitted = []
    for model in ("sqrt", "ofi", "propagator"):
        try:
            fitted.append(calibrate(model, src, n_splits=2)["model"])
        except Exception as exc:
            from impactlab.errors import ImpactLabError

            assert isinstance(exc, ImpactLabError), exc
    if day.session_s > 600:
        assert fitted, "a day with ten minutes or more of data calibrates at least one model"
    lot = day.spec.lot_size
    qty = max(round(0.002 * day.volume() / lot) * lot, lot)
    rep = build_pretrade(day.symbol, 1, qty, day=day)
    d = rep.to_dict()
    assert d["instrument"]["symbol"] == day.symbol and d["notional"] > 0
    assert all(np.isfinite(s["total_bps"]) and s["total_bps"] >= 0 for s in d["strategies"])
    assert any(n.startswith("instrument:") for n in d["notes"])
    horizon = min(600.0, 0.3 * day.session_s)
    store = tmp_path / "s.duckdb"
    tca, details = build_execute(
        symbol=day.symbol, day=day, quantity=qty, horizon_s=horizon, step_s=horizon / 5, venue="replay",
        store_path=store, order_id=f"e2e-{entry.key}",
    )  # fmt: skip
    assert tca.filled > 0 and tca.filled <= qty + 1e-9
    assert details["source_format"] == day.source and details["instrument"]["venue"] == day.venue
    again = build_tca(store, data=data)
    assert len(again) == 1 and again[0].filled == pytest.approx(tca.filled)


@pytest.mark.parametrize(("symbol", "date"), [("ESU4", None), ("BTCUSD_PERP", "2024-08-08")])
def test_hedging_money_uses_the_multiplier_and_the_inverse_contract_value(
    symbol: str, date: str | None, tmp_path: Path, data: Path
) -> None:
    from impactlab.cli.hedging import build_hedge_scenario
    from impactlab.data import load_market

    day = load_market(symbol, date, data=data)
    results, meta = build_hedge_scenario(day=day, out_dir=tmp_path, risk_aversions=(1e-3,), twap_horizons_s=(60.0,),
                                         contracts=-200.0)  # fmt: skip
    assert meta["instrument"]["symbol"] == symbol
    traded = [r for r in results if r.hedges]
    assert traded, "the default threshold makes the book hedge at least once"
    for r in traded:
        raw = [(h["realised_cost_usd"] or 0.0, h["arrival_mid"]) for h in r.hedges]
        if day.spec.inverse:  # in the coin: c · CV / a²
            assert r.total_cost_usd == pytest.approx(sum(c * 100.0 / a**2 for c, a in raw))
            assert any("in BTC" in n for n in meta["notes"])
        else:  # in USD: c · 50
            assert r.total_cost_usd == pytest.approx(50.0 * sum(c for c, _ in raw))
