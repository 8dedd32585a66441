from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from impactlab.calibration.costmodel import InstrumentModel
from impactlab.data import Store
from impactlab.service import ServiceConfig, ServiceModels, ServiceState, create_app
from impactlab.service.models import calibrate_symbols

KEY = "test-key-0123456789abcdef"


@pytest.fixture(scope="session")
def calibrated(data: Path) -> dict[str, InstrumentModel]:
    return calibrate_symbols(("GOOG",), data_dir=data)


@pytest.fixture
def make_client(calibrated: dict[str, InstrumentModel], tmp_path: Path):  # type: ignore[no-untyped-def]
    """A client on a fresh store; settings as keyword arguments."""
    ticks = itertools.count(1)

    def make(**settings: Any) -> tuple[TestClient, ServiceState]:
        cfg = ServiceConfig.from_dict({"api_keys": [KEY], "hedging_dir": tmp_path / "hedging", **settings})
        store = Store(":memory:")
        clock = lambda: 1_800_000_000_000_000_000 + next(ticks) * 1_000_000  # noqa: E731 - a test clock
        state = ServiceState(
            cfg, store, ServiceModels(calibrated, store, clock=clock, approve_above=cfg.approve_above), clock=clock
        )
        return TestClient(create_app(state=state)), state

    return make
