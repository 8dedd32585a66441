"""TCA reports: a terminal table, JSON, a self-contained HTML page with plots; and the realised-against-
predicted rows written to the store for recalibration."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from impactlab._html import svg
from impactlab.data import Store
from impactlab.tca.shortfall import TCAResult, aggregate

__all__ = ["record_tca", "tca_html", "tca_json", "tca_table"]

_COLS = [
    ("order_id", "order"),
    ("shortfall_bps", "IS"),
    ("delay_bps", "delay"),
    ("temporary_bps", "temporary"),
    ("permanent_bps", "permanent"),
    ("timing_bps", "timing"),
    ("opportunity_bps", "opportunity"),
    ("fees_bps", "fees"),
    ("vs_interval_vwap_bps", "vs VWAP"),
    ("vs_close_bps", "vs close"),
]


def _f(v: Any) -> str:
    return v if isinstance(v, str) else ("n/a" if not np.isfinite(v) else f"{v:+.2f}")


def tca_table(results: Sequence[TCAResult]) -> Any:
    """A rich table: one row per order (bps of the decision value) and the value-weighted total."""
    from rich.table import Table

    t = Table(title=f"Transaction cost analysis: {len(results)} order(s), bps")
    for _, label in _COLS:
        t.add_column(label, justify="left" if label == "order" else "right")
    t.add_column("predicted", justify="right")
    for r in results:
        pred = ", ".join(f"{m} {v:+.2f}" for m, v in r.predicted_bps.items()) or "–"
        t.add_row(*[_f(getattr(r, c)) for c, _ in _COLS], pred)
    agg = aggregate(results)
    if len(results) > 1:
        t.add_row("[b]all (value-weighted)[/b]", *[_f(agg[c]) for c, _ in _COLS[1:]], "")
    return t


def _finite(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    if isinstance(x, float | np.floating):
        return float(x) if np.isfinite(x) else None
    return x


def tca_json(results: Sequence[TCAResult]) -> dict[str, Any]:
    """Per-order results and the aggregate, JSON-ready (a missing benchmark is null, never NaN)."""
    out: dict[str, Any] = _finite({"orders": [r.to_dict() for r in results], "aggregate": aggregate(results)})
    json.dumps(out, allow_nan=False)  # strict JSON, checked
    return out


def tca_html(results: Sequence[TCAResult], *, title: str = "Transaction cost analysis") -> str:
    """A self-contained page: the aggregate, the per-order table, the decomposition of each order as
    stacked bars, and realised against predicted cost for each model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    esc = html.escape
    agg = aggregate(results)
    parts = [c for c, _ in _COLS[2:8]]
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    x = np.arange(len(results))
    pos, neg = np.zeros(len(results)), np.zeros(len(results))
    for j, p in enumerate(parts):
        v = np.array([getattr(r, p) for r in results])
        base = np.where(v >= 0, pos, neg)
        ax.bar(x, v, bottom=base, color=f"C{j}", label=p.removesuffix("_bps"))
        pos, neg = pos + np.maximum(v, 0), neg + np.minimum(v, 0)
    ax.plot(x, [r.shortfall_bps for r in results], "k_", ms=18, mew=2, label="shortfall")
    ax.set_xticks(x, [r.order_id for r in results], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("bps of the decision value")
    ax.axhline(0, color="grey", lw=0.5)
    ax.legend(fontsize=7, ncol=4)
    decomposition = svg(fig)
    models = sorted({m for r in results for m in r.predicted_bps})
    scatter = ""
    if models:
        fig, ax = plt.subplots(figsize=(4.8, 4.2))
        for j, m in enumerate(models):
            pts = [(r.predicted_bps[m], r.shortfall_bps) for r in results if m in r.predicted_bps]
            xs, ys = zip(*pts, strict=True)
            ax.scatter(xs, ys, color=f"C{j}", label=m, s=18)
        lim = [min(ax.get_xlim()[0], ax.get_ylim()[0]), max(ax.get_xlim()[1], ax.get_ylim()[1])]
        ax.plot(lim, lim, color="grey", ls=":")
        ax.set_xlabel("predicted (bps)")
        ax.set_ylabel("realised shortfall (bps)")
        ax.legend(fontsize=7)
        scatter = "<h2>Realised against predicted</h2>" + svg(fig)
    head = "".join(f"<th>{esc(lbl)}</th>" for _, lbl in _COLS)
    rows = "".join("<tr>" + "".join(f"<td>{esc(_f(getattr(r, c)))}</td>" for c, _ in _COLS) + "</tr>" for r in results)
    summary = "".join(
        f"<li>{esc(c.removesuffix('_bps'))}: {esc(_f(agg[c]))} bps</li>" for c, _ in _COLS[1:] if c in agg
    )
    model_rows = "".join(
        f"<li>{esc(m)}: mean error {v['mean_error_bps']:+.2f} bps, RMSE {v['rmse_bps']:.2f} bps over "
        f"{v['orders']} orders</li>"
        for m, v in agg.get("models", {}).items()
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
th{{background:#f3f3f3}}svg{{max-width:100%;height:auto}}</style></head><body>
<h1>{esc(title)}</h1>
<p>{agg["orders"]} order(s), ${agg.get("notional", 0):,.0f} at the decision mids. Value-weighted, bps:</p>
<ul>{summary}</ul><ul>{model_rows}</ul>
<h2>Orders (bps of the decision value; benchmarks: positive is worse)</h2>
<table><tr>{head}</tr>{rows}</table>
<h2>Decomposition</h2>{decomposition}{scatter}
</body></html>
"""


def record_tca(
    store: Store, results: Sequence[TCAResult], *, now_ns: int, forecasts: Mapping[str, Mapping[str, Any]] | None = None
) -> int:
    """Write each order's outcome columns and its realised-against-predicted rows (one per model) to the
    store, where calibration, accuracy and the drift monitor read them; returns the prediction rows added.

    ``forecasts`` maps an order id to the forecast its cost model made before it traded
    (:meth:`~impactlab.calibration.InstrumentModel.forecast`: the version, its 90% interval, temporary
    cost and parts); the row of that version gets them."""
    import pyarrow as pa

    from impactlab.data.schemas import COST_PREDICTIONS

    rows = []
    for r in results:
        store.record_outcome(
            r.order_id, arrival_mid=r.arrival_mid, avg_price=r.average_price if r.filled > 0 else None,
            end_mid=r.end_mid, post_mid=r.post_mid if np.isfinite(r.post_mid) else None,
            executed_end_ns=int(r.end_ns) if r.end_ns else None, post_s=float(r.post_s),
        )  # fmt: skip
        fc = (forecasts or {}).get(r.order_id, {})
        temp = float(r.temporary_bps) if np.isfinite(r.temporary_bps) else None
        for model, pred in r.predicted_bps.items():
            mine = fc if fc.get("version") == model else {}
            rows.append({
                "prediction_id": f"{r.order_id}:{model}", "parent_order_id": r.order_id, "model": model,
                "predicted_bps": float(pred), "realised_bps": float(r.shortfall_bps), "ts_ns": int(now_ns),
                "symbol": r.symbol, "lower_bps": mine.get("lower_bps"), "upper_bps": mine.get("upper_bps"),
                "predicted_temporary_bps": mine.get("predicted_temporary_bps"), "realised_temporary_bps": temp,
                "parts_json": mine.get("parts_json"),
            })  # fmt: skip
    if not rows:
        return 0
    return store.write("cost_predictions", pa.Table.from_pylist(rows, schema=COST_PREDICTIONS.remove_metadata()))
