"""``impactlab calibrate universe`` and ``impactlab data universe``: the partitioned dataset and its
calibration on local processes or a Dask cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

universe_app = typer.Typer(no_args_is_help=True, help="The universe dataset: Parquet partitioned by symbol and date.")


@universe_app.command("build")
def build_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Dataset root to write.")],
    data: Annotated[Path | None, typer.Option(help="Market data [default: $IMPACTLAB_DATA].")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Write every LOBSTER day and Binance capture under DATA as partitions of OUT."""
    from impactlab.calibration.partitions import build_universe
    from impactlab.cli.main import _emit, _errors, err, out
    from impactlab.config import data_dir

    with _errors(), err.status("converting LOBSTER days and Binance captures…"):
        res = build_universe(data or data_dir(), out_dir)
    if json_out:
        _emit(res)
        return
    t = Table(title=f"universe dataset at {out_dir}")
    for c in ("partition", "book states", "trades"):
        t.add_column(c, justify="right")
    for k, v in res["rows"].items():
        t.add_row(k, f"{v['states']:,}", f"{v['trades']:,}")
    out.print(t)
    for s in res["skipped"]:
        out.print(f"[yellow]skipped:[/yellow] {s}")


@universe_app.command("synth")
def synth_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Dataset root to write.")],
    instruments: Annotated[int, typer.Option(min=1, max=100_000, help="Synthetic instruments.")] = 100,
    days: Annotated[int, typer.Option(min=1, max=2_000, help="Business days each.")] = 1,
    session: Annotated[str, typer.Option(help="Simulated session per day, e.g. 6.5h, 30m.")] = "6.5h",
    seed: Annotated[int, typer.Option(help="Universe seed.")] = 0,
) -> None:
    """Simulate instrument-days with the queue-reactive simulator and write them as a universe dataset."""
    from impactlab.cli.main import _errors, _progress, out, parse_duration_s
    from impactlab.simulation.universe import SyntheticUniverse, write_synthetic_universe

    with _errors():
        u = SyntheticUniverse(instruments=instruments, days=days, session_s=parse_duration_s(session), seed=seed)
        with _progress() as prog:
            bar = prog.add_task("simulating", total=instruments * days)
            keys = write_synthetic_universe(u, out_dir, on_written=lambda _k: prog.advance(bar))
    out.print(f"{len(keys):,} instrument-days written to {out_dir}")


def universe_calibrate(
    *,
    data: Path | None,
    models: str,
    scheduler: str | None,
    workers: int | None,
    store: Path | None,
    bar_s: float,
    splits: int,
    retries: int,
    symbols: str | None,
    resume: str | None,
    json_out: bool,
) -> None:
    """The body of ``impactlab calibrate universe``."""
    from impactlab.calibration.universe import calibrate_universe, universe_fits
    from impactlab.cli.main import _emit, _errors, _progress, out
    from impactlab.config import default_store_path
    from impactlab.data import Store
    from impactlab.data.universe import list_partitions
    from impactlab.errors import CalibrationError

    with _errors():
        if data is None:
            raise CalibrationError("calibrate universe needs --data DIR (a dataset from 'impactlab data universe')")
        names = [m.strip() for m in models.split(",") if m.strip()]
        syms = [s.strip() for s in symbols.split(",")] if symbols else None
        n = len([k for k in list_partitions(data) if not syms or k.symbol in syms])
        with Store(store or default_store_path()) as st, _progress() as prog:
            bar = prog.add_task("calibrating", total=n)
            run = calibrate_universe(data, names, st, scheduler=scheduler, workers=workers, bar_s=bar_s,
                                     n_splits=splits, retries=retries, symbols=syms, resume=resume,
                                     on_done=lambda _p, _s: prog.advance(bar))  # fmt: skip
            fits = universe_fits(st, run.run_id)
    res: dict[str, Any] = run.to_dict()
    ok = fits[fits["status"] == "ok"]
    res["models"] = {
        m: {"fitted": int((g["status"] == "ok").sum()), "failed": int((g["status"] != "ok").sum()),
            "median_oos_r2": float(ok[ok["model"] == m]["oos_r2"].median()) if (ok["model"] == m).any() else None}
        for m, g in fits.groupby("model")
    }  # fmt: skip
    if json_out:
        _emit(res)
        return
    out.print(
        f"run [bold]{run.run_id}[/bold] on {run.executor} ({run.workers} workers): {run.ok:,} of {run.partitions:,} "
        f"instrument-days fitted in {run.wall_s:.1f} s ({run.per_minute:,.0f} per minute); "
        f"{len(run.failed)} failed, {len(run.retried)} retried, {run.skipped} skipped (resumed)"
    )
    t = Table(title="models")
    for c in ("model", "fitted", "could not fit", "median OOS R²"):
        t.add_column(c, justify="right")
    for m, v in res["models"].items():
        r2 = v["median_oos_r2"]
        t.add_row(m, f"{v['fitted']:,}", f"{v['failed']:,}", "n/a" if r2 is None else f"{r2:.3f}")
    out.print(t)
    for p, why in run.failed.items():
        out.print(f"[red]failed:[/red] {p}: {why}")
    if run.failed:
        raise typer.Exit(1)
