"""The service on markets other than LOBSTER equities: futures, inverse perpetuals, TAQ."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from impactlab.data import Store
from impactlab.errors import ServiceError
from impactlab.service import ServiceConfig, ServiceModels, ServiceState, create_app
from impactlab.service.models import calibrate_symbols

KEY = "test-key-0123456789abcdef"


def test_estimates_carry_the_instruments_notional(data: Path) -> None:
    models = calibrate_symbols(("ESU4", "BTCUSD_PERP:2024-08-08", "XXX:2018-01-02"), data_dir=data)
    assert set(models) == {"ESU4", "BTCUSD_PERP", "XXX"}
    cfg = ServiceConfig.from_dict({"api_keys": [KEY], "symbols": ["ESU4"]})
    store = Store(":memory:")
    state = ServiceState(cfg, store, ServiceModels(models, store))
    with TestClient(create_app(state=state)) as c:
        es = c.post("/impact/estimate", json={"symbol": "ESU4", "side": "buy", "quantity": 5, "horizon_s": 60}).json()
        assert es["notional"] == pytest.approx(5 * es["arrival_price"] * 50) and es["currency"] == "USD"
        assert es["total_usd"] == pytest.approx(es["total_bps"] * es["notional"] / 1e4)
        cm = c.post("/impact/estimate", json={"symbol": "BTCUSD_PERP", "side": "sell", "quantity": 500,
                                              "horizon_s": 60}).json()  # fmt: skip
        assert cm["notional"] == pytest.approx(50_000.0)  # 500 contracts of 100 USD, whatever the price
        assert "square-root" in cm["model"]
        bad = c.post("/impact/estimate", json={"symbol": "BTC USD", "side": "buy", "quantity": 1, "horizon_s": 60})
        assert bad.status_code == 422


def test_symbols_must_be_instruments() -> None:
    with pytest.raises(ServiceError, match="SYMBOL@VENUE"):
        ServiceConfig.from_dict({"api_keys": [KEY], "symbols": ["goog; drop"]})
    assert ServiceConfig.from_dict({"api_keys": [KEY], "symbols": ["BTCUSDT@BINANCE:2024-08-09"]}).symbols
