"""``impactlab execute`` (work a parent order on the replay or the simulator through the router, risk gate
and order manager, then TCA it) and ``impactlab tca`` (TCA of the orders in a store)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from impactlab.cli.schedules import _cli
from impactlab.errors import ExecutionError, ImpactLabError

NS = 1_000_000_000


class VenueKind(StrEnum):
    replay = "replay"
    sim = "sim"
    fix = "fix"


class RouterKind(StrEnum):
    ck = "ck"
    naive = "naive"


class ScheduleKind(StrEnum):
    twap = "twap"
    vwap = "vwap"


def build_execute(
    *,
    symbol: str = "GOOG",
    side: int = 1,
    quantity: float = 2_000.0,
    horizon_s: float = 600.0,
    step_s: float = 60.0,
    start_s: float | None = None,
    venue: str = "replay",
    router: str = "ck",
    schedule: str = "twap",
    under_penalty_bps: float = 5.0,
    limits: dict[str, float] | None = None,
    store_path: Path | None = None,
    order_id: str | None = None,
    seed: int = 0,
    data: Path | None = None,
    day: Any = None,
) -> tuple[Any, dict[str, Any]]:
    """Work one parent order end to end; returns (TCA result, run details).

    ``venue``: ``replay`` (the day from any source, simulated time), ``sim`` (queue-reactive flow fitted to
    it, simulated time; needs order-by-order data) or ``fix`` (that simulator behind a FIX 4.4 acceptor on
    loopback, traded through a QuickFIX initiator in real time: keep the horizon short).  ``day`` is the
    market (by default the symbol's, through the catalog); ``start_s`` counts from its start (default 30
    minutes, or a tenth of a shorter day).
    """
    from impactlab.cli.schedules import default_start_s
    from impactlab.execution import RiskLimits, SimClock, SimulatedVenue, WallClock
    from impactlab.rl.tasks import _fitted_flow, _replay, load_day
    from impactlab.simulation import ConstantLatency, FeeModel, QueueReactiveMarket, ReplayMarket

    if side not in (1, -1):
        raise ExecutionError(f"'side' must be +1 or -1, got {side!r}")
    if venue not in ("replay", "sim", "fix"):
        raise ExecutionError(f"'venue' must be replay, sim or fix, got {venue!r}")
    day = day if day is not None else load_day(symbol, data)
    symbol = day.symbol
    start_s = default_start_s(day, None) if start_s is None else start_s
    fees = FeeModel(maker_bps=-0.2, taker_bps=0.3)
    lat: dict[str, Any] = {
        "entry_latency": ConstantLatency(NS // 1000),
        "response_latency": ConstantLatency(NS // 1000),
    }
    if venue == "replay":
        rdata = _replay(day)
        start = max(day.start_ns + int(start_s * NS), rdata.start_ns)
        if not start < rdata.end_ns - int(horizon_s * NS):
            raise ExecutionError(
                f"start {start_s:g} s after the day's start leaves no {horizon_s:g} s of {day.label} data "
                f"({day.span_s:.0f} s in all): shorten --horizon or move --start"
            )
        raw: Any = ReplayMarket(rdata, start_ns=start, fees=fees, **lat)
    else:
        params = _fitted_flow(day)
        raw = QueueReactiveMarket(
            params, price=float(params.extra["price"]), tick_size=day.tick_size, seed=seed, fees=fees,
            initial_spread_ticks=max(1, round(params.extra["mean_spread_ticks"])),
            **(lat if venue == "sim" else {}),
        )  # fmt: skip
        start = raw.now_ns + 60 * NS  # a minute of warm-up
        raw.run_to(start)
    clock: Any = WallClock() if venue == "fix" else SimClock(start)
    lim = RiskLimits.from_dict(limits or {})
    exchange: Any = None
    if venue == "fix":
        import socket
        import tempfile

        from impactlab.execution.fix import FixConfig, FixExchange, FixVenue

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        cfg = FixConfig(port=port, store_dir=Path(tempfile.mkdtemp(prefix="impactlab-fix-")))
        exchange = FixExchange(raw, cfg).start()
        sv: Any = FixVenue("SIMX", cfg, collar=lim.collar_price, book=exchange.book, fees=fees)
        try:
            sv.start()
        except Exception:
            exchange.stop()
            raise
        start = clock()
    else:
        sv = SimulatedVenue("NASDAQ" if venue == "replay" else "SIM", raw, collar=lim.collar_price)
    try:
        return _work(day, sv, lim, clock, start, symbol=symbol, side=side, quantity=quantity,
                     horizon_s=horizon_s, step_s=step_s, start_s=start_s, venue=venue, router=router,
                     schedule=schedule, under_penalty_bps=under_penalty_bps, store_path=store_path,
                     order_id=order_id)  # fmt: skip
    finally:
        if exchange is not None:
            sv.close()
            exchange.stop()


def _work(
    day: Any,
    sv: Any,
    limits: Any,
    clock: Any,
    start: int,
    *,
    symbol: str,
    side: int,
    quantity: float,
    horizon_s: float,
    step_s: float,
    start_s: float,
    venue: str,
    router: str,
    schedule: str,
    under_penalty_bps: float,
    store_path: Path | None,
    order_id: str | None,
) -> tuple[Any, dict[str, Any]]:
    from impactlab.calibration.pretrade import book_cost_model, market_context
    from impactlab.data import ParentOrder, Side, Store
    from impactlab.execution import (
        ContKukanovRouter,
        ExecutionEngine,
        NaiveRouter,
        Slicer,
        guarded_order_manager,
        queue_outflow_samples,
        session_window_volume,
    )
    from impactlab.schedules import VolumeCurve, twap, vwap
    from impactlab.tca import MarketPath, RecordedPath, analyse, record_tca

    with Store(store_path) as store:
        # participation is checked against the day's mean 5-minute volume
        five_min_volume = session_window_volume(day, 300.0)
        oms = guarded_order_manager(store, {sv.name: sv}, limits=limits, clock=clock, market_volume=five_min_volume,
                                    instrument=day.spec)  # fmt: skip
        outflow = {sv.name: queue_outflow_samples(day, side, step_s)}
        inside = {sv.name: queue_outflow_samples(day, side, step_s, improve_ticks=1)}
        rt = ContKukanovRouter(under_penalty_bps=under_penalty_bps) if router == "ck" else NaiveRouter()
        eng = ExecutionEngine(oms, {sv.name: sv}, rt, clock=clock, outflow=outflow, improve_outflow=inside,
                              post_s=min(60.0, horizon_s))  # fmt: skip
        pid = order_id or f"{symbol}-{venue}-{router}-{start}"
        parent = ParentOrder(pid, symbol, Side(side), quantity, start, start + int(horizon_s * NS))
        if schedule == "vwap":
            curve = VolumeCurve.from_days([day])
            sch = vwap(quantity, horizon_s, curve=curve, daily_volume=day.volume(),
                       step_s=step_s, start_s=start_s, side=side)  # fmt: skip
        else:
            sch = twap(quantity, horizon_s, step_s=step_s, start_s=start_s, side=side)
        res = eng.run(parent, Slicer(sch, parent))
        model = book_cost_model(day)
        market = market_context(day, start_s=start_s, side=side)
        from impactlab.schedules.costs import ModelCost

        predicted = {  # every calibrated model's pre-trade cost, kept against the realised one
            "book+sqrt": float(model.model.schedule_cost(sch, market).total),
            "sqrt": float(ModelCost(model.sqrt).schedule_cost(sch, market).total),
        }
        kids = [mo.order for mo in oms.orders.values() if mo.order.parent_order_id == pid]
        if venue == "replay":
            path: Any = MarketPath(day)
            vw, close = path.interval_vwap(start, res.end_ns), path.close
        else:
            ts, mids = zip(*eng.path, strict=True)
            path = RecordedPath(np.asarray(ts, np.int64), np.asarray(mids, float))
            vw, close = float("nan"), float("nan")
        tca = analyse(parent, list(res.fills), mid_at=path.mid_at, children=kids, end_ns=res.end_ns,
                      post_s=eng.post_s, interval_vwap=vw, close=close, predicted_bps=predicted)  # fmt: skip
        record_tca(store, [tca], now_ns=clock())
        details = {
            "order_id": pid, "venue": venue, "router": rt.name, "schedule": schedule, "children": res.children,
            "refused_orders": res.refused, "rejected_reports": res.rejected_reports, "store": str(store.path),
            "market": day.label, "source_format": day.source, "instrument": day.spec.to_dict(),
            "notes": [*day.notes, *model.notes],
        }  # fmt: skip
        if venue == "fix":
            details["fix_refused"] = dict(sv.refused)
    return tca, details


def _day_key(symbol: str, start_ns: int, data: Path | None) -> str | None:
    from impactlab.data.catalog import catalog

    try:
        cat = catalog(data)
    except ImpactLabError:
        return None
    hits = [e for e in cat.entries if e.symbol.upper() == symbol.upper() and e.first_ns <= start_ns <= e.last_ns]
    return max(hits, key=lambda e: (e.depth, e.rows)).key if hits else None


def _day_of_order(symbol: str, start_ns: int, data: Path | None) -> Any:
    """The catalog's day of ``symbol`` whose data span the order's start (any source)."""
    from impactlab.data.catalog import catalog
    from impactlab.errors import DataValidationError

    cat = catalog(data)
    hits = [e for e in cat.entries if e.symbol.upper() == symbol.upper() and e.first_ns <= start_ns <= e.last_ns]
    if not hits:
        raise DataValidationError(f"no market data for {symbol} at {start_ns}", field="symbol", value=symbol)
    from impactlab.data.catalog import load_market

    e = max(hits, key=lambda e: (e.depth, e.rows))
    return load_market(e.symbol, e.date, data=data, depth=e.depth, venue=e.venue, source=e.source)


def build_tca(store_path: Path | None, *, symbol: str | None = None, data: Path | None = None) -> list[Any]:
    """TCA of every parent order in the store that has fills, against the market day of its symbol whose
    data span the order (any source, through the catalog), or the mids recorded in the store."""
    from impactlab.data import ChildOrder, Fill, OrderType, ParentOrder, Side, Store
    from impactlab.tca import MarketPath, RecordedPath, analyse

    out = []
    with Store(store_path, read_only=True) as st:
        parents = st.read("parent_orders").to_pylist()
        fills = st.read("fills").to_pylist()
        kids = st.read("child_orders").to_pylist()
        preds = st.read("cost_predictions").to_pylist()
    paths: dict[tuple[str, str | None], Any] = {}
    for p in parents:
        if symbol and p["symbol"] != symbol:
            continue
        pf = [Fill(f["fill_id"], f["client_order_id"], f["parent_order_id"], f["symbol"], Side(f["side"]),
                   f["quantity"], f["price"], f["ts_ns"], f["venue"], f["liquidity"], f["fee"])
              for f in fills if f["parent_order_id"] == p["order_id"]]  # fmt: skip
        if not pf:
            continue
        parent = ParentOrder(p["order_id"], p["symbol"], Side(p["side"]), p["quantity"], p["start_ns"], p["end_ns"])
        ch = [ChildOrder(c["client_order_id"], c["parent_order_id"], c["symbol"], Side(c["side"]), c["quantity"],
                         OrderType(c["order_type"]), c["venue"], c["created_ns"], c["limit_price"])
              for c in kids if c["parent_order_id"] == p["order_id"]]  # fmt: skip
        key = (p["symbol"], _day_key(p["symbol"], p["start_ns"], data))
        if key not in paths:
            try:
                paths[key] = MarketPath(_day_of_order(p["symbol"], p["start_ns"], data))
            except ImpactLabError:
                paths[key] = None
        path = paths[key]
        in_day = path is not None and path.day.ts_ns[0] <= p["start_ns"] <= path.day.ts_ns[-1]
        if not in_day:
            if p["arrival_mid"] is None or p["end_mid"] is None:
                continue
            post = p["post_mid"] if p["post_mid"] is not None else np.nan
            path = RecordedPath(np.array([0, p["end_ns"], p["end_ns"] + 60 * NS], np.int64),
                                np.array([p["arrival_mid"], p["end_mid"], post]))  # fmt: skip
            ch = []  # no recorded mid at each child: fills are measured against the arrival mid
        last = max(f.ts_ns for f in pf)
        vw = path.interval_vwap(parent.start_ns, max(parent.end_ns, last))
        predicted = {r["model"]: r["predicted_bps"] for r in preds if r["parent_order_id"] == p["order_id"]}
        out.append(
            analyse(
                parent,
                pf,
                mid_at=path.mid_at,
                children=ch,
                interval_vwap=vw,
                close=getattr(path, "close", np.nan),
                predicted_bps=predicted,
            )
        )
    return out


def execute_cmd(
    symbol: Annotated[str, typer.Option(help="Symbol to trade (see `impactlab data catalog`).")] = "GOOG",
    date: Annotated[str | None, typer.Option(help="Trading date YYYY-MM-DD [default: the first one].")] = None,
    depth: Annotated[int | None, typer.Option(help="Book depth to choose [default: the deepest].")] = None,
    venue_name: Annotated[str | None, typer.Option("--market-venue", help="Venue of the symbol, if several.")] = None,
    file: Annotated[list[Path] | None, typer.Option("--file", help="Explicit market-data file(s).")] = None,
    side: Annotated[str, typer.Option(help="buy or sell.")] = "buy",
    qty: Annotated[float, typer.Option(help="Parent quantity in the instrument's unit.")] = 2_000.0,
    horizon: Annotated[str, typer.Option(help="Time to finish, e.g. 10m.")] = "10m",
    step: Annotated[str, typer.Option(help="Slice length, e.g. 1m.")] = "1m",
    start: Annotated[
        str | None, typer.Option(help="Start, after the day's start [default: 30m, or a tenth of a shorter day].")
    ] = None,
    schedule: Annotated[ScheduleKind, typer.Option(help="twap or vwap.")] = ScheduleKind.twap,
    venue: Annotated[VenueKind, typer.Option(help="replay (the real day) or sim (CST flow fitted to it).")] = (
        VenueKind.replay
    ),
    router: Annotated[RouterKind, typer.Option(help="ck (Cont–Kukanov) or naive (all market).")] = RouterKind.ck,
    under_penalty: Annotated[float, typer.Option(help="Cont–Kukanov λu+θ, bps.")] = 5.0,
    max_order_qty: Annotated[float, typer.Option(help="Risk limit: shares per child.")] = 10_000.0,
    collar_bps: Annotated[float, typer.Option(help="Risk limit: price collar around the mid, bps.")] = 50.0,
    order_id: Annotated[
        str | None, typer.Option(help="Parent order id (re-using one resumes nothing: ids are unique).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 0,
    store: Annotated[Path | None, typer.Option("--store", help="DuckDB store file.")] = None,
    data: Annotated[Path | None, typer.Option(help="Market data directory.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    html_out: Annotated[Path | None, typer.Option("--html", help="Write the TCA report here.")] = None,
) -> None:
    """Work a parent order through slicer, router, risk checks and order manager on the replay or the
    simulator; every order and fill goes to the store; prints the order's TCA."""
    from impactlab.tca import tca_html, tca_json, tca_table

    main = _cli()
    side = side.lower()
    if side not in ("buy", "sell"):
        raise typer.BadParameter(f"--side must be buy or sell, got {side!r}")
    with main._errors():
        from impactlab.cli.market import resolve_market

        day = resolve_market(
            symbol=None if file else symbol, date=date, depth=depth, venue=venue_name, files=file, data=data
        )
        tca, details = build_execute(
            symbol=day.symbol, side=1 if side == "buy" else -1, quantity=qty, horizon_s=main.parse_duration_s(horizon),
            step_s=main.parse_duration_s(step), start_s=main.parse_duration_s(start) if start else None, day=day,
            venue=venue.value,
            router=router.value, schedule=schedule.value, under_penalty_bps=under_penalty,
            limits={"max_order_qty": max_order_qty, "price_collar_bps": collar_bps}, store_path=store,
            order_id=order_id, seed=seed, data=data,
        )  # fmt: skip
    if html_out is not None:
        html_out.write_text(tca_html([tca], title=f"TCA: {details['order_id']}"))
    if as_json:
        main._emit({**details, **tca_json([tca])})
        return
    main.out.print(tca_table([tca]))
    main.out.print(
        f"{details['children']} children via {details['router']}; filled {tca.filled:,.6g} of {tca.quantity:,.6g}; "
        f"maker {tca.maker_fraction:.0%}; refused {details['refused_orders'] or 'none'}; store {details['store']}"
    )
    for n in details.get("notes", []):
        main.out.print(f"[dim]note: {n}[/dim]")


def tca_cmd(
    store: Annotated[
        Path | None, typer.Option("--store", "--orders", help="Store holding the orders and fills.")
    ] = None,
    symbol: Annotated[str | None, typer.Option(help="Only this symbol.")] = None,
    data: Annotated[Path | None, typer.Option(help="Market data directory.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    html_out: Annotated[Path | None, typer.Option("--html", help="Write an HTML report with plots here.")] = None,
) -> None:
    """Transaction cost analysis of every executed parent order in the store: per order and in aggregate."""
    from impactlab.tca import tca_html, tca_json, tca_table

    main = _cli()
    with main._errors():
        results = build_tca(store, symbol=symbol, data=data)
    if html_out is not None:
        html_out.write_text(tca_html(results))
    if as_json:
        main._emit(tca_json(results))
        return
    main.out.print(tca_table(results))
    if html_out is not None:
        main.out.print(f"report written to {html_out}")
