"""``impactlab simulate`` and ``impactlab backtest``: the market simulator, replay and schedule backtests."""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from impactlab.cli.schedules import _cli
from impactlab.errors import SimulationError

NS = 1_000_000_000


class FlowModel(StrEnum):
    cst = "cst"
    hawkes = "hawkes"
    replay = "replay"


class ScheduleKind(StrEnum):
    twap = "twap"
    vwap = "vwap"
    almgren_chriss = "almgren-chriss"


class VenueKind(StrEnum):
    sim = "sim"
    replay = "replay"


class Style(StrEnum):
    market = "market"
    limit = "limit"


def _day(symbol: str | None, data: Path | None, date: str | None = None, files: list[Path] | None = None) -> Any:
    from impactlab.cli.market import resolve_market

    return resolve_market(symbol=None if files else symbol, date=date, files=files, data=data)


def overlay_for(day: Any, notes: list[str]) -> Any:
    """The own-impact overlay (Obizhaeva–Wang measured from the day's book), or ``None`` with a note."""
    from impactlab.calibration import calibrate_ow_book
    from impactlab.errors import CalibrationError, InsufficientDepthError
    from impactlab.simulation import ImpactOverlay

    try:
        return ImpactOverlay.from_model(calibrate_ow_book(day).model(), price=day.first_mid())
    except (CalibrationError, InsufficientDepthError) as exc:
        notes.append(
            f"no own-impact overlay ({exc}): the trader's fills still consume liquidity, but later prices are not moved"
        )
        return None


def build_simulation(
    model: str,
    symbol: str | None,
    duration_s: float,
    *,
    seed: int = 0,
    start_s: float = 0.0,
    data: Path | None = None,
    date: str | None = None,
    files: list[Path] | None = None,
) -> dict[str, Any]:
    """What ``impactlab simulate`` reports: the calibrated flow, the run's speed and its final book."""
    from impactlab.simulation import (
        QueueReactiveMarket,
        ReplayData,
        ReplayMarket,
        fit_hawkes,
        fit_queue_reactive,
        market_order_times,
    )

    day = _day(symbol, data, date, files)
    out: dict[str, Any] = {
        "model": model,
        "symbol": day.symbol,
        "venue": day.venue,
        "date": str(day.date),
        "source_format": day.source,
        "seed": seed,
        "notes": list(day.notes),
    }
    if model == "replay":
        rd = ReplayData.from_day(day)
        start = max(rd.start_ns, day.start_ns + int(start_s * NS))
        m: Any = ReplayMarket(rd, start_ns=start, seed=seed)
        out["source"] = rd.source
        out["counts"] = rd.counts
    else:
        params = fit_queue_reactive(day)
        hawkes = None
        if model == "hawkes":
            t, sign, _ = market_order_times(day)
            hawkes = fit_hawkes(t, sign)
            out["hawkes"] = {
                "baseline_per_s": hawkes.baseline_per_s,
                "alpha_self": hawkes.alpha_self,
                "alpha_cross": hawkes.alpha_cross,
                "beta_per_s": hawkes.beta_per_s,
                "branching_ratio": hawkes.branching_ratio,
                "std_errors": hawkes.std_errors,
                "n_events": hawkes.n_events,
            }
        m = QueueReactiveMarket(
            params,
            hawkes=hawkes,
            price=params.extra["price"],
            tick_size=day.tick_size,
            initial_spread_ticks=max(1, round(params.extra["mean_spread_ticks"])),
            seed=seed,
        )
        cmp = params.comparison()
        out["rates"] = {
            "source": params.source,
            "market_rate_per_s": params.market_rate_per_s,
            "mu_cst_units": params.market_rate_per_s * params.market_size / params.limit_size,
            "mu_published": 0.94,
            "sizes": {"limit": params.limit_size, "market": params.market_size, "cancel": params.cancel_size},
            "by_distance": cmp.head(10).replace({np.nan: None}).to_dict(orient="records"),
            **{k: params.extra[k] for k in ("power_law_k", "power_law_alpha", "mean_spread_ticks")},
            "power_law_published": {"k": 1.92, "alpha": 0.52},
        }
        start = m.now_ns
    t0 = time.perf_counter()
    m.run_to(start + int(duration_s * NS))
    wall = time.perf_counter() - t0
    b = m.book(5)
    out.update(
        {
            "duration_s": duration_s,
            "events": m.events_processed,
            "wall_s": wall,
            "events_per_s": m.events_processed / wall if wall > 0 else None,
            "book": {
                "bid_price": b.bid_price.tolist(),
                "bid_size": b.bid_size.tolist(),
                "ask_price": b.ask_price.tolist(),
                "ask_size": b.ask_size.tolist(),
                "mid": b.mid,
                "spread": b.spread,
            },
            "traded_volume": m.traded_volume,
        }
    )
    return out


def simulate_cmd(
    model: Annotated[FlowModel, typer.Option("--model", help="cst, hawkes (both fitted on the day) or replay.")],
    symbol: Annotated[
        str, typer.Option(help="Symbol to calibrate on / replay (see `impactlab data catalog`).")
    ] = "GOOG",
    date: Annotated[str | None, typer.Option(help="Trading date YYYY-MM-DD.")] = None,
    file: Annotated[list[Path] | None, typer.Option("--file", help="Explicit market-data file(s).")] = None,
    duration: Annotated[str, typer.Option(help="Simulated time, e.g. 600s, 10m, 1h.")] = "10m",
    start: Annotated[str, typer.Option(help="Replay: time after the open to start at.")] = "1s",
    seed: Annotated[int, typer.Option(help="Seed of the simulated flow.")] = 0,
    data: Annotated[Path | None, typer.Option(help="Market data directory.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run the market simulator (CST / Hawkes fitted on a day's order events) or a replay of any day."""
    main = _cli()
    with main._errors():
        res = build_simulation(
            model.value,
            symbol,
            main.parse_duration_s(duration),
            seed=seed,
            start_s=main.parse_duration_s(start),
            data=data,
            date=date,
            files=file,
        )
    if as_json:
        main._emit(res)
        return
    main.out.print(
        f"{res['model']} {res['symbol']} {res['date']}: {res['events']:,} events in {res['wall_s']:.3f} s "
        f"({res['events_per_s'] / 1e6:.2f} M/s); mid {res['book']['mid']:.4f}, spread {res['book']['spread']:.4f}"
    )
    if "rates" in res:
        t = Table(title="CST rates by distance from the opposite quote (fitted vs published)")
        for c in ("i", "λ fitted", "λ published", "θ fitted", "θ published"):
            t.add_column(c, justify="right")
        for r in res["rates"]["by_distance"]:

            def f(v: Any) -> str:
                return "-" if v is None else f"{v:.4f}"

            t.add_row(
                str(r["distance_ticks"]),
                f(r["lambda_fitted"]),
                f(r["lambda_published"]),
                f(r["theta_fitted"]),
                f(r["theta_published"]),
            )
        main.out.print(t)


def _schedule(kind: str, qty: float, side: int, horizon_s: float, children: int, start_s: float, day: Any) -> Any:
    from impactlab.schedules import VolumeCurve, twap, vwap

    step = horizon_s / children
    if kind == "twap":
        return twap(qty, horizon_s, step_s=step, start_s=start_s, side=side)
    if kind == "vwap":
        curve = VolumeCurve.from_days([day])
        return vwap(qty, horizon_s, curve=curve, daily_volume=1e6, step_s=step, start_s=start_s, side=side)
    from impactlab.calibration.costmodel import calibrate_instrument

    # the instrument's cost model linearised at this order's TWAP (Almgren–Chriss needs linear impact)
    ac = calibrate_instrument(day).linearised(qty, horizon_s, children, side)
    return ac.solve(1e-6)


def build_backtest(
    schedule: str,
    venue: str,
    *,
    symbol: str = "GOOG",
    side: int = 1,
    qty: float = 5_000.0,
    horizon_s: float = 1_800.0,
    children: int = 30,
    start_s: float = 3_600.0,
    style: str = "market",
    overlay: bool = True,
    seed: int = 0,
    data: Path | None = None,
    date: str | None = None,
    files: list[Path] | None = None,
) -> dict[str, Any]:
    """What ``impactlab backtest`` reports."""
    from impactlab.simulation import (
        QueueReactiveMarket,
        ReplayData,
        ReplayMarket,
        fit_queue_reactive,
        run_schedule,
    )

    day = _day(symbol, data, date, files)
    notes: list[str] = list(day.notes)
    if start_s + horizon_s > day.session_s:
        raise SimulationError(
            f"start {start_s:g} s + horizon {horizon_s:g} s run past the {day.session_s:.0f} s of {day.label}"
        )
    sched = _schedule(schedule, qty, side, horizon_s, children, start_s, day)
    times = np.asarray(sched.times, float)
    trades = np.asarray(sched.trades, float)
    offsets = times[:-1] - times[0]
    info: dict[str, Any] = {
        "schedule": schedule,
        "venue": venue,
        "symbol": day.symbol,
        "market": day.label,
        "source_format": day.source,
        "style": style,
        "seed": seed,
        "notes": notes,
    }
    if venue == "replay":
        rd = ReplayData.from_day(day)
        ov = overlay_for(day, notes) if overlay else None
        if ov is not None:
            info["overlay"] = {
                "permanent_per_share": ov.permanent_per_share,
                "transient_per_share": ov.transient_per_share,
                "resilience_per_s": ov.resilience_per_s,
                "source": ov.source,
            }
        v: Any = ReplayMarket(rd, overlay=ov, start_ns=max(rd.start_ns, day.start_ns + int(start_s * NS)), seed=seed)
        info["source"] = rd.source
    else:
        params = fit_queue_reactive(day)
        v = QueueReactiveMarket(
            params, price=params.extra["price"], tick_size=day.tick_size,
            initial_spread_ticks=max(1, round(params.extra["mean_spread_ticks"])), seed=seed,
        )  # fmt: skip
        v.run_to(int(600 * NS))  # let the simulated book settle
        info["source"] = params.source
    res = run_schedule(v, offsets, trades, side, horizon_s=horizon_s, style=style)  # type: ignore[arg-type]
    return {**info, "children_planned": int((trades > 0).sum()), **res.to_dict()}


def backtest_cmd(
    schedule: Annotated[ScheduleKind, typer.Option("--schedule", help="twap, vwap or almgren-chriss.")],
    venue: Annotated[
        VenueKind, typer.Option("--venue", help="sim (CST fitted on the day) or replay.")
    ] = VenueKind.replay,
    symbol: Annotated[str, typer.Option(help="Symbol (see `impactlab data catalog`).")] = "GOOG",
    date: Annotated[str | None, typer.Option(help="Trading date YYYY-MM-DD.")] = None,
    file: Annotated[list[Path] | None, typer.Option("--file", help="Explicit market-data file(s).")] = None,
    side: Annotated[str, typer.Option(help="buy or sell.")] = "buy",
    qty: Annotated[float, typer.Option(help="Shares.")] = 5_000.0,
    horizon: Annotated[str, typer.Option(help="Execution horizon, e.g. 30m.")] = "30m",
    children: Annotated[int, typer.Option(help="Number of child orders.")] = 30,
    start: Annotated[str, typer.Option(help="Start, time after the open.")] = "1h",
    style: Annotated[Style, typer.Option(help="market, or limit at the own best with market catch-up.")] = Style.market,
    overlay: Annotated[bool, typer.Option("--overlay/--no-overlay", help="Replay: own-impact overlay.")] = True,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    data: Annotated[Path | None, typer.Option(help="Market data directory.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Execute a schedule on the simulator or a replay and print its implementation shortfall and parts."""
    main = _cli()
    side = side.lower()
    if side not in ("buy", "sell"):
        raise typer.BadParameter(f"'side' must be buy or sell, got {side!r}")
    if not (qty > 0 and children >= 1):
        raise typer.BadParameter("'qty' must be > 0 and 'children' >= 1")
    with main._errors():
        res = build_backtest(
            schedule.value, venue.value, symbol=symbol, side=1 if side == "buy" else -1, qty=qty,
            horizon_s=main.parse_duration_s(horizon), children=children, start_s=main.parse_duration_s(start),
            style=style.value, overlay=overlay, seed=seed, data=data, date=date, files=file,
        )  # fmt: skip
    if as_json:
        main._emit(res)
        return
    t = Table(title=f"{schedule.value} on {venue.value}: {side} {qty:,.0f} {res['symbol']}")
    t.add_column("part")
    t.add_column("bps", justify="right")
    for k in ("execution_bps", "timing_bps", "fees_bps", "opportunity_bps", "shortfall_bps", "own_impact_bps"):
        t.add_row(k.removesuffix("_bps"), f"{res[k]:.2f}")
    main.out.print(t)
    main.out.print(f"filled {res['filled']:,.0f} of {res['quantity']:,.0f} in {res['fills']} fills")
    for n in res.get("notes", []):
        main.out.print(f"[dim]note: {n}[/dim]")
