"""The pre-trade service: endpoints, validation and structured errors, auth, TCA with drift and the
recalibration hook, metrics, hedging status."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

from impactlab.errors import ServiceError
from impactlab.service import ServiceConfig, drift_report, psi
from tests.service.conftest import KEY

T0 = 1_340_287_200_000_000_000  # 2012-06-21 14:00 UTC
W = {"X-API-Key": KEY}


def _est(q: float, horizon_s: float = 600.0) -> dict[str, Any]:
    return {"symbol": "GOOG", "side": "buy", "quantity": q, "horizon_s": horizon_s}


def test_estimate_report_schedule_and_frontier_price_orders_consistently(make_client) -> None:  # type: ignore[no-untyped-def]
    c, _ = make_client()
    small = c.post(
        "/impact/estimate", json={"symbol": "GOOG", "side": "buy", "quantity": 2_000, "horizon_s": 600}
    ).json()
    big = c.post(
        "/impact/estimate", json={"symbol": "GOOG", "side": "buy", "quantity": 200_000, "horizon_s": 600}
    ).json()
    for e in (small, big):
        assert e["total_bps"] == pytest.approx(e["temporary_bps"] + e["permanent_bps"])
        z = (e["threshold_bps"] - e["total_bps"]) / e["std_bps"]
        assert e["prob_exceeds"] == pytest.approx(stats.norm.sf(z))
        q = e["quantiles_bps"]
        assert q["0.05"] < q["0.5"] < q["0.95"] and q["0.5"] == pytest.approx(e["total_bps"])
        assert e["model_version"] == "GOOG-v1"
    assert big["total_bps"] > small["total_bps"] and big["participation"] > 50 * small["participation"]
    rep = c.post("/pretrade/report", json={"symbol": "GOOG", "side": "sell", "quantity": 50_000}).json()
    assert [s["name"] for s in rep["strategies"]] == ["aggressive", "balanced", "passive"]
    hz = [s["horizon_s"] for s in rep["strategies"]]
    assert hz == sorted(hz) and len(rep["cost_curve"]) == 20 and rep["side"] == "sell"
    sch = c.post("/schedule", json={"symbol": "GOOG", "side": "buy", "quantity": 30_000, "kind": "almgren-chriss",
                                    "horizon_s": 1800, "step_s": 60, "risk_aversion": 1e-5}).json()  # fmt: skip
    h = np.array(sch["schedule"]["holdings"])
    assert h[0] == pytest.approx(30_000) and h[-1] == pytest.approx(0) and np.all(np.diff(h) <= 1e-9)
    assert h[15] < 15_000  # risk-averse: front-loaded against TWAP's half-way point
    twap = c.post("/schedule", json={"symbol": "GOOG", "side": "buy", "quantity": 30_000, "kind": "twap"}).json()
    np.testing.assert_allclose(np.diff(twap["schedule"]["holdings"]), -1_000.0)
    fr = c.post("/frontier", json={"symbol": "GOOG", "side": "buy", "quantity": 30_000, "n_points": 20}).json()
    e, sd = np.array(fr["expected_cost_bps"]), np.array(fr["timing_std_bps"])
    # more urgency: cost up (flat where the schedule barely changes), timing risk down (the forecast's own
    # uncertainty grows with the impact: the total sd is not monotone)
    assert len(e) == 20 and np.all(np.diff(e) > -1e-6) and e[-1] > e[0] + 1 and np.all(np.diff(sd) < 0)
    # the frontier and the schedule price with the same model as the estimate: TWAP over 30 minutes agrees
    tw = c.post("/schedule", json={"symbol": "GOOG", "side": "buy", "quantity": 30_000, "kind": "twap",
                                   "horizon_s": 1800, "step_s": 60}).json()  # fmt: skip
    assert fr["twap"]["expected_cost_bps"] == pytest.approx(tw["cost"]["total_bps"], rel=1e-9)
    # TWAP (the least-cost schedule, λ = 0) is the frontier's risk-neutral end: no optimal point costs less
    # (to 1e-3 bps: under the model's transient part a barely front-loaded schedule can cost a hair less)
    assert np.min(e) >= fr["twap"]["expected_cost_bps"] - 1e-3 and abs(e[0] - fr["twap"]["expected_cost_bps"]) < 1e-3


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"symbol": "GOOG", "side": "buy", "quantity": -5}, 422, "body.quantity"),
        ({"symbol": "GOOG", "side": "buy", "quantity": 1e12}, 422, "body.quantity"),
        ({"symbol": "GOOG", "side": "buy", "quantity": 1e-323}, 422, "body.quantity"),  # found by schemathesis
        ({"symbol": "GOOG", "side": "hold", "quantity": 5}, 422, "body.side"),
        ({"symbol": "goog;drop", "side": "buy", "quantity": 5}, 422, "body.symbol"),
        ({"symbol": "GOOG", "side": "buy", "quantity": 5, "horizon_s": 1}, 422, "body.horizon_s"),
        ({"symbol": "GOOG", "side": "buy", "quantity": 5, "speed": 3}, 422, "body.speed"),
        ({"symbol": "MSFT", "side": "buy", "quantity": 5}, 404, ""),
    ],
)
def test_bad_requests_get_structured_errors_naming_the_field(make_client, body: dict[str, Any], status: int,
                                                             field: str) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    c, _ = make_client()
    r = c.post("/impact/estimate", json=body)
    assert r.status_code == status
    err = r.json()["error"]
    assert err["status"] == status and err["message"]
    if field:
        assert err["details"][0]["field"] == field and field.split(".")[-1] in err["message"]
    else:
        assert "MSFT" in err["message"]


def test_body_size_limit_and_malformed_json(make_client) -> None:  # type: ignore[no-untyped-def]
    c, _ = make_client(max_body_bytes=2_000)
    big = {"symbol": "GOOG", "side": "buy", "quantity": 5, "pad": "x" * 5_000}
    r = c.post("/impact/estimate", json=big)
    assert r.status_code == 413 and r.json()["error"]["type"] == "body_too_large"
    r = c.post("/impact/estimate", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["type"] == "validation_error"

    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"symbol": "GOOG", "side": "buy", "quantity": 5, "pad": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}'

    r = c.post("/impact/estimate", content=chunks(), headers={"Content-Type": "application/json"})  # no length
    assert r.status_code == 413 and r.json()["error"]["type"] == "body_too_large"  # the red team saw 400
    small = c.post("/impact/estimate", content=iter([b'{"symbol": "GOOG", ', b'"side": "buy", "quantity": 5}']),
                   headers={"Content-Type": "application/json"})  # fmt: skip
    assert small.status_code == 200  # a chunked body under the limit is read whole and served


def _order(i: int, q: float, cost_bps: float, *, side: str = "buy", mid: float = 580.0) -> dict[str, Any]:
    """A parent worked over 10 minutes whose fills cost ``cost_bps`` against a flat mid."""
    s = 1 if side == "buy" else -1
    start = T0 + i * 900 * 10**9
    px = mid * (1 + s * cost_bps / 1e4)
    fills = [
        {"fill_id": f"f{k}", "ts_ns": start + (k + 1) * 60 * 10**9, "quantity": q / 4, "price": px} for k in range(4)
    ]
    return {"parent": {"order_id": f"P{i}", "symbol": "GOOG", "side": side, "quantity": q, "start_ns": start,
                       "end_ns": start + 600 * 10**9},
            "fills": fills, "mid_path": [[start - 10**9, mid], [start + 3_600 * 10**9, mid]]}  # fmt: skip


def test_state_changing_endpoints_need_a_valid_key(make_client) -> None:  # type: ignore[no-untyped-def]
    c, _ = make_client()
    body = _order(0, 1_000, 5.0)
    assert c.post("/tca", json=body).status_code == 401
    r = c.post("/tca", json=body, headers={"X-API-Key": "wrong-key-0123456789"})
    assert r.status_code == 403 and r.json()["error"]["message"] == "invalid API key"
    assert c.post("/models/GOOG/recalibrate", json={}, headers={"X-API-Key": KEY[:-1]}).status_code == 403
    assert c.post("/tca", json=body, headers=W).status_code == 201
    assert c.post("/tca", json=body, headers=W).status_code == 409  # the same parent twice is refused
    # reads are open by default, and need the key when configured to
    est = {"symbol": "GOOG", "side": "buy", "quantity": 100}
    assert c.post("/impact/estimate", json=est).status_code == 200
    locked, _ = make_client(keys_for_reads=True)
    assert locked.post("/impact/estimate", json=est).status_code == 401
    assert locked.get("/metrics").status_code == 401 and locked.get("/models").status_code == 401
    assert locked.post("/impact/estimate", json=est, headers=W).status_code == 200
    health = locked.get("/health")
    assert health.status_code == 200 and set(health.json()) == {"status", "symbols"}  # nothing about auth
    # no keys configured: nothing can change state, whatever is sent
    open_, _ = make_client(api_keys=[])
    r = open_.post("/tca", json=body, headers=W)
    assert r.status_code == 403 and "no API keys" in r.json()["error"]["message"]
    with pytest.raises(ServiceError, match="16 characters"):
        ServiceConfig(api_keys=("short",))


def test_tca_feeds_drift_and_the_recalibration_hook_makes_a_new_version(make_client) -> None:  # type: ignore[no-untyped-def]
    c, _ = make_client(drift_window=10, drift_min_orders=5, recalibrate_interval_s=0, approve_above=10.0)
    pred = c.post("/impact/estimate", json=_est(1_000))
    p = pred.json()["total_bps"]
    outs = []
    for i in range(5):  # realised is three times what the model predicts
        r = c.post("/tca", json=_order(i, 1_000, 3 * p), headers=W)
        assert r.status_code == 201, r.text
        outs.append(r.json())
    t = outs[0]["tca"]
    assert t["shortfall_bps"] == pytest.approx(3 * p, rel=1e-6) and outs[0]["predicted_bps"] == pytest.approx(p)
    assert all("recalibrated" not in o for o in outs[:4])  # below the minimum count, no alert
    last = outs[-1]
    assert last["drift"]["prediction_error"]["alert"] and last["drift"]["prediction_error"]["bias"] == pytest.approx(
        2.0
    )
    assert last["recalibrated"]["from"] == "GOOG-v1" and last["recalibrated"]["to"] == "GOOG-v2"
    models = c.get("/models").json()
    assert models["live"] == {"GOOG": "GOOG-v2"} and models["pending"] == []
    v2 = models["versions"][-1]
    assert v2["reason"].startswith("drift: prediction-error drift") and v2["n_obs"] == 5 and v2["status"] == "live"
    # the refit moved the parts (not one scale): the same order is priced higher, towards what it paid
    mult = v2["params"]["multipliers"]
    assert max(mult.values()) > 1.5 and len(set(round(v, 3) for v in mult.values())) == 3
    after = c.post("/impact/estimate", json=_est(1_000)).json()
    assert p < after["total_bps"] < 3 * p and after["model_version"] == "GOOG-v2"
    # every order's forecast interval and realised cost are kept, and accuracy is reported per version
    acc = {a["model_version"]: a for a in models["accuracy"]}
    assert acc["GOOG-v1"]["orders"] == 5 and acc["GOOG-v1"]["median_ratio"] == pytest.approx(3.0, rel=1e-6)
    # feature drift: orders a hundred times larger than the training window's alert on size
    for i in range(5, 10):
        r = c.post("/tca", json=_order(i, 100_000, after["total_bps"]), headers=W).json()
    by = {f["feature"]: f for f in r["drift"]["features"]}  # as the fifth large order saw it
    assert by["log_q_adv"]["psi"] > 0.25 and by["log_q_adv"]["n_reference"] == 5 and by["log_q_adv"]["alert"]
    fresh = c.get("/drift", params={"symbol": "GOOG"}).json()
    assert fresh["model_version"] == "GOOG-v3" and fresh["n_current"] == 0 and not fresh["alert"]
    assert (
        r["recalibrated"]["to"] == "GOOG-v3"
        and "feature drift: log_q_adv" in c.get("/models").json()["versions"][-1]["reason"]
    )
    # the metrics saw every order's error and the alert
    m = c.get("/metrics").text
    assert 'impactlab_prediction_error_bps_count{symbol="GOOG"} 10.0' in m
    assert 'impactlab_model_multiplier{part="sqrt",symbol="GOOG",version="GOOG-v3"}' in m
    assert 'route="/tca",status="201"' in m and 'route="/impact/estimate",status="200"' in m
    # the recent-TCA read returns what was recorded, newest last
    rec = c.get("/tca/recent", params={"limit": 3}).json()["orders"]
    assert [o["parent_order_id"] for o in rec] == ["P7", "P8", "P9"]
    # a manual recalibration refits on every order the service has priced, and is recorded
    r = c.post("/models/GOOG/recalibrate", json={"reason": "desk review"}, headers=W)
    assert r.status_code == 201 and r.json()["n_obs"] == 10
    assert c.get("/models").json()["versions"][-1]["reason"].startswith("manual: desk review")


def test_tca_validates_the_order_against_its_fills(make_client) -> None:  # type: ignore[no-untyped-def]
    c, _ = make_client()
    o = _order(0, 1_000, 5.0)
    o["fills"][0]["quantity"] = 5_000  # more than the parent
    r = c.post("/tca", json=o, headers=W)
    assert r.status_code == 422 and "more shares filled" in r.json()["error"]["message"]
    o = _order(1, 1_000, 5.0)
    o["fills"][0]["ts_ns"] = o["parent"]["start_ns"] - 1
    assert "before the parent" in c.post("/tca", json=o, headers=W).json()["error"]["message"]
    o = _order(2, 1_000, 5.0)
    del o["mid_path"]
    o["parent"]["start_ns"] = 10**18  # 2001: outside the recorded day and no path given
    r = c.post("/tca", json=o, headers=W)
    assert r.status_code == 422 and "mid_path" in r.json()["error"]["message"]


def test_psi_and_the_drift_report() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=2_000), rng.normal(size=2_000)
    assert psi(a, b) < 0.02
    assert psi(a, b + 1.0) > 0.25
    # PSI by hand on two bins: reference split at its median, current 80/20 (none outside its range)
    by_hand = 0.3 * math.log(0.8 / 0.5) + -0.3 * math.log(0.2 / 0.5)
    assert psi([0, 0, 1, 1], [0, 0, 0, 0, 1], bins=2) == pytest.approx(by_hand, abs=1e-3)
    assert psi([1.0] * 10, [5.0] * 10) > 5  # all of the current window above a constant reference
    rep = drift_report({"x": a[:200]}, {"x": a[200:400] + 2}, predicted_bps=[1.0] * 30, realised_bps=[1.1] * 30)
    assert rep.features[0].alert and not rep.error_alert and rep.error_bias == pytest.approx(0.1)
    quiet = drift_report({"x": a[:10]}, {"x": a[10:15] + 5}, min_orders=20)
    assert not quiet.alert  # too few orders to judge


# -- the red team's findings, as regressions ---------------------------------------------------------------

READER, TRADER, ADMIN = "read:reader-key-0123456789", "trade:trader-key-0123456789", "model-admin:admin-key-012345678"


def _as(entry: str) -> dict[str, str]:
    return {"X-API-Key": entry.split(":", 1)[1]}


def test_scoped_keys_read_trade_and_model_admin(make_client) -> None:  # type: ignore[no-untyped-def]
    c, _ = make_client(api_keys=[READER, TRADER, ADMIN], keys_for_reads=True)
    est = _est(100)
    assert c.post("/impact/estimate", json=est, headers=_as(READER)).status_code == 200
    r = c.post("/impact/estimate", json=est, headers=_as(TRADER))
    assert r.status_code == 403 and "'read' scope" in r.json()["error"]["message"]
    r = c.post("/tca", json=_order(0, 1_000, 5.0), headers=_as(READER))
    assert r.status_code == 403 and "'trade' scope" in r.json()["error"]["message"]
    assert c.post("/tca", json=_order(0, 1_000, 5.0), headers=_as(TRADER)).status_code == 201
    r = c.post("/models/GOOG/recalibrate", json={}, headers=_as(TRADER))  # a trade key cannot move the model
    assert r.status_code == 403 and "'model-admin' scope" in r.json()["error"]["message"]
    with pytest.raises(ServiceError, match="unknown API key scope"):
        ServiceConfig(api_keys=("root:abcdefghijklmnopqrs",))


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (lambda o: [f.update(price=1.0) for f in o["fills"]], "bps from the mid"),  # buying at $1 against $580
        (lambda o: o["fills"][0].update(fee=10_000_000.0), "of the fill's notional"),  # a $10M fee
    ],
)
def test_implausible_fills_are_refused_and_cannot_move_the_model(make_client, edit: Any, why: str) -> None:  # type: ignore[no-untyped-def]
    c, state = make_client()
    body = _order(0, 1_000, 5.0)
    edit(body)
    r = c.post("/tca", json=body, headers=W)
    assert r.status_code == 422 and why in r.json()["error"]["message"]
    assert state.store.count("parent_orders") == 0 and state.store.count("fills") == 0  # nothing recorded


def test_a_large_recalibration_is_held_for_approval_and_at_most_one_a_minute(make_client) -> None:  # type: ignore[no-untyped-def]
    c, _ = make_client(drift_window=10, drift_min_orders=5, api_keys=[KEY, ADMIN])
    p = c.post("/impact/estimate", json=_est(1_000)).json()["total_bps"]
    for i in range(5):  # realised five times the prediction: the red team's 5× move
        c.post("/tca", json=_order(i, 1_000, 5 * p), headers=W)
    m = c.get("/models").json()
    assert m["pending"] == ["GOOG-v2"] and m["live"] == {"GOOG": "GOOG-v1"}
    assert "reference order" in m["versions"][-1]["reason"]
    # the live version keeps serving while the change waits
    assert c.post("/impact/estimate", json=_est(1_000)).json()["total_bps"] == pytest.approx(p)
    r = c.post("/models/GOOG/recalibrate", json={"reason": "again"}, headers=W)
    assert r.status_code == 422 and "held for approval" in r.json()["error"]["message"]
    # approval needs a model-admin key; then the new version serves
    assert c.post("/models/GOOG-v2/approve", headers=_as(TRADER)).status_code in (401, 403)
    r = c.post("/models/GOOG-v2/approve", headers=_as(ADMIN))
    assert r.status_code == 200 and r.json()["live"] == "GOOG-v2"
    assert c.post("/impact/estimate", json=_est(1_000)).json()["total_bps"] > 1.5 * p
    assert c.post("/models/GOOG-v2/approve", headers=_as(ADMIN)).status_code == 409  # not pending any more
    r = c.post("/models/GOOG/recalibrate", json={"reason": "again"}, headers=W)
    assert r.status_code == 429 and "at most once every 60 s" in r.json()["error"]["message"]
    assert len(c.get("/models").json()["versions"]) == 2  # not 19 versions in 18 seconds


def test_writes_are_rate_limited_per_key(make_client) -> None:  # type: ignore[no-untyped-def]
    c, _ = make_client(writes_per_minute=3)
    codes = [c.post("/tca", json=_order(i, 1_000, 5.0), headers=W).status_code for i in range(5)]
    assert codes == [201, 201, 201, 429, 429]


def test_a_boolean_or_string_quantity_is_refused_not_read_as_a_number(make_client) -> None:  # type: ignore[no-untyped-def]
    c, _ = make_client()
    for q in (True, "100"):
        r = c.post("/impact/estimate", json={**_est(1), "quantity": q})
        assert r.status_code == 422 and r.json()["error"]["details"][0]["field"].endswith("quantity")


def test_200_requests_in_flight_are_all_served_and_health_is_not_stuck_behind_them(make_client) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    import httpx2 as httpx

    from impactlab.service import create_app

    _, state = make_client()
    app = create_app(state=state)
    done: list[tuple[str, int]] = []

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as c:

            async def estimate(i: int) -> None:
                r = await c.post("/impact/estimate", json=_est(100 + 37 * i, 300 + 30 * i))
                done.append(("estimate", r.status_code))

            async def health() -> None:
                await asyncio.sleep(0.02)  # once the estimates are in flight
                r = await c.get("/health")
                done.append(("health", r.status_code))

            await asyncio.gather(*(estimate(i) for i in range(200)), health())

    asyncio.run(go())
    assert len(done) == 201 and {code for _, code in done} == {200}  # every one answered, no 5xx
    at = [k for k, _ in done].index("health")
    assert at < 100, at  # the health check came back while most estimates were still being worked
