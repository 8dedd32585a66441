"""The dashboard end to end in headless Chromium (Playwright driving Debian's /usr/bin/chromium), against
the service under uvicorn on loopback, with a real hedging store behind its status endpoint."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from impactlab.data import Store
from impactlab.service import ServiceConfig, ServiceModels, ServiceState, create_app
from tests.service.conftest import KEY
from tests.service.test_service import W, _order

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def hedging_dir(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One short hedging scenario on the replay, in its own store."""
    from impactlab.calibration.costmodel import calibrate_instrument
    from impactlab.hedging import HedgingConfig
    from impactlab.hedging.scenario import BookSpec, ReplaySource, run_scenario
    from impactlab.rl.tasks import load_day

    d = tmp_path_factory.mktemp("hedging")
    day = load_day("GOOG", data)
    src = ReplaySource(day, start_s=600.0, end_s=1_500.0, md_step_s=5.0)
    cfg = HedgingConfig("GOOG", threshold_shares=300.0, risk_aversion=1e-3)
    run_scenario(src, cfg, d / "hedge-impact.duckdb", model=calibrate_instrument(day), book=BookSpec())
    return d


@pytest.fixture(scope="module")
def server(calibrated, hedging_dir: Path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    import uvicorn

    # a low approval threshold: the drift recalibration below is held for a person, who approves it on the page
    cfg = ServiceConfig(api_keys=(KEY,), hedging_dir=hedging_dir, drift_window=10, drift_min_orders=5,
                        approve_above=0.2)  # fmt: skip
    store = Store(":memory:")
    app = create_app(state=ServiceState(cfg, store, ServiceModels(calibrated, store)))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    port = srv.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    t.join(10)


def test_hedging_status_and_its_metrics_read_the_engine_journal(server: str, hedging_dir: Path) -> None:
    import httpx2 as httpx

    with Store(hedging_dir / "hedge-impact.duckdb", read_only=True) as s:
        n = s.count("hedges")
    st = httpx.get(f"{server}/hedging/status").json()
    row = st["stores"][0]
    assert row["store"] == "hedge-impact.duckdb" and row["hedges"] == n > 0 and row["hedges_done"] == n
    assert row["last_regime"] == "normal" and row["cost_usd"] > 0
    m = httpx.get(f"{server}/metrics").text
    assert f'impactlab_hedges{{state="done",store="hedge-impact.duckdb"}} {float(n)}' in m
    assert 'impactlab_circuit_breaker{regime="normal",source="hedge-impact.duckdb"} 1.0' in m


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)")
def test_dashboard_pages_in_headless_chromium(server: str, tmp_path: Path) -> None:
    import httpx2 as httpx
    from playwright.sync_api import sync_playwright

    for i in range(5):  # TCA the desk has submitted: five orders at three times the predicted cost
        est = httpx.post(f"{server}/impact/estimate", json={"symbol": "GOOG", "side": "buy", "quantity": 1_000,
                                                            "horizon_s": 600}).json()  # fmt: skip
        assert (
            httpx.post(f"{server}/tca", json=_order(100 + i, 1_000, 3 * est["total_bps"]), headers=W).status_code == 201
        )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1400})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        # pre-trade: type an order, submit, see the strategy table and the cost curve
        page.goto(f"{server}/dashboard/pretrade")
        page.fill("input[name=quantity]", "75000")
        page.select_option("select[name=side]", "sell")
        page.click("#submit")
        page.wait_for_selector("#strategies table tr:nth-child(4)")
        rows = page.locator("#strategies table tr").all_inner_texts()
        assert [r.split("\t")[0] for r in rows[1:]] == ["aggressive", "balanced", "passive"]
        assert page.locator("#recommended").inner_text() in ("aggressive", "balanced", "passive")
        page.wait_for_selector("#curve .main-svg")
        assert page.locator("#curve .scatterlayer .trace").count() == 4
        page.screenshot(path=str(tmp_path / "pretrade.png"), full_page=True)
        assert (tmp_path / "pretrade.png").stat().st_size > 20_000
        # a bad order shows the service's error, not a crash
        page.fill("input[name=quantity]", "1e12")
        page.click("#submit")
        page.wait_for_function("document.getElementById('status').textContent.length > 0")
        assert "quantity" in page.locator("#status").inner_text()
        # the frontier
        page.goto(f"{server}/dashboard/frontier")
        page.click("#submit")
        page.wait_for_selector("#frontier .main-svg")
        assert "optimal schedules" in page.locator("#points").inner_text()
        # recent TCA
        page.goto(f"{server}/dashboard/tca")
        page.wait_for_selector("#orders table tr:nth-child(6)")
        assert page.locator("#orders table tr").count() == 6 and page.locator("#scatter .main-svg").count() >= 1
        # model versions and drift: the drift alert recalibrated the model
        page.goto(f"{server}/dashboard/models")
        page.wait_for_selector("#versions table tr:nth-child(3)")
        text = page.locator("#versions").inner_text()
        import re

        assert re.search(r"GOOG-v2\s+pending", text) and re.search(r"GOOG-v1\s+live", text)
        assert "drift: prediction-error drift" in text
        # the held version is approved from the page, with a model-admin key typed into it
        page.wait_for_selector("#pending button.decide[data-act=approve]")
        page.click("#pending button.decide[data-act=approve]")  # without a key: refused, and the page says why
        page.wait_for_function("document.getElementById('status').textContent.length > 0")
        assert "X-API-Key" in page.locator("#status").inner_text() and page.locator("#pending").count() == 1
        page.fill("#key", KEY)
        page.dispatch_event("#key", "change")
        page.click("#pending button.decide[data-act=approve]")
        page.wait_for_function("!document.getElementById('pending') || document.getElementById('status').textContent")
        assert page.locator("#status").inner_text() == ""
        text = page.locator("#versions").inner_text()
        assert re.search(r"GOOG-v2\s+live", text) and re.search(r"GOOG-v1\s+superseded", text)
        acc = page.locator("#accuracy").inner_text()  # forecast accuracy on the service's own fills, per version
        assert "GOOG-v1" in acc and "%" in acc
        page.wait_for_selector("#psi .main-svg")
        page.screenshot(path=str(tmp_path / "models.png"), full_page=True)
        browser.close()
    assert errors == []
