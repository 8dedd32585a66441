"""``impactlab models``: the cost models' versions in a store, approval of held ones, and their accuracy on
the store's own fills."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

models_app = typer.Typer(
    no_args_is_help=True,
    help="Cost-model versions in a store: list them, approve or reject held ones, measure their accuracy.",
)

_Store = Annotated[
    list[Path] | None,
    typer.Option("--store", help="Store(s) to read (repeat the option; default the user's store)."),
]
_Json = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _stores(store: list[Path] | None) -> list[Path | None]:
    return list(store) if store else [None]


@models_app.command("list")
def list_cmd(store: _Store = None, as_json: _Json = False) -> None:
    """Every version of every instrument's cost model: live, superseded, pending approval or rejected."""
    from impactlab.calibration.costmodel import ModelVersions
    from impactlab.cli.main import _emit, _errors, out
    from impactlab.data import Store

    with _errors():
        rows: list[dict[str, Any]] = []
        for path in _stores(store):
            with Store(path, read_only=True) as st:
                rows += [dict(r, store=str(st.path)) for r in ModelVersions(st).listing()]
        if as_json:
            _emit({"versions": rows})
            return
        from rich.table import Table

        t = Table(title=f"Cost-model versions ({len(rows)})")
        for c in ("version", "status", "orders", "reference bps", "reason"):
            t.add_column(c, justify="right" if c in ("orders", "reference bps") else "left", overflow="fold")
        for r in rows:
            ref = r["reference_bps"]
            t.add_row(r["version"], r["status"], f"{r['n_obs']}", "-" if ref is None else f"{ref:.2f}", r["reason"])
        out.print(t)
        if not rows:
            out.print("no versions yet: a hedging run, the service or `execute` records the first")


def _decide(version: str, store: list[Path] | None, by: str, as_json: bool, approve: bool) -> None:
    from impactlab.calibration.costmodel import ModelVersions
    from impactlab.cli.main import _emit, _errors, out
    from impactlab.data import Store

    with _errors():
        paths = _stores(store)
        if len(paths) != 1:
            raise typer.BadParameter("give one --store", param_hint="--store")
        with Store(paths[0]) as st:
            v = ModelVersions(st)
            row = v.approve(version, by=by) if approve else v.reject(version, by=by)
        doc = {k: row[k] for k in ("version", "symbol", "status", "reason", "reference_bps")}
        if as_json:
            _emit(doc)
        else:
            word = "live" if approve else "rejected"
            out.print(f"{version} is {word}. A running engine or service picks it up at its next decision.")


@models_app.command("approve")
def approve_cmd(
    version: Annotated[str, typer.Argument(help="The pending version (see `impactlab models list`).")],
    store: _Store = None,
    by: Annotated[str, typer.Option(help="Who approves it (kept in the version's record).")] = "",
    as_json: _Json = False,
) -> None:
    """Make a version held for approval live (a recalibration that moved the reference order's cost by more
    than the configured fraction)."""
    _decide(version, store, by, as_json, approve=True)


@models_app.command("reject")
def reject_cmd(
    version: Annotated[str, typer.Argument(help="The pending version.")],
    store: _Store = None,
    by: Annotated[str, typer.Option(help="Who rejects it.")] = "",
    as_json: _Json = False,
) -> None:
    """Reject a version held for approval; the live one stays."""
    _decide(version, store, by, as_json, approve=False)


@models_app.command("accuracy")
def accuracy_cmd(store: _Store = None, as_json: _Json = False) -> None:
    """How well each model version forecast the store's own orders and hedges: median |log(realised /
    predicted)|, bias, and the share of realised costs inside the forecast's 90% interval."""
    from impactlab.calibration.costmodel import accuracy
    from impactlab.cli.main import _emit, _errors, out
    from impactlab.data import Store

    with _errors():
        rows: list[dict[str, Any]] = []
        for path in _stores(store):
            with Store(path, read_only=True) as st:
                preds = st.read("cost_predictions").to_pylist()
            rows += [dict(r, store=str(st.path)) for r in accuracy(preds)]
        if as_json:
            _emit({"accuracy": rows})
            return
        from rich.table import Table

        t = Table(title="Forecast accuracy on the store's own fills")
        cols = ("version", "orders", "median |log r/p|", "median r/p", "bias bps", "90% coverage")
        for c in cols:
            t.add_column(c, justify="left" if c == "version" else "right")
        for r in rows:
            med, ratio, cov = r["median_abs_log_ratio"], r["median_ratio"], r["coverage_90"]
            t.add_row(r["model_version"], f"{r['orders']}", "-" if med is None else f"{med:.2f}",
                      "-" if ratio is None else f"{ratio:.2f}", f"{r['bias_bps']:+.2f}",
                      "-" if cov is None else f"{cov:.0%} of {r['orders_with_interval']}")  # fmt: skip
        out.print(t)
        if not rows:
            out.print("no realised costs in the store yet: run `impactlab hedge run` or `impactlab execute` first")
        else:
            out.print("r/p: realised over predicted cost, on orders where both are positive; the interval is the "
                      "forecast's 90% (impact uncertainty and timing risk). Versions without an interval were "
                      "recorded by an older release or by a model that gives none.")  # fmt: skip


@models_app.command("catalogue")
def catalogue_cmd(as_json: _Json = False) -> None:
    """Every impact model impactlab knows: what it is fitted on, what the data must have, its defaults, and
    whether its cost depends on the horizon."""
    from impactlab.cli.main import _emit, out
    from impactlab.impact.registry import describe_models

    rows = describe_models()
    if as_json:
        _emit({"models": rows})
        return
    from rich.table import Table

    t = Table(title=f"Impact models ({len(rows)})")
    for c in ("name", "family", "fitted on", "needs", "horizon", "what it is"):
        t.add_column(c, overflow="fold")
    for r in rows:
        defaults = ", ".join(f"{k}={v}" for k, v in r["defaults"].items())
        t.add_row(r["name"], r["family"], ", ".join(r["fits_on"]), ", ".join(r["needs"]) or "-",
                  "depends" if r["horizon_dependent"] else "same at every horizon",
                  r["summary"] + (f" ({defaults})" if defaults else ""))  # fmt: skip
    out.print(t)
