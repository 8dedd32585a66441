"""schemathesis against the service's OpenAPI spec: no generated input, valid or not, with or without a key,
gets a 5xx; every response has a structured error body when it is an error."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from impactlab.data import Store
from impactlab.service import ServiceConfig, ServiceModels, ServiceState, create_app
from tests.service.conftest import KEY


@pytest.fixture(scope="module")
def api_schema(data: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from impactlab.service.models import calibrate_symbols

    cfg = ServiceConfig(api_keys=(KEY,), hedging_dir=tmp_path_factory.mktemp("hedging"))
    store = Store(":memory:")
    state = ServiceState(cfg, store, ServiceModels(calibrate_symbols(("GOOG",), data_dir=data), store))
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(state=state))


def test_no_generated_request_gets_a_server_error(api_schema) -> None:  # type: ignore[no-untyped-def]
    from hypothesis import given

    ops = [r.ok() for r in api_schema.get_all_operations()]
    assert len(ops) >= 10  # every documented endpoint is fuzzed
    for op in ops:

        @given(case=op.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
        def run(case) -> None:  # type: ignore[no-untyped-def]
            for headers in ({"X-API-Key": KEY}, {}):
                r = case.call(headers=headers)
                assert r.status_code < 500, f"{case.method} {case.path} -> {r.status_code}: {r.text[:300]}"
                if r.status_code >= 400:
                    err = r.json()["error"]
                    assert err["status"] == r.status_code and err["message"]

        run()
