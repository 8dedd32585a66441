"""The ``impactlab`` command: thin over the library."""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from impactlab.book.check import replay_check
from impactlab.cli.market import DataOpt, DateOpt, DepthOpt, FileOpt, SymbolOpt, VenueOpt, resolve_market
from impactlab.config import data_dir, default_store_path
from impactlab.data.binance import load_binance
from impactlab.data.catalog import load_files
from impactlab.data.lobster import _NAME, find_lobster_pairs, load_lobster
from impactlab.data.store import Store
from impactlab.data.tabular import load_fills, load_parent_orders, load_quotes, load_trades
from impactlab.errors import ImpactLabError
from impactlab.features.pipeline import FeatureSet, market_features

app = typer.Typer(no_args_is_help=True, help="impactlab: what your own trading will cost, before you trade.")


def _version(value: bool) -> None:
    if value:
        from impactlab import __version__

        sys.stdout.write(f"impactlab {__version__}\n")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """impactlab: what your own trading will cost, before you trade."""


data_app = typer.Typer(no_args_is_help=True, help="Load and validate market data and the system's own records.")
book_app = typer.Typer(no_args_is_help=True, help="Rebuild order books and check them.")
app.add_typer(data_app, name="data")
app.add_typer(book_app, name="book")
forecast_app = typer.Typer(no_args_is_help=True, help="Machine-learned impact forecasts on blocks: train, evaluate.")
app.add_typer(forecast_app, name="forecast")

out = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True)

StoreOpt = Annotated[
    Path | None, typer.Option("--store", help="DuckDB store file [default: ~/.impactlab/impactlab.duckdb]")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]


class Kind(StrEnum):
    auto = "auto"
    lobster = "lobster"
    binance = "binance"
    market = "market"
    trades = "trades"
    quotes = "quotes"
    orders = "orders"
    fills = "fills"


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?\s*$")
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|min|m|h)")
_UNIT_S = {"ms": 1e-3, "s": 1.0, None: 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration_s(text: str) -> float:
    """``'10s'``, ``'500ms'``, ``'1m'``, ``'2h'``, a compound ``'6h15m'`` / ``'1m30s'``, or a plain number of
    seconds, as seconds."""
    m = _DURATION.match(text)
    if m:
        value = float(m[1]) * _UNIT_S[m[2]]
    else:
        compact = text.strip().replace(" ", "")
        parts = _PART.findall(compact)
        value = sum(float(n) * _UNIT_S[u] for n, u in parts) if "".join(n + u for n, u in parts) == compact else -1
    if not value > 0:
        raise typer.BadParameter(f"expected a positive duration like 10s, 500ms, 1m or 6h15m, got {text!r}")
    return float(value)


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except ImpactLabError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from exc


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


def _emit(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o))


def _is_binance(path: Path) -> bool:
    from impactlab.data.validation import read_bytes

    if _NAME.match(path.name):
        return False
    try:
        head = read_bytes(path)[:64]
    except ImpactLabError:
        return False
    return bool(re.match(rb"^\d+ \{", head))


@data_app.command("load")
def data_load(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Files: LOBSTER message files (the order book is found beside them), Binance captures (one "
            "capture, in order), a Databento DBN file, a TAQ trades + quotes pair, or CSV/Parquet tables."
        ),
    ],
    kind: Annotated[
        Kind,
        typer.Option(help="What the files hold; auto (or market) reads any market-data format by its content."),
    ] = Kind.auto,
    mapping: Annotated[
        str | None, typer.Option(help='Column mapping as JSON, {"schema_field": "file_column"}.')
    ] = None,
    time_unit: Annotated[str, typer.Option(help="Unit of time columns in tables: ns, us, ms, s or iso.")] = "ns",
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Load and validate files; write load reports and quarantined rows to the store."""
    try:
        cols = json.loads(mapping) if mapping else None
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON ({exc})", param_hint="--mapping") from exc
    if cols is not None and not (isinstance(cols, dict) and all(isinstance(v, str) for v in cols.values())):
        raise typer.BadParameter('must be a JSON object {"schema_field": "file_column"}', param_hint="--mapping")
    with _errors():
        loads: list[tuple[Any, Any]] = []
        if (
            kind in (Kind.auto, Kind.market)
            and not any(_NAME.match(p.name) for p in paths)
            and not all(_is_binance(p) for p in paths)
        ):
            day = load_files(paths)
            loads.append((day.report, day.quarantine))
        elif kind in (Kind.auto, Kind.market, Kind.lobster, Kind.binance):
            binance = [
                p for p in paths if kind == Kind.binance or (kind in (Kind.auto, Kind.market) and _is_binance(p))
            ]
            others = [p for p in paths if p not in binance]
            with _progress() as prog:
                task = prog.add_task("loading", total=len(others) + (1 if binance else 0))
                for p in others:
                    if kind in (Kind.auto, Kind.market) and not _NAME.match(p.name):
                        raise typer.BadParameter(
                            f"{p}: not a LOBSTER or Binance file; say --kind trades|quotes|orders|fills"
                        )
                    d = load_lobster(p)
                    loads.append((d.report, d.quarantine))
                    prog.advance(task)
                if binance:
                    capture = load_binance(binance)
                    loads.append((capture.report, capture.quarantine))
                    prog.advance(task)
        else:
            loader: Callable[..., Any] = {
                Kind.trades: load_trades,
                Kind.quotes: load_quotes,
                Kind.orders: load_parent_orders,
                Kind.fills: load_fills,
            }[kind]
            for p in paths:
                t = loader(p, mapping=cols, time_unit=time_unit)
                loads.append((t.report, t.quarantine))
        with Store(store) as st:
            for report, quarantine in loads:
                st.record_load(report, quarantine)
        if json_out:
            _emit({"store": str(store or default_store_path()), "loads": [r.to_dict() for r, _ in loads]})
            return
        table = Table(title="Loads")
        for c in ("kind", "source", "read", "accepted", "quarantined", "reasons"):
            table.add_column(c)
        for r, _ in loads:
            table.add_row(
                r.kind,
                Path(r.source.split(" + ")[0]).name,
                str(r.rows_read),
                str(r.rows_accepted),
                str(r.rows_quarantined),
                json.dumps(r.reasons) if r.reasons else "-",
            )
        out.print(table)


@data_app.command("catalog")
def data_catalog(
    data: DataOpt = None,
    symbol: Annotated[str | None, typer.Option(help="Only this symbol.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Every instrument-day under a folder, in any supported format: symbol, venue, date, format, depth,
    rows and time span.  Commands take these as --symbol S --date D."""
    from impactlab.data.catalog import scan

    with _errors():
        cat = scan(data)
        entries = [e for e in cat.entries if symbol is None or e.symbol.upper() == symbol.upper()]
        if json_out:
            _emit({"root": str(cat.root), "entries": [e.to_dict() for e in entries], "notes": list(cat.notes)})
            return
        t = Table(title=f"Instrument-days under {cat.root}")
        for c in ("symbol", "venue", "date", "format", "depth", "rows", "from (UTC)", "span"):
            t.add_column(c, justify="right" if c in ("depth", "rows", "span") else "left")
        for e in entries:
            d = e.to_dict()
            span = d["span_s"]
            t.add_row(
                e.symbol,
                e.venue,
                d["date"],
                e.source,
                str(e.depth),
                f"{e.rows:,}",
                d["first_utc"][:19],
                f"{span / 3600:.1f} h" if span >= 3600 else f"{span:,.0f} s",
            )
        out.print(t)
        for n in cat.notes:
            out.print(f"[dim]note: {n}[/dim]")


@book_app.command("replay")
def book_replay(
    message: Annotated[Path, typer.Argument(help="LOBSTER message file.")],
    book: Annotated[
        Path | None, typer.Argument(help="LOBSTER order-book file [default: beside the message file].")
    ] = None,
    check: Annotated[bool, typer.Option("--check", help="Exit 1 unless every row matches the book file.")] = False,
    python: Annotated[bool, typer.Option("--python", help="Use the plain-Python twin of the kernel.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Apply every order event to the previous state and compare with the recorded book on every row (LOBSTER)."""
    with _errors():
        day = load_lobster(message, book)
        rep = replay_check(day, compiled=not python)
        res = {**rep.to_dict(), "quarantined_rows": day.report.rows_quarantined}
        if json_out:
            _emit(res)
        else:
            t = Table(title=f"Replay {day.symbol} L{day.depth}")
            t.add_column("metric")
            t.add_column("value", justify="right")
            for k, v in res.items():
                t.add_row(k, f"{v:,.0f}" if isinstance(v, float) and k.endswith("_s") else str(v))
            out.print(t)
        if check and rep.mismatched_rows:
            raise typer.Exit(1)


@book_app.command("binance")
def book_binance(
    paths: Annotated[list[Path], typer.Argument(help="Capture files of one symbol, in time order.")],
    depth: Annotated[int, typer.Option(min=1, max=100, help="Levels per side to record.")] = 10,
    no_snapshot: Annotated[bool, typer.Option("--no-snapshot", help="Rebuild from diffs alone.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Rebuild a Binance book from snapshot + diffs (or diffs alone) and check it against book tickers."""
    with _errors():
        day = load_binance(paths, depth=depth, use_snapshot=not no_snapshot)
        checks = day.extras["book_check"]
        res = {
            "symbol": day.symbol,
            "market": day.extras["market"],
            "venue": day.venue,
            **checks,
            "instrument": day.spec.to_dict(),
            "load": day.report.to_dict(),
        }
        if json_out:
            _emit(res)
            return
        t = Table(title=f"Binance {day.extras['market']} {day.symbol}")
        t.add_column("metric")
        t.add_column("value", justify="right")
        for k, v in checks.items():
            t.add_row(k, f"{v:,.3f}" if isinstance(v, float) else str(v))
        out.print(t)


@app.command("features")
def features(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Market-data file(s) in any format [or --symbol/--date].")
    ] = None,
    symbol: SymbolOpt = None,
    date: DateOpt = None,
    depth: DepthOpt = None,
    venue: VenueOpt = None,
    data: DataOpt = None,
    bar: Annotated[str, typer.Option(help="Bar length, e.g. 1s, 10s, 1m.")] = "10s",
    horizon: Annotated[str, typer.Option(help="Adverse-selection horizon.")] = "5s",
    adv: Annotated[float | None, typer.Option(help="ADV in shares [default: from the daily file].")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the Parquet files.")] = Path("features"),
    json_out: JsonOpt = False,
) -> None:
    """Compute per-event, per-trade and per-bar features and write them to Parquet."""
    with _errors():
        bar_s, horizon_s = parse_duration_s(bar), parse_duration_s(horizon)
        day = resolve_market(symbol=symbol, date=date, depth=depth, venue=venue, files=paths, data=data)
        fs = market_features(day, bar_s=bar_s, horizon_s=horizon_s, adv=adv)
        written = fs.write(out_dir)
        rows = {"events": fs.events.num_rows, "trades": fs.trades.num_rows, "bars": fs.bars.num_rows}
        res = {
            "symbol": fs.symbol,
            "market": day.describe(),
            "files": {k: str(v) for k, v in written.items()},
            "rows": rows,
            "meta": fs.meta,
        }
        if json_out:
            _emit(res)
        else:
            out.print(f"[bold]{fs.symbol}[/bold]: " + ", ".join(f"{k} {v:,}" for k, v in rows.items()))
            for k, v in written.items():
                out.print(f"  {k}: {v}")


def _calibrated_names() -> list[str]:
    from impactlab.impact.registry import MODELS

    return [n for n, m in MODELS.items() if m.family in ("parametric", "transient") and "blocks" not in m.fits_on]


@app.command("calibrate")
def calibrate_cmd(
    model: Annotated[
        str,
        typer.Argument(
            help=", ".join(_calibrated_names()) + " — or 'compare' to fit every model the data allow on the same "
            "splits (`impactlab models catalogue` says what each needs)."
        ),
    ],
    lobster: Annotated[
        list[Path] | None, typer.Option(help="LOBSTER message file (and optionally its book file).")
    ] = None,
    trades: Annotated[list[Path] | None, typer.Option(help="Binance capture file(s) of one symbol.")] = None,
    orders: Annotated[Path | None, typer.Option(help="Parent-order outcome file (CSV or Parquet).")] = None,
    symbol: SymbolOpt = None,
    date: DateOpt = None,
    depth: DepthOpt = None,
    venue: VenueOpt = None,
    file: FileOpt = None,
    bar: Annotated[str, typer.Option(help="Bar length for bar models, e.g. 1s, 10s, 60s.")] = "10s",
    splits: Annotated[int, typer.Option(min=1, max=50, help="Walk-forward test blocks.")] = 5,
    save: Annotated[Path | None, typer.Option(help="Write the fitted model as JSON here.")] = None,
    json_out: JsonOpt = False,
    data: Annotated[
        Path | None, typer.Option(help="The market-data folder for --symbol; universe: the partitioned dataset.")
    ] = None,
    models: Annotated[str, typer.Option(help="universe: models to fit, comma separated.")] = "sqrt,ofi,propagator",
    scheduler: Annotated[
        str | None, typer.Option(help="universe: Dask scheduler address [default: local processes].")
    ] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="universe: local worker processes.")] = None,
    store: StoreOpt = None,
    retries: Annotated[int, typer.Option(min=0, max=10, help="universe: extra attempts per partition.")] = 2,
    symbols: Annotated[str | None, typer.Option(help="universe: only these symbols, comma separated.")] = None,
    resume: Annotated[str | None, typer.Option(help="universe: finish this run id.")] = None,
) -> None:
    """Fit an impact model with standard errors and walk-forward out-of-sample metrics.

    ``impactlab calibrate universe --data DIR`` fits every instrument-day of a partitioned dataset instead,
    on local processes or a Dask cluster, and records the results in the store.
    """
    from impactlab.calibration.runner import MODELS, calibrate, load_source
    from impactlab.errors import CalibrationError, InsufficientDepthError

    if model == "universe":
        from impactlab.cli.universe import universe_calibrate

        universe_calibrate(data=data, models=models, scheduler=scheduler, workers=workers, store=store,
                           bar_s=parse_duration_s(bar), splits=splits, retries=retries, symbols=symbols,
                           resume=resume, json_out=json_out)  # fmt: skip
        return
    with _errors():
        if lobster is not None and not 1 <= len(lobster) <= 2:
            raise CalibrationError("--lobster takes a message file and optionally its book file")
        day = (
            resolve_market(symbol=symbol, date=date, depth=depth, venue=venue, files=file, data=data)
            if symbol or file
            else None
        )
        src = load_source(
            day=day,
            lobster=(lobster[0], lobster[1] if len(lobster) == 2 else None) if lobster else None,
            trades=list(trades) if trades else None,
            orders=orders,
            bar_s=parse_duration_s(bar),
        )
        if model != "compare":
            res = calibrate(model, src, n_splits=splits, save=save)
            if json_out:
                _emit(res)
                return
            t = Table(title=f"{res['model']} on {res['source']} ({res['dataset']}, n = {res['n']:,})")
            for c in ("parameter", "estimate", "std err", "95% interval"):
                t.add_column(c, justify="right")
            for k, v in res["params"].items():
                se = res["stderr"].get(k)
                ci = res["conf_int"].get(k)
                t.add_row(
                    k,
                    f"{v:.6g}",
                    f"{se:.3g}" if se is not None else "fixed",
                    f"[{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "",
                )
            out.print(t)
            for phase in ("in_sample", "out_of_sample"):
                m = res["metrics"][phase]
                out.print(
                    f"{phase}: RMSE {m['rmse_bps']:.3f} bps, MAE {m['mae_bps']:.3f} bps, R² {m['r2']:.3f}, "
                    f"90% coverage {m.get('coverage', float('nan')):.1%}"
                )
            for note in res["notes"]:
                out.print(f"[dim]note: {note}[/dim]")
            return
        rows = []
        skipped: list[dict[str, str]] = []
        for name, (_, kinds) in MODELS.items():
            needs = kinds.split("|")
            if not any(k in src.builders for k in needs):
                why = next((src.missing[k] for k in needs if k in src.missing), None)
                if why is not None or src.kind != "orders":
                    skipped.append({"model": name, "reason": why or f"needs {' or '.join(needs)} data"})
                continue
            try:
                r = calibrate(name, src, n_splits=splits)
            except (CalibrationError, InsufficientDepthError) as exc:
                skipped.append({"model": name, "reason": str(exc)})
                continue
            rows.append(
                {
                    "model": name,
                    "dataset": r["dataset"],
                    "n": r["n"],
                    **{
                        f"{ph}_{k}": r["metrics"][ph][k]
                        for ph in ("in_sample", "out_of_sample")
                        for k in ("rmse_bps", "mae_bps", "r2")
                    },
                    "oos_coverage_90": r["metrics"]["out_of_sample"].get("coverage"),
                }
            )
        if json_out:
            _emit({"source": src.label, "models": rows, "skipped": skipped, "notes": list(dict.fromkeys(src.notes))})
            return
        t = Table(title=f"Model comparison on {src.label} (walk-forward, {splits} test blocks)")
        for c in ("model", "dataset", "n", "IS RMSE", "IS R²", "OOS RMSE", "OOS MAE", "OOS R²", "OOS 90% cover"):
            t.add_column(c, justify="right")
        for r in rows:
            t.add_row(
                r["model"],
                r["dataset"],
                f"{r['n']:,}",
                f"{r['in_sample_rmse_bps']:.3f}",
                f"{r['in_sample_r2']:.3f}",
                f"{r['out_of_sample_rmse_bps']:.3f}",
                f"{r['out_of_sample_mae_bps']:.3f}",
                f"{r['out_of_sample_r2']:.3f}",
                f"{r['oos_coverage_90']:.1%}",
            )
        out.print(t)
        for sk in skipped:
            out.print(f"[yellow]skipped {sk['model']}:[/yellow] {sk['reason']}")
        for note in dict.fromkeys(src.notes):
            out.print(f"[dim]note: {note}[/dim]")


def _num(x: float | None, spec: str = ".2f") -> str:
    return "n/a" if x is None or not np.isfinite(x) else format(x, spec)


def _ofi_r2(bars: Any) -> float:
    d = bars.to_pandas()
    ok = d["d_mid"].notna() & (d["n_events"] > 0)
    x, y = d.loc[ok, "ofi"].to_numpy(float), d.loc[ok, "d_mid"].to_numpy(float)
    if x.size < 3 or y.var() == 0:
        return float("nan")
    beta = np.polyfit(x, y, 1)
    return float(1 - np.var(y - np.polyval(beta, x)) / np.var(y))


@app.command("demo")
def demo(
    data: Annotated[
        Path | None, typer.Option(help="Market data directory [default: $IMPACTLAB_DATA or ../shared/data].")
    ] = None,
    store: StoreOpt = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Feature Parquet directory [default: beside the store].")
    ] = None,
) -> None:
    """Load GOOG and AMZN, rebuild and check every book, compute features, calibrate the impact models, print a
    summary, and end with the pre-trade report for buying 50,000 GOOG from models calibrated on its day."""
    with _errors():
        root = data or data_dir()
        pairs = [pr for pr in find_lobster_pairs(root / "lobster") if pr[0].name.split("_")[0] in ("GOOG", "AMZN")]
        pairs.sort(key=lambda pr: (pr[0].name.split("_")[0], int(pr[0].name.rsplit("_", 1)[1].split(".")[0])))
        tmp = None
        if not pairs:
            from impactlab.testing import write_synthetic_lobster

            tmp = tempfile.TemporaryDirectory()
            err.print(
                f"[yellow]No LOBSTER data under {root}: running on a synthetic day from impactlab.testing "
                "(the calibrated simulator comes with a later release).[/yellow]"
            )
            syn = write_synthetic_lobster(tmp.name, seed=7, n_events=20_000, levels=5)
            pairs = [(syn.message_path, syn.book_path)]
        captures = [
            [root / "binance/spot/btcusdt_20240808.gz", root / "binance/spot/btcusdt_20240809.gz"],
            [root / "binance/usdm/btcusdt_20240718.gz", root / "binance/usdm/btcusdt_20240719.gz"],
            [root / "binance/usdm/ethusdt_20240718.gz", root / "binance/usdm/ethusdt_20240719.gz"],
        ]
        captures = [c for c in captures if all(p.exists() for p in c)]
        store_path = store or default_store_path()
        feat_dir = out_dir or Path(store_path).parent / "features"
        rebuild = Table(title="Book reconstruction (LOBSTER: every row checked against the book file)")
        for c in (
            "file",
            "levels",
            "messages",
            "quarantined",
            "mismatched rows",
            "rows w/ level from beyond depth",
            "kernel msg/s",
        ):
            rebuild.add_column(c, justify="right" if c != "file" else "left")
        feats = Table(title="Features (10 s bars, 09:30–16:00)")
        for c in (
            "symbol",
            "trades",
            "volume",
            "ADV",
            "volume/ADV",
            "spread bps",
            "L1 depth",
            "OFI R² (10 s)",
            "adverse 5 s bps",
        ):
            feats.add_column(c, justify="right")
        bin_t = Table(title="Binance books (snapshot + diffs, checked against book tickers)")
        for c in (
            "capture",
            "market",
            "depth events",
            "level updates",
            "gaps",
            "tickers compared",
            "agree",
            "kernel updates/s",
        ):
            bin_t.add_column(c, justify="right" if c not in ("capture", "market") else "left")
        try:
            failures = _demo_run(pairs, captures, store_path, feat_dir, rebuild, feats, bin_t)
        finally:
            if tmp is not None:
                tmp.cleanup()
        if tmp is None and any(mp.name.startswith("GOOG_") for mp, _ in pairs):
            from impactlab.cli.schedules import build_pretrade

            report = build_pretrade("GOOG", 1, 50_000, data=root)
            for t in report.tables():
                out.print(t)
            out.print(f"Model: {report.model}")
            _demo_formats(root)
            _demo_execution(root, store_path)
            _demo_hedging(root, store_path)
        if failures:
            err.print(f"[red]{failures} check(s) failed[/red]")
            raise typer.Exit(1)


def _demo_formats(root: Path) -> None:
    """One instrument-day of every other source format in the data folder, found by the catalog and priced by
    the same pre-trade report (a buy of 0.2% of the day's volume)."""
    from impactlab.cli.schedules import build_pretrade
    from impactlab.data.catalog import catalog

    cat = catalog(root)
    picks: dict[str, Any] = {}
    for e in cat.entries:
        key = e.source + (":" + e.venue if e.source == "binance" else "")
        if "test fixture" in e.notes or (e.source == "lobster" and e.depth != 1):
            continue
        picks.setdefault(key, e)
    t = Table(title=f"Every source format under {root}: one instrument-day each, priced by the same pre-trade report")
    for c in ("symbol", "venue", "date", "format", "depth", "buy", "balanced bps", "notional", "cost model"):
        t.add_column(c, justify="right" if c in ("depth", "buy", "balanced bps", "notional") else "left")
    with _progress() as prog:
        task = prog.add_task("every source format", total=len(picks))
        for e in picks.values():
            day = e.load()
            lot = day.spec.lot_size
            qty = max(round(0.002 * day.volume() / lot) * lot, lot)
            rep = build_pretrade(day.symbol, 1, qty, day=day)
            bal = rep.strategy("balanced")
            t.add_row(day.symbol, day.venue, str(day.date), day.source, str(day.depth),
                      f"{qty:,.6g} {day.spec.size_unit}", f"{bal.cost.total:.2f}",
                      f"{rep.notional:,.0f} {day.spec.quote_currency}",
                      "spread+OW+sqrt" if "OW transient" in rep.model else "spread+sqrt")  # fmt: skip
            prog.advance(task)
    out.print(t)


def _demo_hedging(root: Path, store_path: Path) -> None:
    """A short hedging scenario: a short-call GOOG book hedged for 40 minutes of the replayed day under
    immediate, TWAP and impact-aware policies; prints the comparison and writes the HTML report."""
    from impactlab.cli.hedging import build_hedge_scenario
    from impactlab.hedging.report import report_html, report_table

    target = Path(store_path).parent / "hedging"
    with _progress() as prog:
        results, meta = build_hedge_scenario(out_dir=target, data=root, start_s=600.0, end_s=3_000.0,
                                             risk_aversions=(1e-3,), twap_horizons_s=(60.0,),
                                             progress=prog, existing="replace")  # fmt: skip
    out.print(report_table(results))
    report = target / "hedging_report.html"
    report.write_text(report_html(results, title=f"Hedging scenario: {meta['scenario']}", meta=meta))
    out.print(f"Hedging report (frontier, every hedge, model versions): {report}")


def _demo_execution(root: Path, store_path: Path) -> None:
    """Work a small GOOG order on the replay (Cont–Kukanov and naive routing) and through FIX over loopback
    to the simulator, all into the store, and print their TCA."""
    from impactlab.cli.execution import build_execute
    from impactlab.tca import tca_table

    results = []
    runs = [("replay", "ck", "10m", "1m"), ("replay", "naive", "10m", "1m"), ("fix", "ck", "6s", "2s")]
    with _progress() as prog:
        task = prog.add_task("executing (replay, then FIX over loopback)", total=len(runs))
        for venue, router, horizon, step in runs:
            oid = f"demo-{venue}-{router}-{time.time_ns()}"
            tca, _ = build_execute(
                symbol="GOOG", quantity=2_000.0 if venue == "replay" else 300.0, horizon_s=parse_duration_s(horizon),
                step_s=parse_duration_s(step), venue=venue, router=router, store_path=store_path, order_id=oid,
                data=root,
            )  # fmt: skip
            results.append(tca)
            prog.advance(task)
    out.print(tca_table(results))
    out.print(f"Orders, fills and realised-against-predicted costs are in {store_path} (impactlab tca --orders …).")


def _demo_run(
    pairs: list[tuple[Path, Path]],
    captures: list[list[Path]],
    store_path: Path,
    feat_dir: Path,
    rebuild: Table,
    feats: Table,
    bin_t: Table,
) -> int:
    """The body of ``demo``: every step, adding rows to the tables; returns the number of failed checks."""
    deepest: dict[str, tuple[Path, Path]] = {}
    failures = 0
    with Store(store_path) as st, _progress() as prog:
        task = prog.add_task("demo", total=len(pairs) + len(captures))
        for mp, bp in pairs:
            prog.update(task, description=f"replay {mp.name[:24]}")
            day = load_lobster(mp, bp)
            st.record_load(day.report, day.quarantine)
            rep = replay_check(day)
            failures += rep.mismatched_rows > 0
            rebuild.add_row(
                mp.name.split("_")[0] + f" L{day.depth}",
                str(day.depth),
                f"{len(day):,}",
                str(day.report.rows_quarantined),
                str(rep.mismatched_rows),
                f"{rep.rows_with_level_from_beyond_depth:,}",
                f"{rep.messages_per_s / 1e6:.1f}M",
            )
            if day.symbol not in deepest or day.depth > int(deepest[day.symbol][0].name.split("_")[-1].split(".")[0]):
                deepest[day.symbol] = (mp, bp)
            prog.advance(task)
        for sym, (mp, bp) in sorted(deepest.items()):
            day = load_lobster(mp, bp)
            fs: FeatureSet = market_features(day, bar_s=10.0)
            fs.write(feat_dir)
            tr = fs.trades.to_pandas()
            b = fs.bars.to_pandas()
            adv = fs.meta.get("adv")
            vol = float(tr["size"].sum())
            feats.add_row(
                sym,
                f"{len(tr):,}",
                f"{vol:,.0f}",
                f"{adv:,.0f}" if adv else "n/a (no daily file)",
                f"{vol / adv:.1%}" if adv else "n/a",
                f"{b['spread_bps_mean'].mean():.2f}",
                f"{b['depth_1_mean'].mean():,.0f}",
                f"{_ofi_r2(fs.bars):.2f}",
                f"{tr.filter(like='adverse').iloc[:, 0].mean():.2f}",
            )
        calib = Table(title="Impact models on 10 s bars, trades and the book's recovery (walk-forward)")
        for c in (
            "symbol",
            "OFI c (bps)",
            "OFI R² IS / OOS",
            "δ (sqrt, free)",
            "γ sign memory",
            "β kernel",
            "OW from the book: q sh/bps, half-life s, f",
        ):
            calib.add_column(c, justify="right")
        from impactlab.calibration.runner import calibrate, load_source
        from impactlab.errors import CalibrationError

        for sym, (mp, bp) in sorted(deepest.items()):
            prog.update(task, description=f"calibrate {sym}")
            src = load_source(lobster=(mp, bp), bar_s=10.0)
            fits: dict[str, dict[str, Any] | str] = {}
            for name in ("ofi", "sqrt-free", "propagator", "ow-book"):
                try:
                    fits[name] = calibrate(name, src)
                except CalibrationError as exc:  # a small or odd day: say why in the table
                    fits[name] = f"n/a: {str(exc).split(':')[-1].strip()[:40]}"

            def ci(name: str, k: str, fits: dict[str, dict[str, Any] | str] = fits) -> str:
                r = fits[name]
                if isinstance(r, str):
                    return r
                lo, hi = r["conf_int"][k]
                return f"{r['params'][k]:.3g} [{lo:.3g}, {hi:.3g}]"

            o, pr = fits["ofi"], fits["propagator"]
            calib.add_row(
                sym,
                ci("ofi", "c_bps"),
                o
                if isinstance(o, str)
                else f"{_num(o['metrics']['in_sample']['r2'])} / {_num(o['metrics']['out_of_sample']['r2'])}",
                ci("sqrt-free", "delta"),
                pr
                if isinstance(pr, str)
                else f"{pr['extra']['gamma']:.2f} [{pr['extra']['gamma_conf_int'][0]:.2f}, "
                f"{pr['extra']['gamma_conf_int'][1]:.2f}]",
                ci("propagator", "beta"),
                ow if isinstance(ow := fits["ow-book"], str) else _ow_cell(ow["extra"]),
            )
        for cap_paths in captures:
            prog.update(task, description=f"binance {cap_paths[0].name}")
            bday = load_binance(cap_paths)
            st.record_load(bday.report, bday.quarantine)
            ck = bday.extras["book_check"]
            failures += ck["tickers_compared"] != ck["tickers_agree"]
            bin_t.add_row(
                bday.symbol,
                bday.extras["market"],
                f"{len(bday.extras['capture'].depth):,}",
                f"{ck['level_updates']:,}",
                str(ck["sequence_gaps"]),
                f"{ck['tickers_compared']:,}",
                f"{ck['tickers_agree']:,}",
                f"{ck['level_updates_per_s'] / 1e6:.1f}M",
            )
            prog.advance(task)
    for t in (rebuild, feats, calib, bin_t):
        out.print(t)
    out.print(f"Store: {store_path}   Features: {feat_dir}")
    return failures


def _ow_cell(x: dict[str, Any]) -> str:
    f = f"{x['permanent_fraction']:.2f}" + (" (clipped)" if x["fraction_at_bound"] else "")
    return f"{x['depth_shares_per_bps']:.0f}, {x['half_life_s']:.1f}, {f}"


def main() -> None:  # pragma: no cover - console entry
    app()


def _blocks(day: Any, n_blocks: int, seed: int) -> tuple[Any, str]:
    from impactlab.calibration.blocks import hypothetical_blocks

    return hypothetical_blocks(day, n_blocks=n_blocks, seed=seed), f"{day.label} ({day.source})"


def _day_of(lobster: Path | None, symbol: str | None, date: str | None, what: str = "--lobster") -> Any:
    if lobster is not None:
        return load_files([lobster])
    if symbol is None:
        raise typer.BadParameter(f"give {what} FILE or --symbol S [--date D]")
    return resolve_market(symbol=symbol, date=date)


TargetOpt = Annotated[
    str, typer.Option(help="immediate_cost_bps (walk of the book), cost_bps (plus the move over the horizon).")
]


@forecast_app.command("train")
def forecast_train(
    save: Annotated[Path, typer.Option(help="Write the fitted model as JSON here.")],
    lobster: Annotated[Path | None, typer.Option(help="Market-data file of the training day (any format).")] = None,
    symbol: SymbolOpt = None,
    date: DateOpt = None,
    model: Annotated[str, typer.Option(help="gbm, gbm-scaled, hybrid, rf, bayes, mlp, sqrt or spread-sqrt.")] = "gbm",
    target: TargetOpt = "immediate_cost_bps",
    blocks: Annotated[int, typer.Option(min=200, max=1_000_000, help="Hypothetical blocks to draw.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Seed of the block draw.")] = 0,
    onnx: Annotated[Path | None, typer.Option(help="Also write the ONNX export here (gbm, hybrid).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Fit a forecast on blocks drawn from one day and save it (JSON; ONNX on request)."""
    from impactlab.calibration.forecasts import FORECAST_MODELS, feature_importance
    from impactlab.errors import CalibrationError
    from impactlab.impact import QuantileGBMImpact

    with _errors():
        if model not in FORECAST_MODELS:
            raise CalibrationError(f"unknown forecast model {model!r}; choose from {sorted(FORECAST_MODELS)}")
        train_day = _day_of(lobster, symbol, date)
        data, label = _blocks(train_day, blocks, seed)
        if target not in data:
            raise CalibrationError(f"unknown target {target!r}; use immediate_cost_bps or cost_bps")
        fitted = FORECAST_MODELS[model](target).fit(data, data[target].to_numpy(float))
        fitted.set_market(train_day)
        fitted.save(save)
        written = {"model": str(save)}
        if onnx is not None:
            if not isinstance(fitted, QuantileGBMImpact):
                raise CalibrationError("--onnx exports the LightGBM models (gbm, hybrid)")
            onnx.parent.mkdir(parents=True, exist_ok=True)
            onnx.write_bytes(fitted.to_onnx())
            written["onnx"] = str(onnx)
        res = fitted.result_
        held = data.iloc[len(data) - int(res.extra.get("calibration_rows", len(data) // 4)) :]
        imp = feature_importance(fitted, held, held[target].to_numpy(float))
        doc = {
            "model": model,
            "class": type(fitted).__name__,
            "train": label,
            "target": target,
            "rows": res.n,
            "params": res.params_dict(),
            "in_sample": {"r2": res.r2, "rmse_bps": res.rmse_bps},
            "importance": {f: {k: float(v) for k, v in row.items()} for f, row in imp.iterrows()},
            "written": written,
        }
        if json_out:
            _emit(doc)
            return
        out.print(
            f"[bold]{model}[/bold] ({doc['class']}) on {label}, {res.n:,} blocks, target {target}: "
            f"R² {res.r2:.3f}, RMSE {res.rmse_bps:.3f} bps (calibration block) → {save}"
        )
        t = Table(title="feature importance on the calibration block")
        t.add_column("feature")
        for c in imp.columns:
            t.add_column(c, justify="right")
        for f, row in imp.iterrows():
            t.add_row(str(f), *(f"{v:.4f}" for v in row))
        out.print(t)


@forecast_app.command("evaluate")
def forecast_evaluate(
    lobster: Annotated[Path | None, typer.Option(help="Market-data file of the training day (any format).")] = None,
    test_lobster: Annotated[
        Path | None, typer.Option(help="Score on this day (another ticker) instead of walk-forward.")
    ] = None,
    symbol: SymbolOpt = None,
    date: DateOpt = None,
    test_symbol: Annotated[str | None, typer.Option(help="Score on this symbol's day instead.")] = None,
    models: Annotated[
        str, typer.Option(help="Comma-separated forecast models.")
    ] = "gbm,hybrid,rf,bayes,mlp,sqrt,spread-sqrt",
    target: TargetOpt = "immediate_cost_bps",
    blocks: Annotated[int, typer.Option(min=200, max=1_000_000, help="Hypothetical blocks per day.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Seed of the block draw.")] = 0,
    splits: Annotated[int, typer.Option(min=1, max=50, help="Walk-forward test blocks.")] = 5,
    recalibrate: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="Share of the test day that resets the conformal margins.")
    ] = 0.0,
    json_out: JsonOpt = False,
) -> None:
    """Out-of-sample RMSE, MAE, R², pinball loss, 80/90/95% coverage and Brier scores of every model."""
    from impactlab.calibration.forecasts import FORECAST_MODELS, best_of, evaluate_forecasts
    from impactlab.errors import CalibrationError

    with _errors():
        names = [m.strip() for m in models.split(",") if m.strip()]
        unknown = [m for m in names if m not in FORECAST_MODELS]
        if unknown or not names:
            raise CalibrationError(f"unknown forecast models {unknown}; choose from {sorted(FORECAST_MODELS)}")
        train, train_label = _blocks(_day_of(lobster, symbol, date), blocks, seed)
        test, test_label = (
            _blocks(_day_of(test_lobster, test_symbol, None, "--test-lobster"), blocks, seed)
            if test_lobster or test_symbol
            else (None, None)
        )
        if target not in train:
            raise CalibrationError(f"unknown target {target!r}; use immediate_cost_bps or cost_bps")
        with _progress() as prog:
            task = prog.add_task("evaluating", total=len(names))
            results = {}
            for n in names:
                results.update(
                    evaluate_forecasts(
                        {n: FORECAST_MODELS[n](target)},
                        train,
                        target=target,
                        test=test,
                        n_splits=splits,
                        recalibrate_fraction=recalibrate,
                    )
                )
                prog.advance(task)
        doc = {
            "train": train_label,
            "test": test_label or "walk-forward within the training day",
            "target": target,
            "blocks": {"train": len(train), "test": None if test is None else len(test)},
            "recalibrate_fraction": recalibrate,
            "models": results,
            **best_of(results),
        }
        if json_out:
            _emit(doc)
            return
        t = Table(title=f"{target}: {train_label} → {doc['test']}")
        cols = ["model", "RMSE", "R²", "pinball", "cover 80/90/95%"]
        for c in cols:
            t.add_column(c, justify="right")
        for n, r in results.items():
            cover = " / ".join(f"{r.get(f'coverage_{c}', float('nan')):.1%}" for c in (80, 90, 95))
            t.add_row(n, f"{r['rmse_bps']:.3f}", f"{r['r2']:.3f}", f"{r['pinball_bps']:.3f}", cover)
        out.print(t)


@app.command("regimes")
def regimes_cmd(
    lobster: Annotated[Path | None, typer.Option(help="Market-data file (any format).")] = None,
    symbol: SymbolOpt = None,
    date: DateOpt = None,
    n_regimes: Annotated[int, typer.Option("--regimes", min=2, max=6, help="Number of regimes.")] = 3,
    bar: Annotated[str, typer.Option(help="Bar length of the regime inputs.")] = "10s",
    plot: Annotated[Path | None, typer.Option(help="Write the regime timeline (PNG) here.")] = None,
    blocks: Annotated[int, typer.Option(min=200, max=1_000_000, help="Blocks for the per-regime fit.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Seed of the mixture and the block draw.")] = 0,
    json_out: JsonOpt = False,
) -> None:
    """Volatility/liquidity regimes of a day, and the spread + square-root law fitted per regime."""
    from impactlab.calibration.blocks import hypothetical_blocks
    from impactlab.calibration.regimes import fit_by_regime, label_rows, market_regimes, plot_regime_timeline
    from impactlab.impact import SpreadSquareRootImpact

    with _errors():
        day = _day_of(lobster, symbol, date)
        bar_s = parse_duration_s(bar)
        det, inputs, labels = market_regimes(day, bar_s=bar_s, n_regimes=n_regimes, seed=seed)
        b = hypothetical_blocks(day, n_blocks=blocks, seed=seed)
        reg = label_rows(b["ts_ns"].to_numpy(), inputs, labels, round(bar_s * 1e9))
        keep = reg >= 0
        fits = fit_by_regime(SpreadSquareRootImpact, b[keep], reg[keep], b["immediate_cost_bps"].to_numpy()[keep])
        desc = det.describe(inputs)
        rows: list[dict[str, Any]] = [
            {
                "regime": int(r),
                **{k: float(v) for k, v in desc.loc[r].items()},
                "blocks": int((reg == r).sum()),
                "spread_sqrt": {
                    "params": fits[r].params_dict(),
                    "conf_int": {k: list(v) for k, v in fits[r].conf_int().items()},
                }
                if r in fits
                else None,
            }
            for r in range(det.n_regimes)
        ]
        doc: dict[str, Any] = {
            "source": f"{day.label} ({day.source})",
            "regimes": rows,
            "detector": det.to_dict(),
            "plot": str(plot_regime_timeline(inputs, labels, plot, title=f"{day.symbol} {day.date}")) if plot else None,
        }
        if json_out:
            _emit(doc)
            return
        t = Table(title=f"regimes of {doc['source']}")
        for c in ("regime", "share", "vol bps/bar", "spread bps", "L1 depth", "blocks", "c", "Y", "δ"):
            t.add_column(c, justify="right")
        for r in rows:
            p = r["spread_sqrt"]["params"] if r["spread_sqrt"] else {}
            t.add_row(
                str(r["regime"]),
                f"{r['share']:.1%}",
                f"{r['rolling_vol_bps']:.2f}",
                f"{r['rolling_spread_bps']:.2f}",
                f"{r['rolling_depth']:.0f}",
                f"{r['blocks']:,}",
                *(f"{p[k]:.3f}" if k in p else "-" for k in ("c", "Y", "delta")),
            )
        out.print(t)
        if plot:
            out.print(f"timeline written to {plot}")


def _register_schedules() -> None:
    from impactlab.cli.schedules import pretrade_cmd, schedule_app

    app.add_typer(schedule_app, name="schedule")
    app.command("pretrade")(pretrade_cmd)


_register_schedules()


def _register_simulation() -> None:
    from impactlab.cli.simulation import backtest_cmd, simulate_cmd

    app.command("simulate")(simulate_cmd)
    app.command("backtest")(backtest_cmd)


_register_simulation()


def _register_rl() -> None:
    from impactlab.cli.rl import rl_app

    app.add_typer(rl_app, name="rl")


_register_rl()


def _register_execution() -> None:
    from impactlab.cli.execution import execute_cmd, kill_switch_app, tca_cmd

    app.command("execute")(execute_cmd)
    app.command("tca")(tca_cmd)
    app.add_typer(kill_switch_app, name="kill-switch")


_register_execution()


def _register_hedging() -> None:
    from impactlab.cli.hedging import hedge_app

    app.add_typer(hedge_app, name="hedge")


_register_hedging()


def _register_universe() -> None:
    from impactlab.cli.universe import universe_app

    data_app.add_typer(universe_app, name="universe")


_register_universe()


def _register_bus() -> None:
    from impactlab.cli.bus import bus_app, feed_cmd, hedge_live_cmd
    from impactlab.cli.hedging import hedge_app

    app.add_typer(bus_app, name="bus")
    app.command("feed")(feed_cmd)
    hedge_app.command("live")(hedge_live_cmd)


_register_bus()


def _register_service() -> None:
    from impactlab.cli.service import serve_cmd

    app.command("serve")(serve_cmd)


_register_service()


def _register_models() -> None:
    from impactlab.cli.models import models_app

    app.add_typer(models_app, name="models")


_register_models()
