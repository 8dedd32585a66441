"""``impactlab hedge``: run the hedging engine over a scenario and compare policies."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from impactlab.cli.schedules import _cli
from impactlab.errors import HedgingError

hedge_app = typer.Typer(help="The automated hedging engine: scenarios and policy comparison.", no_args_is_help=True)


OVERLAY_NOTE = "; the +overlay policy: the trained RL overlay sizes and prices each child instead of the router"


class ScenarioKind(StrEnum):
    replay = "replay"
    sim = "sim"


def build_hedge_scenario(
    *,
    scenario: str = "replay",
    seed: int = 0,
    symbol: str = "GOOG",
    contracts: float | None = None,
    threshold_shares: float | None = None,
    risk_aversions: tuple[float, ...] = (1e-4, 1e-3, 1e-2),
    twap_horizons_s: tuple[float, ...] = (60.0, 300.0),
    start_s: float | None = None,
    end_s: float | None = None,
    md_step_s: float | None = None,
    overlay_agent: Path | None = None,
    overlay_risk_aversion: float = 1e-3,
    out_dir: Path,
    data: Path | None = None,
    progress: Any = None,
    day: Any = None,
    existing: str = "refuse",
    approve_above: float = 0.5,
    recalibrate_every: int = 5,
) -> tuple[list[Any], dict[str, Any]]:
    """Hedge a short-call book over the replayed day (``scenario="replay"``) or the simulator fitted to it
    (``"sim"``, seeded; ``end_s − start_s`` seconds of it) under immediate, TWAP and impact-aware policies,
    each on its own store under ``out_dir``; returns the results and the scenario's description.

    ``overlay_agent`` (a directory saved by ``impactlab rl train --agent overlay``) adds the RL overlay: the
    impact-aware policy at ``overlay_risk_aversion`` whose children the trained overlay sizes and prices
    instead of the router.

    Defaults follow the market: on an equity, 400 short calls of 100 shares and a 1,000-share threshold over
    10 minutes to 6 h 15 after the open; elsewhere a book whose delta is about 2% of the day's volume (options
    of one unit each), a threshold of a quarter of the delta its gamma is expected to make over the window
    (Γ σ √T / 4), and the day's data from 10% to 95% of its span."""
    from impactlab.calibration.costmodel import calibrate_instrument
    from impactlab.config import data_dir
    from impactlab.hedging import HedgingConfig
    from impactlab.hedging.scenario import BookSpec, ReplaySource, SimulatorSource, compare_policies
    from impactlab.rl.tasks import load_day
    from impactlab.simulation import ReplayData

    day = day if day is not None else load_day(symbol, data or data_dir())
    symbol = day.symbol
    model = calibrate_instrument(day)
    sigma = model.sigma(model.market(1))
    equity = day.spec.asset_class == "equity"
    vol = max(day.volume(), day.spec.lot_size)
    lot = day.spec.lot_size
    if contracts is None:
        contracts = -400.0 if equity else -max(round(0.04 * vol / lot) * lot, lot)
    if threshold_shares is None and equity:
        threshold_shares = 1_000.0
    span = day.session_s
    start_s = (600.0 if span >= 22_500.0 else 0.1 * span) if start_s is None else start_s
    end_s = (22_500.0 if span >= 22_500.0 else 0.95 * span) if end_s is None else end_s
    md_step_s = min(5.0, span / 100) if md_step_s is None else md_step_s
    if not 0 <= start_s < end_s <= span:
        raise HedgingError(f"the window {start_s:g}–{end_s:g} s is not within the {span:.0f} s of {day.label}")
    book = BookSpec(contracts=contracts, multiplier=100.0 if equity else 1.0)
    if threshold_shares is None:  # a quarter of the delta the book's gamma is expected to make over the window
        import math

        from impactlab.hedging.greeks import book_greeks
        from impactlab.hedging.scenario import _portfolio

        mid0 = day.first_mid()
        t0 = day.start_ns + int(start_s * 1e9)
        p = _portfolio(day, book, t0, mid0, sigma / mid0 * math.sqrt(252 * day.spec.calendar.length_s()))
        drift = abs(book_greeks(p, mid0, t0).gamma_shares_per_unit) * sigma * math.sqrt(end_s - start_s)
        threshold_shares = max(round(drift / 4 / lot) * lot, lot)
    base = {"underlying": symbol, "threshold_shares": threshold_shares, "approve_above": approve_above,
            "recalibrate_every": recalibrate_every}  # fmt: skip
    policies: list[tuple[str, Any, Any]] = [
        ("immediate", HedgingConfig.from_dict({**base, "policy": "immediate"}), None)
    ]
    policies += [(f"twap-{h:g}s", HedgingConfig.from_dict({**base, "policy": "twap", "twap_horizon_s": h}), None)
                 for h in twap_horizons_s]  # fmt: skip
    policies += [(f"impact-λ{lam:g}", HedgingConfig.from_dict({**base, "policy": "impact", "risk_aversion": lam}),
                  None) for lam in risk_aversions]  # fmt: skip
    if overlay_agent is not None:
        from impactlab.execution import OverlayChildPolicy
        from impactlab.rl import load_policy

        agent = load_policy(overlay_agent)
        if getattr(agent, "kind", None) != "overlay":
            raise HedgingError(
                f"{overlay_agent}: not an overlay agent (train one with 'impactlab rl train --agent overlay')"
            )
        lam = overlay_risk_aversion
        policies.append((f"impact-λ{lam:g}+overlay",
                         HedgingConfig.from_dict({**base, "policy": "impact", "risk_aversion": lam}),
                         lambda market: OverlayChildPolicy(agent, market)))  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    if scenario not in ("replay", "sim"):
        raise HedgingError(f"'scenario' must be replay or sim, got {scenario!r}")
    replay = ReplayData.from_day(day) if scenario == "replay" else None
    sources: list[Any] = []

    def source() -> Any:
        if scenario == "replay":
            src: Any = ReplaySource(day, start_s=start_s, end_s=end_s, md_step_s=md_step_s, data=replay)
        else:
            src = SimulatorSource(day, duration_s=end_s - start_s, md_step_s=md_step_s, seed=seed)
        sources.append(src)
        return src

    task = progress.add_task("hedging scenarios", total=len(policies)) if progress is not None else None
    results = compare_policies(source, model, out_dir, policies=policies, book=book, existing=existing,
                               pnl_interval_s=min(300.0, (end_s - start_s) / 20),
                               on_done=None if task is None else lambda _: progress.advance(task))  # fmt: skip
    described = sources[-1].describe if sources else ""
    meta = {
        "scenario": described,
        "book": f"{contracts:g} calls ×{book.multiplier:g} at the money, {book.expiry_days:g} days, implied vol = the "
        "day's σ",
        "market": day.label,
        "source_format": day.source,
        "instrument": day.spec.to_dict(),
        "notes": list(day.notes)
        + (
            [
                f"costs and P&L are in {day.spec.quote_currency}: price × quantity × the contract multiplier "
                f"({day.spec.multiplier:g})"
            ]
            if day.spec.multiplier != 1
            else []
        )
        + (
            [
                f"inverse contract: costs and P&L are in {day.spec.settlement_currency} (a contract is "
                f"{day.spec.contract_value:g} USD, worth {day.spec.contract_value:g}/price coins; the '$' columns "
                f"are {day.spec.settlement_currency})"
            ]
            if day.spec.inverse
            else []
        ),
        "threshold_shares": threshold_shares,
        "model": {
            "kind": model.label,
            "source": model.source,
            "sigma_usd_per_sqrt_s": sigma,
            **{k: v for k, v in model.fit.describe().items() if isinstance(v, int | float)},
            "versions": sorted({v for r in results for v in r.model_versions}),
        },
        "execution": f"slicer + Cont–Kukanov router + risk gate on the {scenario} (the hedges move the book)"
        + ("" if overlay_agent is None else OVERLAY_NOTE),
        "stores": str(out_dir),
    }
    return results, meta


@hedge_app.command("run")
def run_cmd(
    scenario: Annotated[
        ScenarioKind,
        typer.Option(help="replay: the real day (the hedges' own orders move it); sim: the simulator fitted to it."),
    ] = ScenarioKind.replay,
    seed: Annotated[int, typer.Option(help="Simulator seed (sim).")] = 0,
    symbol: Annotated[str, typer.Option(help="Symbol (see `impactlab data catalog`).")] = "GOOG",
    date: Annotated[str | None, typer.Option(help="Trading date YYYY-MM-DD.")] = None,
    file: Annotated[list[Path] | None, typer.Option("--file", help="Explicit market-data file(s).")] = None,
    contracts: Annotated[
        float | None,
        typer.Option(help="Calls held (negative: short) [default: -400 ×100 on equities, else ~2% of volume]."),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(help="Hedge when |delta| passes this much [default: 1,000 shares, else 0.2% of volume]."),
    ] = None,
    risk_aversion: Annotated[str, typer.Option(help="λ values for the impact-aware policy, comma separated.")] = (
        "1e-4,1e-3,1e-2"
    ),
    twap: Annotated[str, typer.Option(help="TWAP horizons to compare, e.g. 1m,5m.")] = "1m,5m",
    start: Annotated[
        str | None, typer.Option(help="Start after the day's start [default: 10m, or 10% of a short day].")
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="End after the day's start [default: 6h15m, or 95% of a short day].")
    ] = None,
    step: Annotated[str | None, typer.Option(help="Market-data interval [default: 5s, or 1% of a short day].")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Directory for the scenario stores.")] = None,
    data: Annotated[Path | None, typer.Option(help="Market data directory.")] = None,
    overlay_agent: Annotated[
        Path | None,
        typer.Option(help="Add the RL overlay: a directory from 'impactlab rl train --agent overlay'."),
    ] = None,
    overlay_risk_aversion: Annotated[
        float, typer.Option(help="λ of the impact-aware policy the overlay works.")
    ] = 1e-3,
    approve_above: Annotated[
        float,
        typer.Option(
            help="A recalibration moving a reference order's cost by more than this fraction waits for "
            "`impactlab models approve` (the live version keeps pricing)."
        ),
    ] = 0.5,
    resume: Annotated[bool, typer.Option("--resume", help="Carry on the journals already in --out.")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Delete the journals in --out and start again.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    html_out: Annotated[Path | None, typer.Option("--html", help="Write the HTML report (with the frontier).")] = None,
) -> None:
    """Hedge an options book over a scenario under immediate, TWAP and impact-aware (Almgren–Chriss) policies;
    print cost against hedging-error variance and write the frontier."""
    from impactlab.config import default_store_path
    from impactlab.hedging.report import report_html, report_json, report_table

    main = _cli()
    with main._errors():
        lams = tuple(float(x) for x in risk_aversion.split(",") if x.strip())
        hz = tuple(main.parse_duration_s(x) for x in twap.split(",") if x.strip())
        if not lams or any(not (x >= 0) for x in lams):
            raise typer.BadParameter(f"--risk-aversion needs values >= 0, got {risk_aversion!r}")
        if resume and replace:
            raise typer.BadParameter("--resume and --replace exclude each other")
        target = out_dir or Path(default_store_path()).parent / "hedging"
        from impactlab.cli.market import resolve_market

        day = resolve_market(symbol=None if file else symbol, date=date, files=file, data=data)
        with main._progress() as prog:
            results, meta = build_hedge_scenario(
                scenario=scenario.value, seed=seed, symbol=day.symbol, contracts=contracts, threshold_shares=threshold,
                risk_aversions=lams, twap_horizons_s=hz,
                start_s=main.parse_duration_s(start) if start else None,
                end_s=main.parse_duration_s(end) if end else None,
                md_step_s=main.parse_duration_s(step) if step else None, out_dir=target, data=data, progress=prog,
                overlay_agent=overlay_agent, overlay_risk_aversion=overlay_risk_aversion, day=day,
                existing="resume" if resume else "replace" if replace else "refuse", approve_above=approve_above,
            )  # fmt: skip
    if html_out is not None:
        html_out.write_text(report_html(results, title=f"Hedging scenario: {meta['scenario']}", meta=meta))
    if as_json:
        main._emit(report_json(results, meta=meta))
        return
    main.out.print(report_table(results))
    if html_out is not None:
        main.out.print(f"report written to {html_out}")
