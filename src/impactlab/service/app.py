"""The FastAPI application: pre-trade estimates and reports, schedules, the frontier, TCA of submitted fills
(which feeds the drift monitor and the recalibration hook), model versions, hedging-engine status,
Prometheus metrics and the dashboard.

Every endpoint that changes state needs an API key in ``X-API-Key``; read endpoints need one when
``keys_for_reads`` is set.  Bodies are bounded before they are parsed, every field is validated, and every
error comes back as ``{"error": {"status", "type", "message", "details"}}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from impactlab.data import Fill, ParentOrder, Side, Store
from impactlab.errors import ImpactLabError, ServiceError
from impactlab.service.config import API_KEY_HEADER, ServiceConfig
from impactlab.service.drift import drift_report
from impactlab.service.metrics import ServiceMetrics
from impactlab.service.models import ServiceModels
from impactlab.service.schemas import (
    EstimateRequest,
    EstimateResponse,
    FrontierRequest,
    PreTradeRequest,
    RecalibrateRequest,
    ScheduleRequest,
    TCARequest,
)

__all__ = ["ServiceState", "create_app"]

log = logging.getLogger(__name__)
NS = 1_000_000_000
_SIDE = {"buy": 1, "sell": -1}


class ApiError(Exception):
    """An error with its HTTP status, rendered as the structured error body."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def _body(status: int, kind: str, message: str, details: Any = None) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "type": kind, "message": message, "details": details or []}},
                        status_code=status)  # fmt: skip


class ServiceState:
    """What the app serves from: the config, the store, the models, an optional live hedging engine."""

    def __init__(self, config: ServiceConfig, store: Store, models: ServiceModels, *, engine: Any = None,
                 clock: Callable[[], int] = time.time_ns) -> None:  # fmt: skip
        self.config = config
        self.store = store
        self.models = models
        models.versions_table.approve_above = float(config.approve_above)  # the service's config decides
        self.engine = engine
        self.clock = clock
        self.metrics = ServiceMetrics(self)
        self.alerted: set[str] = set()  # model versions whose drift alert already fired
        self._paths: dict[str, Any] = {}
        self._hedging_cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self.bus_tca: Any = None  # BusTcaStats while the service consumes the bus
        self.store_lock = threading.RLock()  # one DuckDB connection, used from the worker threads in turn
        self.writes: dict[bytes, list[int]] = {}  # per key: times of its recent state-changing requests

    @classmethod
    def start(cls, config: ServiceConfig, **kw: Any) -> ServiceState:
        """Open the store and calibrate the models (seconds per symbol)."""
        from impactlab.config import default_store_path

        path = config.store_path or Path(default_store_path()).with_name("service.duckdb")
        store = Store(path)
        models = ServiceModels.calibrate(config.symbols, store, data_dir=config.data_dir,
                                         approve_above=config.approve_above)  # fmt: skip
        return cls(config, store, models, **kw)

    # -- market paths -------------------------------------------------------------------------------------

    def mid_at(self, symbol: str) -> Callable[[int], float]:
        if symbol not in self._paths:
            from impactlab.tca import MarketPath

            self._paths[symbol] = MarketPath(self.models.get(symbol).day)
        return self._paths[symbol].mid_at  # type: ignore[no-any-return]

    # -- drift ----------------------------------------------------------------------------------------------

    def drift(self, symbol: str) -> dict[str, Any]:
        """Drift of the orders priced by the live version against those of the versions before it."""
        m = self.models.get(symbol)
        c = self.config
        ref = self._priced(symbol, before_ns=m.created_ns, limit=c.drift_window)
        cur = self._priced(symbol, since_ns=m.created_ns, limit=c.drift_window)

        def feats(rs: list[dict[str, Any]]) -> dict[str, list[float]]:
            return {k: [r[k] for r in rs] for k in ("log_q_adv", "participation", "log_horizon_s")}

        rep = drift_report(
            feats(ref), feats(cur), reference_errors=[r["realised_bps"] - r["predicted_bps"] for r in ref],
            predicted_bps=[r["predicted_bps"] for r in cur], realised_bps=[r["realised_bps"] for r in cur],
            min_orders=c.drift_min_orders, psi_alert=c.psi_alert, ks_alpha=c.ks_alpha,
            error_bias_alert=c.error_bias_alert,
        )  # fmt: skip
        return {"symbol": symbol, "model_version": m.version, **rep.to_dict()}

    def _priced(self, symbol: str, *, since_ns: int | None = None, before_ns: int | None = None,
                limit: int = 5_000) -> list[dict[str, Any]]:  # fmt: skip
        """The newest ``limit`` TCA'd orders of ``symbol`` recorded in [``since_ns``, ``before_ns``) with the
        service's prediction and their features, oldest first (bounded reads by key and time: a request's
        cost does not grow with the store)."""
        m = self.models.get(symbol)
        where = "symbol = ? AND model LIKE ?"
        params: list[Any] = [symbol, f"{symbol}-v%"]
        if since_ns is not None:
            where, params = where + " AND ts_ns >= ?", [*params, int(since_ns)]
        if before_ns is not None:
            where, params = where + " AND ts_ns < ?", [*params, int(before_ns)]
        preds = self.store.read("cost_predictions", where=where, params=params, order_by="ts_ns DESC",
                                limit=limit).to_pylist()  # fmt: skip
        if not preds:
            return []
        ids = sorted({p["parent_order_id"] for p in preds})
        marks = ", ".join("?" * len(ids))
        parents = {r["order_id"]: r for r in self.store.read("parent_orders", where=f"order_id IN ({marks})",
                                                             params=ids).to_pylist()}  # fmt: skip
        mk = m.market(1)
        out = []
        for p in sorted(preds, key=lambda r: r["ts_ns"]):
            po = parents.get(p["parent_order_id"])
            if po is None:
                continue
            h = max((po["end_ns"] - po["start_ns"]) / NS, 1.0)
            vol = float(np.diff(mk.volume_curve.cumulative(np.array([mk.start_s, mk.start_s + h])))[0]) * mk.adv
            out.append({**p, "log_q_adv": math.log10(po["quantity"] / mk.adv), "log_horizon_s": math.log10(h),
                        "participation": po["quantity"] / vol if vol > 0 else float("nan")})  # fmt: skip
        return out


@contextlib.asynccontextmanager
async def _bus_consumer(s: ServiceState, url: str | None) -> AsyncIterator[None]:
    """With a bus URL: TCA of the live engine's finished hedges in the background while the app runs."""
    if url is None:
        yield
        return
    from impactlab.bus import NatsBus
    from impactlab.service.bus import BusTcaStats, tca_from_bus

    bus = await NatsBus.connect(url)
    stop = asyncio.Event()
    s.bus_tca = BusTcaStats()
    task = asyncio.create_task(tca_from_bus(s, bus, stats=s.bus_tca, stop=stop))
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, 10.0)
        except Exception:
            log.exception("the bus consumer did not stop cleanly")
        await bus.close()


def create_app(config: ServiceConfig | None = None, *, state: ServiceState | None = None) -> FastAPI:
    """The service.  ``state`` (tests, embedding) is used as given; otherwise one is started from ``config``
    when the app starts."""
    from impactlab.service.dashboard import DASHBOARD_JS, PLOTLY_JS, dashboard_router

    cfg = state.config if state is not None else (config or ServiceConfig.from_env())
    holder: dict[str, ServiceState] = {}
    if state is not None:
        holder["s"] = state

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if "s" not in holder:
            holder["s"] = ServiceState.start(cfg)
        async with _bus_consumer(holder["s"], cfg.bus_url):
            yield
        if pool is not None:
            pool.shutdown(wait=False)
        if state is None:
            holder["s"].store.close()

    app = FastAPI(
        title="impactlab pre-trade service",
        version="1",
        description="Pre-trade impact estimates, reports and schedules, TCA, model versions, drift, hedging status.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.add_middleware(_BodyLimit, max_bytes=cfg.max_body_bytes)
    app.add_middleware(_Timing, holder=holder)

    def st() -> ServiceState:
        return holder["s"]

    keys = cfg.key_scopes()
    pool = ThreadPoolExecutor(cfg.workers, thread_name_prefix="impactlab-api") if cfg.workers else None

    async def off(fn: Callable[[], Any], *, store: bool = False) -> Any:
        """Run the CPU (and store) work of a request on a worker thread: the event loop stays free."""
        if store:
            inner = fn

            def fn() -> Any:
                with st().store_lock:
                    return inner()

        if pool is None:
            return fn()
        return await asyncio.get_running_loop().run_in_executor(pool, fn)

    def _check_key(request: Request, scope: str) -> bytes:
        given = request.headers.get(API_KEY_HEADER)
        if not keys:
            raise ApiError(403, "forbidden", "no API keys are configured: this endpoint is disabled")
        if not given:
            raise ApiError(401, "unauthorized", f"missing {API_KEY_HEADER} header")
        raw = given.encode()
        found = None
        for k, scopes in keys:  # every key compared, in constant time each
            if hmac.compare_digest(raw, k):
                found = scopes
        if found is None:
            raise ApiError(403, "forbidden", "invalid API key")
        if scope not in found:
            raise ApiError(403, "forbidden", f"this API key lacks the {scope!r} scope")
        return raw

    def _rate(key: bytes) -> None:
        now = time.monotonic_ns()
        recent = [t for t in st().writes.get(key, []) if now - t < 60 * NS]
        if len(recent) >= cfg.writes_per_minute:
            raise ApiError(429, "rate_limited", f"more than {cfg.writes_per_minute} state-changing requests a minute "
                           "from this key")  # fmt: skip
        st().writes[key] = [*recent, now]

    def trade_key(request: Request) -> None:
        _rate(_check_key(request, "trade"))

    def admin_key(request: Request) -> None:
        _rate(_check_key(request, "model-admin"))

    def read_key(request: Request) -> None:
        if cfg.keys_for_reads:
            _check_key(request, "read")

    # -- errors -----------------------------------------------------------------------------------------------
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _body(exc.status, exc.kind, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"field": ".".join(str(x) for x in e.get("loc", ())), "message": e.get("msg", ""),
                    "value": repr(e.get("input"))[:200]} for e in exc.errors()]  # fmt: skip
        first = details[0] if details else {"field": "", "message": "invalid request"}
        return _body(422, "validation_error", f"{first['field']}: {first['message']}", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _body(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(ImpactLabError)
    async def _domain(request: Request, exc: ImpactLabError) -> JSONResponse:
        unknown = isinstance(exc, ServiceError) and "unknown symbol" in str(exc)
        return _body(404 if unknown else 422, type(exc).__name__, str(exc))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _body(500, "internal_error", "internal error (logged)")

    # -- read endpoints ---------------------------------------------------------------------------------------
    @app.get("/health", tags=["service"])
    async def health() -> dict[str, Any]:
        s = st()  # nothing about keys or auth: an unauthenticated probe learns only that the service is up
        return {"status": "ok", "symbols": sorted(s.models.models)}

    @app.post("/impact/estimate", response_model=EstimateResponse, tags=["pre-trade"], dependencies=[Depends(read_key)])
    async def estimate(req: EstimateRequest) -> dict[str, Any]:
        # a millisecond of work: answered on the loop (a hop to a worker thread costs more than it frees: the
        # p99 at 500 requests/s on one core went from 2.9 to 27 ms when it took one; BENCHMARKS.md)
        s = st()
        return s.models.estimate(req.symbol, _SIDE[req.side], req.quantity, req.horizon_s, req.threshold_bps)

    @app.post("/pretrade/report", tags=["pre-trade"], dependencies=[Depends(read_key)])
    async def pretrade_report(req: PreTradeRequest) -> dict[str, Any]:
        return await off(lambda: _pretrade_report(req))  # type: ignore[no-any-return]

    def _pretrade_report(req: PreTradeRequest) -> dict[str, Any]:
        from impactlab.schedules import pretrade

        s = st()
        m = s.models.get(req.symbol)
        rep = pretrade(req.quantity, side=_SIDE[req.side], model=m,
                       market=m.market(_SIDE[req.side]), horizon_s=req.horizon_s, urgency=req.urgency,
                       threshold_bps=req.threshold_bps, max_participation=req.max_participation,
                       model_name=f"{m.source}: {m.label} ({m.version})")  # fmt: skip
        out = rep.to_dict()
        for row in out["strategies"]:
            row.pop("schedule", None)
        out["model_version"] = m.version
        return _json(out)

    @app.post("/schedule", tags=["pre-trade"], dependencies=[Depends(read_key)])
    async def schedule(req: ScheduleRequest) -> dict[str, Any]:
        return await off(lambda: _schedule(req))  # type: ignore[no-any-return]

    def _schedule(req: ScheduleRequest) -> dict[str, Any]:
        from impactlab.schedules.volume import pov, twap, vwap

        s = st()
        m = s.models.get(req.symbol)
        side = _SIDE[req.side]
        mk = m.market(side)
        n = max(round(req.horizon_s / req.step_s), 1)
        if n > 2_000:
            raise ApiError(422, "validation_error", f"horizon_s / step_s gives {n} steps (at most 2,000)")
        if req.kind == "almgren-chriss":
            ac = m.linearised(req.quantity, req.horizon_s, n, side, mk)
            sch = ac.solve(req.risk_aversion) if n > 1 else ac.twap()
            sch = _at(sch, mk.start_s)
        elif req.kind == "twap":
            sch = twap(req.quantity, req.horizon_s, step_s=req.horizon_s / n, start_s=mk.start_s, side=side)
        elif req.kind == "vwap":
            sch = vwap(req.quantity, req.horizon_s, curve=mk.volume_curve, daily_volume=mk.adv,
                       step_s=req.horizon_s / n, start_s=mk.start_s, side=side)  # fmt: skip
        else:
            sch = pov(req.quantity, req.participation, curve=mk.volume_curve, daily_volume=mk.adv,
                      step_s=req.step_s, start_s=mk.start_s, max_horizon_s=5 * mk.session_s, side=side)  # fmt: skip
        if sch.n_steps > 10_000:
            raise ApiError(422, "validation_error", f"the schedule would have {sch.n_steps} steps (at most 10,000)")
        c = m.schedule_cost(sch, mk)
        return _json({"schedule": sch.summary(), "cost": {"temporary_bps": c.temporary, "permanent_bps": c.permanent,
                      "total_bps": c.total, "std_bps": c.std, "horizon_free_bps": c.horizon_free,
                      "parts_bps": dict(c.parts)}, "model_version": m.version,
                      "model": m.label})  # fmt: skip

    @app.post("/frontier", tags=["pre-trade"], dependencies=[Depends(read_key)])
    async def frontier(req: FrontierRequest) -> dict[str, Any]:
        return await off(lambda: _frontier(req))  # type: ignore[no-any-return]

    def _frontier(req: FrontierRequest) -> dict[str, Any]:
        m = st().models.get(req.symbol)
        side = _SIDE[req.side]
        mk = m.market(side)
        ac = m.linearised(req.quantity, req.horizon_s, req.n_steps, side, mk)
        f = ac.frontier(n_points=req.n_points)
        # each trajectory's shape comes from the linearised problem; its cost and risk from the model itself
        costs = [m.schedule_cost(_at(f.schedule(i), mk.start_s), mk) for i in range(len(f))]
        twap = m.schedule_cost(_at(ac.twap(), mk.start_s), mk)
        return _json({
            "symbol": req.symbol, "quantity": req.quantity, "horizon_s": req.horizon_s,
            "risk_aversion": f.risk_aversion.tolist(), "kappa": f.kappa.tolist(),
            "expected_cost_bps": [c.total for c in costs], "std_bps": [c.std for c in costs],
            "timing_std_bps": [c.timing_std for c in costs], "impact_std_bps": [c.impact_std for c in costs],
            "twap": {"expected_cost_bps": twap.total, "std_bps": twap.std},
            "model_version": m.version, "model": m.label,
            "note": "trajectories of the Almgren–Chriss problem linearised from the model at this order's TWAP; "
                    "each priced by the model",
        })  # fmt: skip

    @app.get("/tca/recent", tags=["tca"], dependencies=[Depends(read_key)])
    async def tca_recent(limit: int = 50) -> dict[str, Any]:
        if not 1 <= limit <= 1_000:
            raise ApiError(422, "validation_error", f"limit: must be in [1, 1000], got {limit}")
        rows = await off(lambda: st().store.read("cost_predictions", order_by="ts_ns DESC", limit=limit).to_pylist(),
                         store=True)  # fmt: skip
        return _json({"orders": rows[::-1]})

    @app.get("/models", tags=["models"], dependencies=[Depends(read_key)])
    async def models() -> dict[str, Any]:
        s = st()

        def read() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            from impactlab.calibration.costmodel import accuracy

            for sym in s.models.models:
                s.models.refresh(sym)
            rows = s.store.read("cost_predictions", order_by="ts_ns DESC", limit=5_000).to_pylist()
            return s.models.versions(), accuracy(rows)

        versions, acc = await off(read, store=True)
        return _json({"live": {k: m.version for k, m in s.models.models.items()}, "versions": versions,
                      "pending": [v["version"] for v in versions if v["status"] == "pending"],
                      "accuracy": acc})  # fmt: skip

    @app.get("/drift", tags=["models"], dependencies=[Depends(read_key)])
    async def drift(symbol: str = "GOOG") -> dict[str, Any]:
        return _json(await off(lambda: st().drift(symbol), store=True))

    @app.get("/hedging/status", tags=["hedging"], dependencies=[Depends(read_key)])
    async def hedging_status() -> dict[str, Any]:
        return _json(await off(lambda: hedging_summary(st())))

    @app.get("/metrics", tags=["service"], dependencies=[Depends(read_key)], response_class=PlainTextResponse)
    async def metrics() -> Response:
        body, ctype = await off(st().metrics.render, store=True)
        return Response(body, media_type=ctype)

    @app.get("/static/plotly.min.js", include_in_schema=False)
    async def plotly_js() -> Response:
        return Response(PLOTLY_JS(), media_type="application/javascript", headers={"Cache-Control": "max-age=86400"})

    @app.get("/static/dashboard.js", include_in_schema=False)
    async def dashboard_js() -> Response:
        return Response(DASHBOARD_JS(), media_type="application/javascript")

    # -- state-changing endpoints --------------------------------------------------------------------------
    @app.post("/tca", tags=["tca"], dependencies=[Depends(trade_key)], status_code=201)
    async def tca(req: TCARequest) -> dict[str, Any]:
        return _json(await off(lambda: submit_tca(st(), req), store=True))

    @app.post("/models/{symbol}/recalibrate", tags=["models"], dependencies=[Depends(admin_key)], status_code=201)
    async def recalibrate(symbol: str, req: RecalibrateRequest) -> dict[str, Any]:
        return await off(lambda: _recalibrate(symbol, req), store=True)  # type: ignore[no-any-return]

    def _recalibrate(symbol: str, req: RecalibrateRequest) -> dict[str, Any]:
        s = st()
        live = s.models.get(symbol)
        _recalibration_allowed(s, live)
        rows = s._priced(symbol)
        m = s.models.recalibrate(symbol, rows, reason=f"manual: {req.reason}")
        return {
            "symbol": symbol,
            "version": m.version,
            "status": m.status,
            "multipliers": dict(m.multipliers),
            "n_obs": m.n_obs,
            "reason": m.reason,
        }

    @app.post("/models/{version}/approve", tags=["models"], dependencies=[Depends(admin_key)])
    async def approve(version: str) -> dict[str, Any]:
        return await off(lambda: _decide(version, True), store=True)  # type: ignore[no-any-return]

    @app.post("/models/{version}/reject", tags=["models"], dependencies=[Depends(admin_key)])
    async def reject(version: str) -> dict[str, Any]:
        return await off(lambda: _decide(version, False), store=True)  # type: ignore[no-any-return]

    def _decide(version: str, approve: bool) -> dict[str, Any]:
        from impactlab.errors import CalibrationError

        s = st()
        try:
            if approve:
                m = s.models.approve(version)
                return {"version": version, "status": "live", "live": m.version}
            row = s.models.versions_table.reject(version)
        except CalibrationError as exc:
            raise ApiError(404 if "no model version" in str(exc) else 409, "conflict", str(exc)) from exc
        return {"version": version, "status": row["status"]}

    app.include_router(dashboard_router(lambda: sorted(st().models.models)))
    return app


def _recalibration_allowed(s: ServiceState, live: Any) -> None:
    """At most one recalibration of a symbol per ``recalibrate_interval_s`` (429 otherwise)."""
    age_s = (int(s.clock()) - int(live.created_ns)) / NS
    if live.n_obs > 0 and age_s < s.config.recalibrate_interval_s:
        raise ApiError(429, "rate_limited", f"{live.version} was made {age_s:.0f} s ago; a symbol is recalibrated at "
                       f"most once every {s.config.recalibrate_interval_s:g} s")  # fmt: skip


def _json(x: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = _finite(x)
    return out


def _at(s: Any, start_s: float) -> Any:
    """A schedule from the optimiser (times from 0) placed at the market's arrival time."""
    from impactlab.schedules import Schedule

    return Schedule(s.times + start_s, s.holdings, s.trades, None, s.side, s.time_unit, s.strategy, dict(s.params))


def _finite(x: Any) -> Any:
    """JSON-safe: NaN and infinities become null (a dict stays a dict)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    if isinstance(x, np.floating | np.integer):
        return _finite(x.item())
    return x


def submit_tca(s: ServiceState, req: TCARequest) -> dict[str, Any]:
    """Analyse a parent's fills against the service's estimate, record everything, update drift, and call the
    recalibration hook when drift alerts."""
    from impactlab.tca import analyse, record_tca

    p = req.parent
    sym = p.symbol
    s.models.get(sym)
    m = s.models.refresh(sym)  # an approval made elsewhere (the CLI, another worker) is served from here on
    if p.end_ns < p.start_ns:
        raise ApiError(422, "validation_error", "parent.end_ns: must be >= parent.start_ns")
    if any(f.ts_ns < p.start_ns for f in req.fills):
        raise ApiError(422, "validation_error", "fills: a fill is before the parent's start_ns")
    if sum(f.quantity for f in req.fills) > p.quantity * (1 + 1e-9):
        raise ApiError(422, "validation_error", "fills: more shares filled than the parent's quantity")
    if len({f.fill_id for f in req.fills}) != len(req.fills):
        raise ApiError(422, "validation_error", "fills: fill_id values must be unique")
    side = _SIDE[p.side]
    parent = ParentOrder(p.order_id, sym, Side(side), p.quantity, p.start_ns, p.end_ns)
    fills = [Fill(f"{p.order_id}:{f.fill_id}", f"{p.order_id}-ext", p.order_id, sym, Side(side), f.quantity, f.price,
                  f.ts_ns, f.venue, f.liquidity, f.fee) for f in req.fills]  # fmt: skip
    if req.mid_path is not None:
        ts = np.array([t for t, _ in req.mid_path], np.int64)
        mids = np.array([v for _, v in req.mid_path], float)
        if np.any(np.diff(ts) < 0):
            raise ApiError(422, "validation_error", "mid_path: times must not decrease")

        def path_mid(t: int) -> float:
            k = int(np.searchsorted(ts, t, side="right")) - 1
            return float(mids[k]) if k >= 0 else float("nan")

        mid_at: Callable[[int], float] = path_mid
    else:
        day = m.day
        if not day.ts_ns[0] <= p.start_ns <= day.ts_ns[-1]:
            raise ApiError(422, "validation_error", f"mid_path: needed — the order is outside the recorded {m.source}")
        mid_at = s.mid_at(sym)
    _plausible(s, req, mid_at)
    horizon = min(max((p.end_ns - p.start_ns) / NS, 60.0), 5 * m.market(1).session_s)
    est = s.models.estimate(sym, side, p.quantity, horizon, 10.0)
    if s.store.read("parent_orders", where="order_id = ?", params=[p.order_id]).num_rows:
        raise ApiError(409, "conflict", f"parent order {p.order_id!r} was already submitted")
    res = analyse(parent, fills, mid_at=mid_at, post_s=req.post_s, predicted_bps={m.version: est["total_bps"]})
    now = int(s.clock())
    s.store.add_records([parent])
    s.store.add_records(fills)
    record_tca(s.store, [res], now_ns=now, forecasts={p.order_id: m.forecast(m.vwap(side, p.quantity, horizon))})
    err = res.shortfall_bps - est["total_bps"]
    s.metrics.prediction_error(sym, err)
    out: dict[str, Any] = {"tca": res.to_dict(), "predicted_bps": est["total_bps"], "model_version": m.version,
                           "error_bps": err}  # fmt: skip
    d = s.drift(sym)
    out["drift"] = d
    s.metrics.drift(sym, d)
    if d["alert"] and m.version not in s.alerted:
        s.alerted.add(m.version)
        rows = s._priced(sym)
        try:
            _recalibration_allowed(s, m)
            new = s.models.recalibrate(sym, rows, reason="drift: " + "; ".join(d["reasons"]))
            out["recalibrated"] = {"from": m.version, "to": new.version, "status": new.status,
                                   "multipliers": dict(new.multipliers)}  # fmt: skip
        except (ServiceError, ApiError) as exc:
            log.error("drift alert on %s but recalibration failed: %s", m.version, exc)
            out["recalibrated"] = {"error": str(exc)}
    return out


def _plausible(s: ServiceState, req: TCARequest, mid_at: Callable[[int], float]) -> None:
    """Refuse (422) a fill priced implausibly far from the mid at its time or with an implausible fee: a
    submission must not be able to drag the live model's calibration with numbers no market produced."""
    band, fee_cap = s.config.fill_band_bps, s.config.max_fee_bps
    for i, f in enumerate(req.fills):
        mid = float(mid_at(f.ts_ns))
        if math.isfinite(mid) and mid > 0:
            off_bps = abs(f.price / mid - 1) * 1e4
            if off_bps > band:
                raise ApiError(422, "implausible_fill", f"fills[{i}].price: {f.price:g} is {off_bps:,.0f} bps from the "
                               f"mid {mid:g} at its time (at most {band:g} bps)")  # fmt: skip
        fee_bps = abs(f.fee) / (f.quantity * f.price) * 1e4
        if fee_bps > fee_cap:
            raise ApiError(422, "implausible_fill", f"fills[{i}].fee: {f.fee:g} is {fee_bps:,.0f} bps of the fill's "
                           f"notional (at most {fee_cap:g} bps)")  # fmt: skip


def hedging_summary(s: ServiceState) -> dict[str, Any]:
    """The live engine's status (if one is attached) and a summary of each hedging store's journal."""
    out: dict[str, Any] = {"engine": s.engine.status() if s.engine is not None else None, "stores": [],
                           "bus_tca": s.bus_tca.as_dict() if s.bus_tca is not None else None}  # fmt: skip
    from impactlab.config import default_store_path

    d = s.config.hedging_dir or Path(default_store_path()).with_name("hedging")
    for path in sorted(Path(d).glob("*.duckdb"))[:50]:
        mtime = path.stat().st_mtime
        hit = s._hedging_cache.get(str(path))
        if hit is not None and hit[0] == mtime:
            out["stores"].append(hit[1])
            continue
        try:
            with Store(path, read_only=True) as h:
                hedges = h.read("hedges").to_pylist()
                done = h.read("hedge_events", where="kind = 'done'").to_pylist()
                versions = h.read("model_versions").to_pylist()
        except Exception as exc:  # locked by a running engine, or not a hedging store
            out["stores"].append({"store": path.name, "error": f"cannot read: {type(exc).__name__}"})
            continue
        regimes: dict[str, int] = {}
        for r in hedges:
            regimes[r["regime"]] = regimes.get(r["regime"], 0) + 1
        last = max(hedges, key=lambda r: r["ts_ns"]) if hedges else None
        row = {
            "store": path.name, "hedges": len(hedges), "hedges_done": len(done),
            "shares": float(sum(r["quantity"] for r in hedges)),
            "cost_usd": float(sum(e["realised_cost_usd"] or 0.0 for e in done)),
            "regimes": regimes, "last_regime": last["regime"] if last else None,
            "last_hedge_ns": last["ts_ns"] if last else None, "model_versions": len(versions),
        }  # fmt: skip
        s._hedging_cache[str(path)] = (mtime, row)
        out["stores"].append(row)
    return out


class _BodyLimit:
    """Refuse bodies over ``max_bytes`` with 413, by their Content-Length or as they stream in."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, int(max_bytes)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for k, v in scope.get("headers", ()):
            if k == b"content-length":
                try:
                    n = int(v)
                except ValueError:
                    n = -1
                if n < 0 or n > self.max_bytes:
                    await _body(413 if n > 0 else 400, "body_too_large" if n > 0 else "bad_request",
                                f"request body of {v.decode(errors='replace')} bytes; the limit is {self.max_bytes}")(
                        scope, receive, send)  # fmt: skip
                    return
        # a body without a length (chunked) is read here, up to the limit, before the app sees any of it
        chunks: list[bytes] = []
        seen = 0
        while True:
            msg = await receive()
            if msg["type"] != "http.request":  # the client went away
                return
            chunks.append(msg.get("body", b""))
            seen += len(chunks[-1])
            if seen > self.max_bytes:
                await _body(413, "body_too_large", f"request body over the limit of {self.max_bytes} bytes")(
                    scope, receive, send)  # fmt: skip
                return
            if not msg.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Any:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class _Timing:
    """Request latency by route template, method and status, into the metrics' histogram."""

    def __init__(self, app: Any, holder: dict[str, ServiceState]) -> None:
        self.app, self.holder = app, holder

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = {"code": 500}

        async def tap(msg: Any) -> None:
            if msg["type"] == "http.response.start":
                status["code"] = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, tap)
        finally:
            s = self.holder.get("s")
            if s is not None:
                route = scope.get("route")
                path = getattr(route, "path", None) or "unmatched"
                s.metrics.request(scope.get("method", ""), path, status["code"], time.perf_counter() - t0)
