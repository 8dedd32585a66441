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
    contracts: float = -400.0,
    threshold_shares: float = 1_000.0,
    risk_aversions: tuple[float, ...] = (1e-4, 1e-3, 1e-2),
    twap_horizons_s: tuple[float, ...] = (60.0, 300.0),
    start_s: float = 600.0,
    end_s: float = 22_500.0,
    md_step_s: float = 5.0,
    overlay_agent: Path | None = None,
    overlay_risk_aversion: float = 1e-3,
    out_dir: Path,
    data: Path | None = None,
    progress: Any = None,
) -> tuple[list[Any], dict[str, Any]]:
    """Hedge a short-call book over the replayed day (``scenario="replay"``) or the simulator fitted to it
    (``"sim"``, seeded; ``end_s − start_s`` seconds of it) under immediate, TWAP and impact-aware policies,
    each on its own store under ``out_dir``; returns the results and the scenario's description.

    ``overlay_agent`` (a directory saved by ``impactlab rl train --agent overlay``) adds the RL overlay: the
    impact-aware policy at ``overlay_risk_aversion`` whose children the trained overlay sizes and prices
    instead of the router."""
    from impactlab.config import data_dir
    from impactlab.hedging import HedgeCostModel, HedgingConfig
    from impactlab.hedging.scenario import BookSpec, ReplaySource, SimulatorSource, compare_policies
    from impactlab.rl.tasks import load_day
    from impactlab.simulation import ReplayData

    day = load_day(symbol, data or data_dir())
    model = HedgeCostModel.from_lobster(day)
    book = BookSpec(contracts=contracts)
    base = {"underlying": symbol, "threshold_shares": threshold_shares}
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
    replay = ReplayData.from_lobster(day) if scenario == "replay" else None
    sources: list[Any] = []

    def source() -> Any:
        if scenario == "replay":
            src: Any = ReplaySource(day, start_s=start_s, end_s=end_s, md_step_s=md_step_s, data=replay)
        else:
            src = SimulatorSource(day, duration_s=end_s - start_s, md_step_s=md_step_s, seed=seed)
        sources.append(src)
        return src

    task = progress.add_task("hedging scenarios", total=len(policies)) if progress is not None else None
    results = compare_policies(source, model, out_dir, policies=policies, book=book,
                               on_done=None if task is None else lambda _: progress.advance(task))  # fmt: skip
    described = sources[-1].describe if sources else ""
    meta = {
        "scenario": described,
        "book": f"{contracts:g} calls ×100 at the money, {book.expiry_days:g} days, implied vol = the day's σ",
        "threshold_shares": threshold_shares,
        "model": {
            "version": model.version,
            "sigma_usd_per_sqrt_s": model.sigma,
            "eta": model.eta,
            "gamma": model.gamma,
            "epsilon_usd": model.epsilon,
            "source": model.source,
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
    symbol: Annotated[str, typer.Option(help="LOBSTER symbol.")] = "GOOG",
    contracts: Annotated[float, typer.Option(help="Calls held (negative: short), ×100 shares each.")] = -400.0,
    threshold: Annotated[float, typer.Option(help="Hedge when |delta| passes this many shares.")] = 1_000.0,
    risk_aversion: Annotated[str, typer.Option(help="λ values for the impact-aware policy, comma separated.")] = (
        "1e-4,1e-3,1e-2"
    ),
    twap: Annotated[str, typer.Option(help="TWAP horizons to compare, e.g. 1m,5m.")] = "1m,5m",
    start: Annotated[str, typer.Option(help="Start, time after the open.")] = "10m",
    end: Annotated[str, typer.Option(help="End, time after the open.")] = "6h15m",
    step: Annotated[str, typer.Option(help="Market-data interval.")] = "5s",
    out_dir: Annotated[Path | None, typer.Option("--out", help="Directory for the scenario stores.")] = None,
    data: Annotated[Path | None, typer.Option(help="Market data directory.")] = None,
    overlay_agent: Annotated[
        Path | None,
        typer.Option(help="Add the RL overlay: a directory from 'impactlab rl train --agent overlay'."),
    ] = None,
    overlay_risk_aversion: Annotated[
        float, typer.Option(help="λ of the impact-aware policy the overlay works.")
    ] = 1e-3,
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
        target = out_dir or Path(default_store_path()).parent / "hedging"
        with main._progress() as prog:
            results, meta = build_hedge_scenario(
                scenario=scenario.value, seed=seed, symbol=symbol, contracts=contracts, threshold_shares=threshold,
                risk_aversions=lams,
                twap_horizons_s=hz, start_s=main.parse_duration_s(start), end_s=main.parse_duration_s(end),
                md_step_s=main.parse_duration_s(step), out_dir=target, data=data, progress=prog,
                overlay_agent=overlay_agent, overlay_risk_aversion=overlay_risk_aversion,
            )  # fmt: skip
    if html_out is not None:
        html_out.write_text(report_html(results, title=f"Hedging scenario: {meta['scenario']}", meta=meta))
    if as_json:
        main._emit(report_json(results, meta=meta))
        return
    main.out.print(report_table(results))
    if html_out is not None:
        main.out.print(f"report written to {html_out}")
