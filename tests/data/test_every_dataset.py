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
