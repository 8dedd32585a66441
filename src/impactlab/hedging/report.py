"""The hedging scenario report: policies compared on hedging-error variance against total cost, the
frontier plot, and the impact-aware policy against immediate hedging with paired intervals."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from impactlab.hedging.scenario import ScenarioResult

__all__ = ["compare", "report_html", "report_json", "report_table"]


def _ci95(x: NDArray[np.float64]) -> tuple[float, float]:
    if x.size < 2:
        return float("nan"), float("nan")
    h = float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return float(x.mean() - h), float(x.mean() + h)


def compare(results: Sequence[ScenarioResult], *, baseline: str = "immediate") -> dict[str, Any]:
    """Each policy against ``baseline``: cost difference, and the variance difference as a paired mean of
    squared P&L increments per interval (same market path, so the intervals pair) with its 95% interval."""
    base = next((r for r in results if r.policy == baseline), None)
    if base is None:
        return {}
    b = np.asarray(base.pnl_usd)
    out: dict[str, Any] = {}
    for r in results:
        if r is base:
            continue
        x = np.asarray(r.pnl_usd)
        n = min(x.size, b.size)
        d = (x[:n] - x[:n].mean()) ** 2 - (b[:n] - b[:n].mean()) ** 2
        lo, hi = _ci95(d)
        out[r.policy] = {
            "cost_usd": r.total_cost_usd,
            "cost_vs_baseline_usd": r.total_cost_usd - base.total_cost_usd,
            "cost_ratio": r.total_cost_usd / base.total_cost_usd if base.total_cost_usd else float("nan"),
            "var_ratio": r.hedge_error_var_usd2 / base.hedge_error_var_usd2,
            "var_diff_usd2": float(d.mean()),
            "var_diff_ci95_usd2": [lo, hi],
            "equal_or_lower_variance": bool(lo <= 0.0),
        }
    return out


def _clean(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def report_json(results: Sequence[ScenarioResult], *, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Strict-JSON report (missing values are null)."""
    out: dict[str, Any] = _clean({
        "meta": meta or {},
        "policies": [r.summary() for r in results],
        "vs_immediate": compare(results),
        "hedges": {r.policy: r.hedges for r in results},
        "status": {r.policy: r.status for r in results},
    })  # fmt: skip
    return out


def report_table(results: Sequence[ScenarioResult]) -> Any:
    """A rich table of the policies."""
    from rich.table import Table

    cmp = compare(results)
    t = Table(title="Hedging policies: total cost against hedging-error variance (P&L per interval, marked to mid)")
    for col in ("policy", "hedges", "shares traded", "total cost $", "hedge error sd $", "vs immediate: cost",
                "variance (paired 95% CI)", "model versions"):  # fmt: skip
        t.add_column(col, justify="left" if col == "policy" else "right")
    for r in results:
        s = r.summary()
        c: dict[str, Any] | None = cmp.get(r.policy)
        vs = f"{c['cost_ratio'] - 1:+.0%}" if c else "–"
        var = (f"{c['var_ratio']:.2f}× [{c['var_diff_ci95_usd2'][0]:+,.0f}, {c['var_diff_ci95_usd2'][1]:+,.0f}] $²"
               if c else "–")  # fmt: skip
        t.add_row(r.policy, str(s["hedges"]), f"{s['shares_traded']:,.0f}", f"{s['total_cost_usd']:,.0f}",
                  f"{s['hedge_error_sd_usd']:,.0f}", vs, var, str(len(s["model_versions"])))  # fmt: skip
    return t


def frontier_svg(results: Sequence[ScenarioResult]) -> str:
    """Cost against hedging-error sd, one point per policy (an inline SVG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from impactlab._html import svg

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for fam, marker in (("immediate", "s"), ("twap", "^"), ("impact", "o")):
        pts = [r for r in results if r.policy.startswith(fam)]
        if pts:
            pts.sort(key=lambda r: math.sqrt(r.hedge_error_var_usd2))
            ax.plot([math.sqrt(r.hedge_error_var_usd2) for r in pts], [r.total_cost_usd for r in pts], marker=marker,
                    label=fam)  # fmt: skip
            for r in pts:
                ax.annotate(r.policy, (math.sqrt(r.hedge_error_var_usd2), r.total_cost_usd), fontsize=7,
                            xytext=(3, 3), textcoords="offset points")  # fmt: skip
    ax.set_xlabel("hedging error sd per interval ($)")
    ax.set_ylabel("total hedging cost ($)")
    ax.set_title("Hedging frontier")
    ax.legend()
    ax.grid(alpha=0.3)
    return svg(fig)


def report_html(
    results: Sequence[ScenarioResult], *, title: str = "Hedging scenario", meta: dict[str, Any] | None = None
) -> str:
    """A self-contained HTML page: the table, the frontier and each policy's hedges."""
    cmp = compare(results)
    rows = []
    for r in results:
        s = r.summary()
        c = cmp.get(r.policy, {})
        rows.append(
            f"<tr><td>{html.escape(r.policy)}</td><td>{s['hedges']}</td><td>{s['shares_traded']:,.0f}</td>"
            f"<td>{s['total_cost_usd']:,.0f}</td><td>{s['hedge_error_sd_usd']:,.0f}</td>"
            f"<td>{(c['cost_ratio'] - 1) * 100:+.0f}%</td><td>{c['var_ratio']:.2f}×</td>"
            if c
            else f"<tr><td>{html.escape(r.policy)}</td><td>{s['hedges']}</td><td>{s['shares_traded']:,.0f}</td>"
            f"<td>{s['total_cost_usd']:,.0f}</td><td>{s['hedge_error_sd_usd']:,.0f}</td><td>–</td><td>–</td>"
        )
        rows[-1] += f"<td>{html.escape(', '.join(s['model_versions']))}</td></tr>"
    hedges = []
    for r in results:
        head = ("time (ns)", "side", "shares", "horizon s", "model", "predicted $", "realised $", "regime")
        cells = "".join(f"<th>{c}</th>" for c in head)
        hedges.append(f"<h3>{html.escape(r.policy)}</h3><table><tr>{cells}</tr>")
        for h in r.hedges:
            real = h.get("realised_cost_usd")
            hedges.append(
                f"<tr><td>{h['ts_ns']}</td><td>{h['side']:+d}</td><td>{h['quantity']:,.0f}</td>"
                f"<td>{h['horizon_s']:g}</td><td>{html.escape(h['model_version'])}</td>"
                f"<td>{h['expected_cost_usd']:,.0f}</td><td>{'–' if real is None else f'{real:,.0f}'}</td>"
                f"<td>{html.escape(h['regime'])}</td></tr>"
            )
        hedges.append("</table>")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;text-align:right}"
        "table{border-collapse:collapse}tr:nth-child(even){background:#f4f4f4}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><pre>{html.escape(json.dumps(meta or {}, indent=1))}</pre>"
        "<table><tr><th>policy</th><th>hedges</th><th>shares</th><th>total cost $</th><th>hedge error sd $</th>"
        "<th>cost vs immediate</th><th>variance vs immediate</th><th>model versions</th></tr>"
        + "".join(rows)
        + "</table>"
        + frontier_svg(results)
        + "".join(hedges)
        + "</body></html>"
    )
