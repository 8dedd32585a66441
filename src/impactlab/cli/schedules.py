"""``impactlab schedule …`` and ``impactlab pretrade``: optimal schedules and the pre-trade report."""

from __future__ import annotations

import math
import warnings
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from impactlab.errors import ImpactLabError, InfeasibleScheduleError

schedule_app = typer.Typer(
    no_args_is_help=True,
    help="Optimal execution schedules: Almgren–Chriss, Obizhaeva–Wang, transient, nonlinear, VWAP.",
)


class Side(StrEnum):
    buy = "buy"
    sell = "sell"


class KernelKind(StrEnum):
    exponential = "exponential"
    power_law = "power-law"
    linear = "linear"


class VolumeKind(StrEnum):
    twap = "twap"
    vwap = "vwap"
    pov = "pov"


class Urgency(StrEnum):
    aggressive = "aggressive"
    balanced = "balanced"
    passive = "passive"


def _cli() -> Any:
    from impactlab.cli import main

    return main


SharesOpt = Annotated[float, typer.Option("--shares", help="Shares to trade, X.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]


def _table(title: str, times: Any, holdings: Any, trades: Any, limit: int = 20) -> Table:
    t = Table(title=title)
    for c in ("t", "holdings", "trade"):
        t.add_column(c, justify="right")
    n = trades.size
    rows = range(n) if n <= limit else [*range(limit // 2), *range(n - limit // 2, n)]
    last = -1
    for k in rows:
        if k != last + 1:
            t.add_row("…", "…", "…")
        t.add_row(f"{times[k]:g}", f"{holdings[k]:,.2f}", f"{trades[k]:,.2f}")
        last = k
    t.add_row(f"{times[-1]:g}", f"{holdings[-1]:,.2f}", "")
    return t


@schedule_app.command("almgren-chriss")
def almgren_chriss(
    shares: SharesOpt,
    horizon: Annotated[float, typer.Option(help="Horizon T (in your time unit, e.g. days).")],
    steps: Annotated[int, typer.Option(help="Number of intervals N.")],
    sigma: Annotated[float, typer.Option(help="Volatility, price per share per √time unit.")],
    eta: Annotated[float, typer.Option(help="Temporary impact η.")],
    gamma: Annotated[float, typer.Option(help="Permanent impact γ.")] = 0.0,
    epsilon: Annotated[float, typer.Option(help="Fixed cost per share ε.")] = 0.0,
    risk_aversion: Annotated[float, typer.Option("--risk-aversion", help="λ (per price unit).")] = 0.0,
    drift: Annotated[float, typer.Option(help="Expected price drift per time unit (the paper's α).")] = 0.0,
    side: Annotated[Side, typer.Option(help="sell (the paper's case) or buy.")] = Side.sell,
    var_confidence: Annotated[
        float | None, typer.Option("--var-confidence", help="Also give the VaR-optimal λ at this confidence.")
    ] = None,
    frontier: Annotated[int, typer.Option(help="Points of the efficient frontier to include (0: none).")] = 0,
    json_out: JsonOpt = False,
) -> None:
    """The Almgren–Chriss optimal trajectory: holdings, trades, E, V and κ (eq. 20)."""
    from impactlab.schedules import AlmgrenChriss

    main = _cli()
    with main._errors():
        ac = AlmgrenChriss(
            shares, horizon, steps, sigma, eta, gamma, epsilon, drift, -1 if side == Side.sell else 1, "unit"
        )
        sch = ac.solve(risk_aversion)
        e, v = ac.moments(sch.holdings)
        doc: dict[str, Any] = {
            "times": sch.times.tolist(),
            "holdings": sch.holdings.tolist(),
            "trades": sch.trades.tolist(),
            "expected_cost": e,
            "variance": v,
            "std": math.sqrt(v),
            "kappa": ac.kappa(risk_aversion),
            "eta_tilde": ac.eta_tilde,
            "risk_aversion": risk_aversion,
        }
        if drift == 0:
            doc["closed_form"] = dict(zip(("expected_cost", "variance"), ac.closed_form(risk_aversion), strict=True))
        else:
            doc["drift_target"] = ac.drift_target(risk_aversion)
        if var_confidence is not None:
            lam, _, var = ac.var_optimal(var_confidence)
            doc["var_optimal"] = {"confidence": var_confidence, "risk_aversion": lam, "value_at_risk": var}
        if frontier:
            doc["frontier"] = ac.frontier(n_points=frontier).to_dict()
        if json_out:
            main._emit(doc)
            return
        main.out.print(
            _table(
                f"Almgren–Chriss, λ = {risk_aversion:g}, κ = {doc['kappa']:.4g}", sch.times, sch.holdings, sch.trades
            )
        )
        main.out.print(f"E = {e:,.2f}   V = {v:,.4g}   sd = {math.sqrt(v):,.2f}")


@schedule_app.command("obizhaeva-wang")
def obizhaeva_wang(
    shares: SharesOpt,
    horizon: Annotated[float, typer.Option(help="Horizon T.")],
    depth: Annotated[float, typer.Option(help="Book depth q, shares per price unit.")],
    resilience: Annotated[float, typer.Option(help="Resilience ρ per time unit.")],
    permanent: Annotated[float, typer.Option(help="Permanent impact λ per share (≤ 1/q).")] = 0.0,
    steps: Annotated[int, typer.Option(help="N: trades at t = 0, T/N, …, T (N + 1 of them).")] = 10,
    json_out: JsonOpt = False,
) -> None:
    """The Obizhaeva–Wang optimum: the discrete quadratic programme for N + 1 trades and the continuous one."""
    from impactlab.schedules import TransientImpact, obizhaeva_wang_optimum

    main = _cli()
    with main._errors():
        if steps < 1:
            raise InfeasibleScheduleError(f"'steps' must be >= 1, got {steps}")
        model = TransientImpact.obizhaeva_wang(depth=depth, resilience=resilience, permanent=permanent)
        sol = obizhaeva_wang_optimum(shares, horizon, depth=depth, resilience=resilience, permanent=permanent)
        times = np.linspace(0.0, horizon, steps + 1, dtype=np.float64)
        sch = model.optimal(shares, times, time_unit="unit")
        cost = sch.cost(model)
        doc = {
            "trade_times": times.tolist(),
            "trades": sch.trades.tolist(),
            "expected_cost": cost.total,
            "temporary_cost": cost.temporary,
            "permanent_cost": cost.permanent,
            "continuous": {
                "initial_block": sol.initial_block,
                "final_block": sol.final_block,
                "rate": sol.rate,
                "expected_cost": sol.cost,
            },
            "half_life": sol.half_life,
        }
        if json_out:
            main._emit(doc)
            return
        t = Table(title=f"Obizhaeva–Wang, {steps + 1} trades, half-life {sol.half_life:.4g}")
        t.add_column("t", justify="right")
        t.add_column("trade", justify="right")
        for tt, n in zip(times, sch.trades, strict=True):
            t.add_row(f"{tt:g}", f"{n:,.2f}")
        main.out.print(t)
        main.out.print(
            f"cost {cost.total:,.2f} (continuous optimum {sol.cost:,.2f}: blocks {sol.initial_block:,.1f}, "
            f"rate {sol.rate:,.1f} per unit time)"
        )


@schedule_app.command("transient")
def transient(
    shares: SharesOpt,
    horizon: Annotated[float, typer.Option(help="Horizon T.")],
    kernel: Annotated[KernelKind, typer.Option(help="Decay kernel G.")],
    param: Annotated[float, typer.Option(help="ρ (exponential), exponent γ (power-law) or length ℓ (linear).")],
    scale: Annotated[float, typer.Option(help="ℓ of the power law (1 + t/ℓ)^(−γ).")] = 1.0,
    transient_impact: Annotated[float, typer.Option("--impact", help="κ: transient impact per share.")] = 1.0,
    steps: Annotated[int, typer.Option(help="N: trades at t = 0, T/N, …, T.")] = 10,
    json_out: JsonOpt = False,
) -> None:
    """The optimal discrete schedule under transient impact with a general decay kernel."""
    from impactlab.schedules import DecayKernel, PriceManipulationWarning, TransientImpact

    main = _cli()
    with main._errors():
        k = {
            KernelKind.exponential: lambda: DecayKernel.exponential(param),
            KernelKind.power_law: lambda: DecayKernel.power_law(param, scale),
            KernelKind.linear: lambda: DecayKernel.linear(param),
        }[kernel]()
        model = TransientImpact(k, transient_impact)
        times = np.linspace(0.0, horizon, steps + 1, dtype=np.float64)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PriceManipulationWarning)
            sch = model.optimal(shares, times, time_unit="unit")
        for w in caught:
            main.err.print(f"[yellow]warning:[/yellow] {w.message}")
        cost = sch.cost(model)
        doc = {
            "kernel": k.describe(),
            "trade_times": times.tolist(),
            "trades": sch.trades.tolist(),
            "expected_cost": cost.total,
            "no_round_trip_constraint_binds": bool(sch.params["no_round_trip_constraint_binds"]),
        }
        if json_out:
            main._emit(doc)
            return
        main.out.print(_table(f"Transient optimum, {k.describe()}", times, sch.holdings, sch.trades))
        main.out.print(f"cost {cost.total:,.4g}")


def _day(symbol: str, data: Path | None, date: str | None = None, **kw: Any) -> Any:
    from impactlab.cli.market import resolve_market

    return resolve_market(symbol=symbol, date=date, data=data, **kw)


def volume_days(day: Any, data: Path | None) -> list[Any]:
    """The days a volume curve is averaged over: for a full session, the day plus the other instruments'
    full days on the same venue in the catalog (deepest file each, fixtures left out); else the day alone."""
    from impactlab.data.catalog import catalog, load_market

    if not day.covers_session:
        return [day]
    try:
        cat = catalog(data)
    except ImpactLabError:
        return [day]
    others = sorted(
        {
            e.symbol
            for e in cat.entries
            if e.venue == day.venue
            and e.symbol != day.symbol
            and "test fixture" not in e.notes
            and (e.last_ns - e.first_ns) / 1e9 >= 0.9 * day.session_s
        }
    )
    out = [day]
    for sym in others:
        try:
            d = load_market(sym, data=data, venue=day.venue)
        except ImpactLabError:
            continue
        if d.covers_session and abs(d.session_s - day.session_s) < 1.0:
            out.append(d)
    return out


def default_start_s(day: Any, start: str | None) -> float:
    """``--start`` as seconds after the day's start; by default 30 minutes, or a tenth of a shorter day."""
    if start is not None:
        return float(_cli().parse_duration_s(start)) if start not in ("0", "0s") else 0.0
    return min(1800.0, 0.1 * float(day.session_s))


@schedule_app.command("nonlinear")
def nonlinear(
    shares: SharesOpt,
    horizon: Annotated[str, typer.Option(help="Horizon, e.g. 2h or 90m.")],
    eta: Annotated[float, typer.Option(help="Temporary impact at 100% participation, bps.")],
    beta: Annotated[float, typer.Option(help="Exponent β of participation.")] = 0.6,
    risk_aversion: Annotated[float, typer.Option("--risk-aversion", help="λ per bps of the order's value.")] = 0.0,
    daily_vol: Annotated[float, typer.Option("--daily-vol", help="Daily volatility, a fraction.")] = 0.015,
    adv: Annotated[float, typer.Option(help="Average daily volume, shares.")] = 1e6,
    cap: Annotated[float | None, typer.Option("--max-participation", help="Participation cap.")] = None,
    step: Annotated[str, typer.Option(help="Step length.")] = "5m",
    start: Annotated[str, typer.Option(help="Start, time after the open.")] = "30m",
    symbol: Annotated[str | None, typer.Option(help="Estimate the volume curve from this symbol's day.")] = None,
    data: Annotated[Path | None, typer.Option(help="Market data directory.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Power-law temporary impact plus risk aversion with a participation cap and the intraday volume curve
    (cvxpy); costs in bps of the order's value."""
    from impactlab.schedules import PowerLawTemporaryImpact, VolumeCurve, optimal_nonlinear

    main = _cli()
    with main._errors():
        curve = VolumeCurve.uniform()
        if symbol:
            curve = VolumeCurve.from_days(volume_days(_day(symbol, data), data))
        h, st, s0 = main.parse_duration_s(horizon), main.parse_duration_s(step), main.parse_duration_s(start)
        if h < st:
            raise InfeasibleScheduleError(f"the horizon ({h:g} s) is shorter than one step ({st:g} s)")
        times = s0 + np.linspace(0.0, h, max(1, round(h / st)) + 1)
        vol = curve.expected_volume(times, adv)
        # in bps of the order's value per share: η bps at 100% participation; σ in bps per √s
        impact = PowerLawTemporaryImpact(eta / shares, beta)
        sigma = daily_vol * 1e4 / math.sqrt(curve.session_s) / shares
        sch = optimal_nonlinear(
            shares, times, vol, impact, sigma=sigma, risk_aversion=risk_aversion, participation_cap=cap
        )
        cost = sch.cost(impact)
        doc = {
            "times_s": sch.times.tolist(),
            "trades": sch.trades.tolist(),
            "participation": None if sch.participation is None else sch.participation.tolist(),
            "expected_cost_bps": cost.total,
            "timing_std_bps": sch.timing_risk_bps(daily_vol, unit_per_day=curve.session_s),
            "volume_curve": list(curve.sources),
        }
        if json_out:
            main._emit(doc)
            return
        main.out.print(_table("Nonlinear optimum (t in s since the open)", sch.times, sch.holdings, sch.trades))
        main.out.print(f"expected cost {cost.total:.2f} bps, timing sd {doc['timing_std_bps']:.2f} bps")


@schedule_app.command("volume")
def volume_schedule(
    shares: SharesOpt,
    symbol: Annotated[str, typer.Option(help="Symbol whose day gives the volume curve and ADV.")],
    kind: Annotated[VolumeKind, typer.Option(help="twap, vwap or pov.")] = VolumeKind.vwap,
    horizon: Annotated[str, typer.Option(help="Horizon (twap, vwap), e.g. 1h.")] = "1h",
    rate: Annotated[float, typer.Option(help="Participation (pov).")] = 0.1,
    step: Annotated[str, typer.Option(help="Step length.")] = "5m",
    start: Annotated[str, typer.Option(help="Start, time after the open.")] = "30m",
    data: Annotated[Path | None, typer.Option(help="Market data directory.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """TWAP, VWAP or POV on the volume curve estimated from the symbol's day (and its venue's other days)."""
    from impactlab.calibration.blocks import day_context
    from impactlab.schedules import VolumeCurve, pov, twap, vwap

    main = _cli()
    with main._errors():
        day = _day(symbol, data)
        curve = VolumeCurve.from_days(volume_days(day, data))
        adv = day_context(day)[0]
        h, st, s0 = main.parse_duration_s(horizon), main.parse_duration_s(step), main.parse_duration_s(start)
        if kind == VolumeKind.pov:
            sch = pov(shares, rate, curve=curve, daily_volume=adv, step_s=st, start_s=s0)
        elif kind == VolumeKind.vwap:
            sch = vwap(shares, h, curve=curve, daily_volume=adv, step_s=st, start_s=s0)
        else:
            sch = twap(shares, h, step_s=st, start_s=s0, curve=curve, daily_volume=adv)
        doc = {**sch.summary(), "adv": adv, "volume_curve": list(curve.sources)}
        if json_out:
            main._emit(doc)
            return
        main.out.print(
            _table(f"{kind.value.upper()} {symbol} (t in s since the open)", sch.times, sch.holdings, sch.trades)
        )


def pretrade_cmd(
    side: Annotated[Side, typer.Option(help="buy or sell (any case).", case_sensitive=False)],
    qty: Annotated[float, typer.Option(help="Quantity in the instrument's unit (shares, contracts, coins).")],
    symbol: Annotated[
        str | None, typer.Option(help="Symbol, found through the data catalog (its deepest file is the market).")
    ] = None,
    date: Annotated[str | None, typer.Option(help="Trading date YYYY-MM-DD [default: the first one].")] = None,
    depth: Annotated[int | None, typer.Option(help="Book depth to choose [default: the deepest].")] = None,
    venue: Annotated[str | None, typer.Option(help="Venue, where the symbol trades on several.")] = None,
    file: Annotated[
        list[Path] | None, typer.Option("--file", help="Explicit market-data file(s) instead of --symbol.")
    ] = None,
    model: Annotated[
        Path | None, typer.Option(help="A saved impact model (JSON) [default: calibrate on the symbol's day].")
    ] = None,
    allow_other_instrument: Annotated[
        bool, typer.Option("--allow-other-instrument", help="Use a --model fitted on another instrument.")
    ] = False,
    horizon: Annotated[
        str | None, typer.Option(help="Longest horizon allowed, e.g. 2h [default: the session].")
    ] = None,
    urgency: Annotated[Urgency | None, typer.Option(help="Strategy to recommend [default: least 95% VaR].")] = None,
    start: Annotated[
        str | None,
        typer.Option(help="Arrival, time after the day's start [default: 30m, or a tenth of a shorter day]."),
    ] = None,
    threshold: Annotated[float, typer.Option(help="Report P(cost > threshold bps).")] = 10.0,
    max_participation: Annotated[float, typer.Option("--max-participation", help="Participation cap.")] = 0.25,
    data: Annotated[Path | None, typer.Option(help="Market data directory.")] = None,
    json_out: JsonOpt = False,
    html_out: Annotated[Path | None, typer.Option("--html", help="Write the HTML report (with plots) here.")] = None,
    store: Annotated[
        Path | None,
        typer.Option(help="Price with the live model version in this store (the hedging engine's or the service's)."),
    ] = None,
) -> None:
    """Pre-trade analysis of a block: cost curve over horizons and aggressive / balanced / passive strategies."""
    main = _cli()
    with main._errors():
        from impactlab.cli.market import resolve_market

        day = resolve_market(symbol=symbol, date=date, depth=depth, venue=venue, files=file, data=data)
        report = build_pretrade(
            day.symbol,
            1 if side == Side.buy else -1,
            qty,
            model=model,
            horizon_s=main.parse_duration_s(horizon) if horizon else None,
            urgency=urgency.value if urgency else None,
            start_s=default_start_s(day, start),
            threshold_bps=threshold,
            max_participation=max_participation,
            data=data,
            day=day,
            allow_other_instrument=allow_other_instrument,
            store=store,
        )
        if html_out is not None:
            html_out.parent.mkdir(parents=True, exist_ok=True)
            html_out.write_text(report.to_html())
        if json_out:
            main._emit(report.to_dict())
            return
        for t in report.tables():
            main.out.print(t)
        for n in report.notes:
            main.out.print(f"- {n}")
        if html_out is not None:
            main.out.print(f"HTML report written to {html_out}")


def build_pretrade(
    symbol: str,
    side: int,
    qty: float,
    *,
    model: Path | None = None,
    horizon_s: float | None = None,
    urgency: str | None = None,
    start_s: float | None = None,
    threshold_bps: float = 10.0,
    max_participation: float = 0.25,
    data: Path | None = None,
    day: Any = None,
    allow_other_instrument: bool = False,
    store: Path | None = None,
) -> Any:
    """The report ``impactlab pretrade`` prints: market and (unless ``model`` is given) cost model calibrated on
    the symbol's day (``day``, or found through the catalog), at the live version of ``store`` if given."""
    from impactlab.calibration.costmodel import calibrate_instrument
    from impactlab.calibration.pretrade import market_context
    from impactlab.impact import load_model
    from impactlab.schedules import ModelCost, pretrade

    day = day if day is not None else _day(symbol, data)
    start = default_start_s(day, None) if start_s is None else start_s
    notes: list[str] = list(day.notes)
    if model is not None:
        market = market_context(day, start_s=start, side=side, volume_days=volume_days(day, data))
        fitted = load_model(model)
        check_model_instrument(fitted, day, allow=allow_other_instrument, path=model, notes=notes)
        cost: Any = ModelCost(fitted)
        name = f"{type(fitted).__name__} from {model.name}"
    else:
        inst = calibrate_instrument(day, start_s=start, volume_days=volume_days(day, data))
        version = ""
        if store is not None:  # the store's live version: what the hedging engine and the service price with
            inst, version = live_version(inst, store, notes)
        market = inst.market(side)
        book = inst.fit
        d = book.describe()
        cost = inst
        notes.extend(book.notes)
        if inst.has_transient:
            name = (
                f"{day.label} ({day.source}): half-spread {d['half_spread_bps']:.3g} bps + OW transient "
                f"(q {d['depth_shares_per_bps']:.0f} per bps, half-life {d['half_life_s']:.1f} s) + ½ square-root "
                f"permanent (Y {d['sqrt_Y']:.3g}, δ {d['sqrt_delta']:.2f})"
            )
        else:
            name = (
                f"{day.label} ({day.source}): half-spread {d['half_spread_bps']:.3g} bps + square-root law "
                f"(Y {d['sqrt_Y']:.3g}, δ {d['sqrt_delta']:.2f}); no transient book term ("
                + (
                    "top of book only"
                    if day.depth < 2
                    else "Obizhaeva–Wang not identified on this book"
                    if book.ow is None
                    else "the book's transient fit did not beat none out of sample"
                )
                + ")"
            )
        sel = inst.selection.get("scores")
        if sel:
            notes.append("form chosen out of sample (" + str(inst.selection.get("on")) + "): " + "; ".join(
                f"{k} RMSE {v['oos_rmse_bps']:.3f} bps" for k, v in sel.items() if "oos_rmse_bps" in v)
                + f" -> {inst.selection.get('chosen')}")  # fmt: skip
        name += f"; version {version}" if version else "; the day's calibration (no store: unversioned)"
    report = pretrade(
        qty,
        side=side,
        model=cost,
        market=market,
        horizon_s=horizon_s,
        urgency=urgency,  # type: ignore[arg-type]
        threshold_bps=threshold_bps,
        max_participation=max_participation,
        model_name=name,
    )
    return attach_market(report, day, notes)


def live_version(model: Any, store: Path, notes: list[str]) -> tuple[Any, str]:
    """``model`` at the live version its instrument has in ``store`` (read only), with a note either way."""
    from impactlab.calibration.costmodel import ModelVersions
    from impactlab.data import Store

    with Store(store, read_only=True) as st:
        v = ModelVersions(st)
        row = v.live_row(model.symbol)
        held = v.pending_row(model.symbol)
    if row is None:
        notes.append(f"{store} holds no version of {model.symbol}'s model: the day's calibration is used")
        return model, ""
    if held is not None:
        notes.append(f"{held['version']} is held for approval; the live {row['version']} prices this report")
    return model.restored(row), str(row["version"])


def attach_market(report: Any, day: Any, notes: list[str]) -> Any:
    """The report with the instrument, its units and the loaders' notes added."""
    import dataclasses

    spec = day.spec
    extra = [
        f"instrument: {spec.symbol} on {spec.venue} ({spec.asset_class}, {spec.contract_type}"
        + (f", contract value {spec.contract_value:g} {spec.quote_currency}" if spec.inverse else "")
        + (f", multiplier {spec.multiplier:g}" if spec.multiplier != 1 else "")
        + f"; quantities in {spec.size_unit}, money in {spec.settlement_currency})"
    ]
    merged = list(dict.fromkeys([*extra, *notes, *report.notes]))
    return dataclasses.replace(report, notes=tuple(merged), instrument=spec)


def check_model_instrument(model: Any, day: Any, *, allow: bool, path: Any, notes: list[str]) -> None:
    """Refuse a model fitted on another instrument unless ``allow`` (and say so either way)."""
    from impactlab.errors import CalibrationError

    fitted_on = getattr(model, "instrument_", None)
    if not fitted_on:
        notes.append(f"{path}: the model file names no instrument (saved before instruments were recorded)")
        return
    sym, ven = str(fitted_on.get("symbol", "")), str(fitted_on.get("venue", ""))
    if sym.upper() == day.symbol.upper() and ven.upper() == day.venue.upper():
        return
    msg = f"{path} was fitted on {sym} ({ven}), not {day.symbol} ({day.venue})"
    if not allow:
        raise CalibrationError(msg + "; pass --allow-other-instrument to use it anyway")
    notes.append(msg + " (used because --allow-other-instrument was given)")
