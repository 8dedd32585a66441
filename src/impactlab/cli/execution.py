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
    limits: Any = None,
    store_path: Path | None = None,
    order_id: str | None = None,
    seed: int = 0,
    data: Path | None = None,
    day: Any = None,
    resume: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """Work one parent order end to end; returns (TCA result, run details).

    ``venue``: ``replay`` (the day from any source, simulated time), ``sim`` (queue-reactive flow fitted to
    it, simulated time; needs order-by-order data) or ``fix`` (that simulator behind a FIX 4.4 acceptor on
    loopback, traded through a QuickFIX initiator in real time: keep the horizon short).  ``day`` is the
    market (by default the symbol's, through the catalog); ``start_s`` counts from its start (default 30
    minutes, or a tenth of a shorter day).

    ``limits`` is a :class:`~impactlab.execution.RiskLimits` (default: :func:`~impactlab.execution.load_limits`)
    or a dict of limits.  ``order_id`` defaults to a new unique id; an id already in the store is refused
    unless ``resume`` carries that parent on (same symbol, side, quantity and horizon): its fills count, its
    open orders are settled first (asked of the FIX venue; on a replay or the simulator they died with the
    process), and only what is left is worked.  The FIX sessions keep their state in ``<store>.fix/`` beside
    the store, so a killed FIX run resumes the same session.
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
    if limits is None:
        from impactlab.execution import load_limits

        limits = load_limits()[0]
    lim = limits if isinstance(limits, RiskLimits) else RiskLimits.from_dict(limits)
    exchange: Any = None
    scratch: Path | None = None
    if venue == "fix":
        import socket
        import tempfile

        from impactlab.config import default_store_path
        from impactlab.execution.fix import FixConfig, FixExchange, FixVenue

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        from impactlab.data.store import _url, is_url

        target = Path(store_path).expanduser() if store_path is not None else default_store_path()
        if str(target) == ":memory:":
            fix_dir = scratch = Path(tempfile.mkdtemp(prefix="impactlab-fix-"))
        elif is_url(store_path):  # a shared store: this machine keeps the session's files, one folder per store
            import hashlib

            key = hashlib.sha256(_url(str(store_path)).encode()).hexdigest()[:16]
            fix_dir = default_store_path().parent / "fix-sessions" / key
        else:
            fix_dir = target.with_name(target.name + ".fix")  # beside the store: a restart finds the session
        cfg = FixConfig(port=port, store_dir=fix_dir)
        exchange = FixExchange(raw, cfg, exec_log=fix_dir / "exchange-executions.jsonl").start()
        sv: Any = FixVenue("SIMX", cfg, collar=lim.collar_price, book=exchange.book, fees=fees,
                           tick_size=day.tick_size)  # fmt: skip
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
                     order_id=order_id, resume=resume)  # fmt: skip
    finally:
        if exchange is not None:
            sv.close()
            exchange.stop()
        if scratch is not None:
            import shutil

            shutil.rmtree(scratch, ignore_errors=True)


def _parent_for(store: Any, pid: str | None, *, symbol: str, venue: str, side: int, quantity: float, start: int,
                horizon_s: float, resume: bool) -> tuple[Any, bool]:  # fmt: skip
    """The parent to work: a new one under a unique id, or the stored one ``resume`` carries on."""
    import uuid

    from impactlab.data import ParentOrder, Side

    if pid is None:
        if resume:
            raise ExecutionError("--resume needs the --order-id of the parent to carry on")
        pid = f"{symbol}-{venue}-{uuid.uuid4().hex[:12]}"
    rows = store.read("parent_orders", where="order_id = ?", params=[pid]).to_pylist()
    if not rows:
        if resume:
            raise ExecutionError(f"no parent {pid!r} in the store {store.path} to resume")
        return ParentOrder(pid, symbol, Side(side), quantity, start, start + int(horizon_s * NS)), False
    p = rows[0]
    filled = sum(r["quantity"] for r in store.read("fills", where="parent_order_id = ?", params=[pid]).to_pylist())
    if not resume:
        raise ExecutionError(
            f"parent {pid!r} is already in the store {store.path} ({filled:g} of {p['quantity']:g} filled): "
            "resume it with --resume, or choose another --order-id"
        )
    same = (p["symbol"] == symbol and int(p["side"]) == side and abs(p["quantity"] - quantity) < 1e-9
            and abs((p["end_ns"] - p["start_ns"]) / NS - horizon_s) < 1e-6)  # fmt: skip
    if not same:
        raise ExecutionError(
            f"--resume of {pid!r}: the stored parent is {p['symbol']} side {p['side']} {p['quantity']:g} over "
            f"{(p['end_ns'] - p['start_ns']) / NS:g} s; run it with the same --symbol/--side/--qty/--horizon"
        )
    return ParentOrder(pid, symbol, Side(side), quantity, int(p["start_ns"]), int(p["end_ns"])), True


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
    resume: bool = False,
) -> tuple[Any, dict[str, Any]]:
    from impactlab.data import Store
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
        parent, resumed = _parent_for(store, order_id, symbol=symbol, venue=venue, side=side, quantity=quantity,
                                      start=start, horizon_s=horizon_s, resume=resume)  # fmt: skip
        pid = parent.order_id
        # over FIX the manager always knows the store's orders: the session's inbox hands back what an earlier
        # process received, and orders a killed run left open are settled by the venue's status
        oms = guarded_order_manager(store, {sv.name: sv}, limits=limits, clock=clock, market_volume=five_min_volume,
                                    instrument=day.spec, restore=resumed or venue == "fix")  # fmt: skip
        if resumed and venue != "fix":  # the simulated venue's book died with the process that held it
            oms.abandon_open("venue session lost in a restart (the simulated book is gone)")
        outflow = {sv.name: queue_outflow_samples(day, side, step_s)}
        inside = {sv.name: queue_outflow_samples(day, side, step_s, improve_ticks=1)}
        rt = ContKukanovRouter(under_penalty_bps=under_penalty_bps) if router == "ck" else NaiveRouter()
        eng = ExecutionEngine(oms, {sv.name: sv}, rt, clock=clock, outflow=outflow, improve_outflow=inside,
                              post_s=min(60.0, horizon_s))  # fmt: skip
        if schedule == "vwap":
            curve = VolumeCurve.from_days([day])
            sch = vwap(quantity, horizon_s, curve=curve, daily_volume=day.volume(),
                       step_s=step_s, start_s=start_s, side=side)  # fmt: skip
        else:
            sch = twap(quantity, horizon_s, step_s=step_s, start_s=start_s, side=side)
        res = eng.run(parent, Slicer(sch, parent))
        # the instrument's cost model at the store's live version (recorded as its first if there is none): its
        # forecast of this schedule, with the interval, is kept against the realised cost
        from impactlab.calibration.costmodel import ModelVersions, calibrate_instrument

        inst = ModelVersions(store, clock=clock).resume(calibrate_instrument(day, start_s=start_s))
        model = inst.fit
        forecast = inst.forecast(sch, inst.market(side))
        predicted = {inst.version: float(forecast["predicted_bps"])}
        kids = [mo.order for mo in oms.orders.values() if mo.order.parent_order_id == pid]
        if venue == "replay":
            path: Any = MarketPath(day)
            vw, close = path.interval_vwap(start, res.end_ns), path.close
        else:
            steps = list(eng.path)
            if not steps or steps[0][0] > parent.start_ns:  # a resumed run: before it, the arrival mid stands
                steps.insert(0, (parent.start_ns, res.arrival_mid))
            ts, mids = zip(*steps, strict=True)
            path = RecordedPath(np.asarray(ts, np.int64), np.asarray(mids, float))
            vw, close = float("nan"), float("nan")
        tca = analyse(parent, list(res.fills), mid_at=path.mid_at, children=kids, end_ns=res.end_ns,
                      post_s=eng.post_s, interval_vwap=vw, close=close, predicted_bps=predicted)  # fmt: skip
        record_tca(store, [tca], now_ns=clock(), forecasts={pid: forecast})
        details = {
            "order_id": pid, "venue": venue, "router": rt.name, "schedule": schedule, "children": res.children,
            "refused_orders": res.refused, "rejected_reports": res.rejected_reports, "store": str(store.path),
            "market": day.label, "source_format": day.source, "instrument": day.spec.to_dict(),
            "notes": [*day.notes, *model.notes], "halted": res.halted, "unresolved_orders": list(res.unresolved),
            "breaks": res.breaks, "resumed": resumed,
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
        vw = path.interval_vwap(parent.start_ns, p.get("executed_end_ns") or max(parent.end_ns, last))
        predicted = {r["model"]: r["predicted_bps"] for r in preds if r["parent_order_id"] == p["order_id"]}
        # the same end and post-trade horizon as the run that recorded it: the same split of the same order
        out.append(
            analyse(
                parent,
                pf,
                mid_at=path.mid_at,
                children=ch,
                end_ns=p.get("executed_end_ns"),
                post_s=p["post_s"] if p.get("post_s") is not None else 60.0,
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
    limits_file: Annotated[
        Path | None,
        typer.Option(
            "--limits",
            help="Risk-limits file (TOML/JSON) [default: $IMPACTLAB_LIMITS, "
            "~/.config/impactlab/limits.toml, or the built-in limits].",
        ),
    ] = None,
    max_order_qty: Annotated[
        float | None, typer.Option(help="Tighten the limit on units per child (never above the limits file).")
    ] = None,
    collar_bps: Annotated[
        float | None, typer.Option(help="Tighten the price collar around the mid, bps (never wider than the file).")
    ] = None,
    order_id: Annotated[
        str | None,
        typer.Option(
            help="Parent order id [default: a new unique one]; an id in the store is refused unless --resume."
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Carry on the stored parent --order-id after a crash or a halt.")
    ] = False,
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
        from impactlab.execution import load_limits

        base, _ = load_limits(limits_file)
        lim = base.tightened(max_order_qty=max_order_qty, price_collar_bps=collar_bps)
        day = resolve_market(
            symbol=None if file else symbol, date=date, depth=depth, venue=venue_name, files=file, data=data
        )
        tca, details = build_execute(
            symbol=day.symbol, side=1 if side == "buy" else -1, quantity=qty, horizon_s=main.parse_duration_s(horizon),
            step_s=main.parse_duration_s(step), start_s=main.parse_duration_s(start) if start else None, day=day,
            venue=venue.value,
            router=router.value, schedule=schedule.value, under_penalty_bps=under_penalty,
            limits=lim, store_path=store, order_id=order_id, seed=seed, data=data, resume=resume,
        )  # fmt: skip
    if html_out is not None:
        html_out.write_text(tca_html([tca], title=f"TCA: {details['order_id']}"))
    if as_json:
        main._emit({**details, **tca_json([tca])})
    else:
        main.out.print(tca_table([tca]))
        main.out.print(
            f"{details['children']} children via {details['router']}; filled {tca.filled:,.6g} of "
            f"{tca.quantity:,.6g}; maker {tca.maker_fraction:.0%}; refused {details['refused_orders'] or 'none'}; "
            f"order {details['order_id']}; store {details['store']}"
        )
        for n in details.get("notes", []):
            main.out.print(f"[dim]note: {n}[/dim]")
    if details["halted"]:
        left = details["unresolved_orders"]
        main.err.print(f"[bold red]HALTED[/bold red] {details['order_id']}: {details['halted']}"
                       + (f"; {len(left)} order(s) unconfirmed by the venue: {', '.join(left)}" if left else "")
                       + f". Check, reset the kill switch if it tripped (impactlab kill-switch status --store "
                       f"{details['store']}), then --resume --order-id {details['order_id']}.")  # fmt: skip
        raise typer.Exit(1)


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


kill_switch_app = typer.Typer(
    help="The kill switch of a store: trip it (every run on the store stops and cancels), see it, reset it.",
    no_args_is_help=True,
)

_KsStore = Annotated[Path | None, typer.Option("--store", help="The store whose runs the switch stops.")]


def _switch(store: Path | None) -> Any:
    from impactlab.execution import KillSwitch, kill_switch_path

    path = kill_switch_path(store)
    if path is None:
        raise typer.BadParameter("an in-memory store has no kill switch to share", param_hint="--store")
    return KillSwitch(path)


def _with_switch(store: Path | None, as_json: bool, action: Any = None) -> bool:
    """Open the store's kill switch, apply ``action`` to it, print it; returns whether it is tripped."""
    main = _cli()
    with main._errors():
        ks = _switch(store)
        if action is not None:
            action(ks)
    st = ks.status()
    ks.close()
    if as_json:
        main._emit(st)
    elif st["tripped"]:
        main.out.print(f"[bold red]TRIPPED[/bold red]: {st['reason']} (file {st['path']})")
    else:
        main.out.print(f"armed: orders may be sent (file {st['path']})")
    return bool(st["tripped"])


@kill_switch_app.command("trip")
def kill_switch_trip_cmd(
    reason: Annotated[str, typer.Option(help="Why (kept in the switch's history).")] = "tripped by an operator",
    store: _KsStore = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Trip the kill switch: a run on the store refuses new orders, cancels what is open and halts, now and
    after any restart, until a person resets it."""
    _with_switch(store, as_json, lambda ks: ks.trip(reason))


@kill_switch_app.command("reset")
def kill_switch_reset_cmd(
    confirm: Annotated[str, typer.Option(help="Type RESET to re-arm the switch.")] = "",
    by: Annotated[str, typer.Option(help="Who resets it (kept in the history).")] = "",
    store: _KsStore = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Re-arm the kill switch (a person's decision: pass --confirm RESET)."""
    _with_switch(store, as_json, lambda ks: ks.reset(confirm=confirm, by=by))


@kill_switch_app.command("status")
def kill_switch_status_cmd(
    store: _KsStore = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Whether the kill switch is tripped, why and since when; exit 1 while it is tripped."""
    if _with_switch(store, as_json):
        raise typer.Exit(1)
