"""Pre-trade analysis: what a block will cost over horizons from a minute to a day, and a comparison of
aggressive, balanced and passive strategies, from any model that prices a schedule."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy import optimize, stats

from impactlab._html import svg
from impactlab.data.market import InstrumentSpec
from impactlab.errors import InfeasibleScheduleError
from impactlab.schedules._schedule import CostModel, Schedule, ScheduleCost
from impactlab.schedules.market import MarketContext
from impactlab.schedules.volume import vwap

__all__ = ["STRATEGY_PARTICIPATION", "CurvePoint", "PreTradeReport", "StrategyResult", "pretrade"]

F64 = NDArray[np.float64]
Strategy = Literal["aggressive", "balanced", "passive"]
STRATEGY_PARTICIPATION: dict[str, float] = {"aggressive": 1.0, "balanced": 0.4, "passive": 0.2}
"""Each strategy's participation as a share of the cap (``max_participation``, 25% by default: 25%, 10% and
5% of the expected volume), worked by VWAP; the horizon is what that participation takes, within the
desk's horizon."""
NO_RECOMMENDATION = "none (the model's cost does not depend on the horizon)"
MAX_QUANTITY_ADV = 10.0
"""Orders above this many days of average volume are refused (not a block: a programme)."""


@dataclass(frozen=True)
class CurvePoint:
    """The cost of working the order by VWAP over one horizon."""

    horizon_s: float
    schedule: Schedule
    cost: ScheduleCost
    prob_exceeds: float


@dataclass(frozen=True)
class StrategyResult:
    """One row of the strategy table."""

    name: str
    target_participation: float
    horizon_s: float
    schedule: Schedule
    cost: ScheduleCost
    prob_exceeds: float

    @property
    def participation(self) -> float:
        """The order over the market volume expected while it works."""
        return _part(self.schedule)


@dataclass(frozen=True, eq=False)
class PreTradeReport:
    """Cost curve and strategy comparison for one block; render with :meth:`to_dict`, :meth:`tables` or
    :meth:`to_html`."""

    symbol: str
    side: int
    quantity: float
    market: MarketContext
    model: str
    threshold_bps: float
    curve: tuple[CurvePoint, ...]
    strategies: tuple[StrategyResult, ...]
    recommended: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    instrument: InstrumentSpec | None = None
    horizon_dependent: bool | None = None
    """Whether the model's cost depends on the horizon or rate (``False``: the recommendation is not the
    model's, see :attr:`recommended`; ``None``: the model does not say)."""

    def strategy(self, name: str) -> StrategyResult:
        """The row named ``name``."""
        for s in self.strategies:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def notional(self) -> float:
        """The order's value in the quote currency: quantity × arrival price × multiplier, or quantity ×
        contract value for an inverse contract (quantity × price without an instrument)."""
        if self.instrument is None:
            return self.quantity * self.market.price
        return float(self.instrument.notional(self.quantity, self.market.price))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: inputs, the cost curve, the strategies (with their trade lists), the recommendation."""

        def cost(c: ScheduleCost, p: float) -> dict[str, Any]:
            return {
                "temporary_bps": c.temporary,
                "permanent_bps": c.permanent,
                "total_bps": c.total,
                "std_bps": c.std,
                "impact_std_bps": c.impact_std,
                "timing_std_bps": c.timing_std,
                "total_currency": c.total * self.notional / 1e4,
                "horizon_free_bps": c.horizon_free,
                "horizon_dependent_bps": None if c.horizon_free is None else c.total - c.horizon_free,
                "parts_bps": dict(c.parts),
                f"prob_cost_above_{self.threshold_bps:g}bps": p,
                "extrapolated_features": list(c.extrapolated_features),
            }

        return {
            "symbol": self.symbol,
            "side": "buy" if self.side > 0 else "sell",
            "quantity": self.quantity,
            "notional": self.notional,
            "notional_currency": self.instrument.quote_currency if self.instrument else None,
            "instrument": self.instrument.to_dict() if self.instrument else None,
            "quantity_over_adv": self.quantity / self.market.adv,
            "model": self.model,
            "threshold_bps": self.threshold_bps,
            "market": self.market.to_dict(),
            "cost_curve": [
                {"horizon_s": p.horizon_s, "participation": _part(p.schedule), **cost(p.cost, p.prob_exceeds)}
                for p in self.curve
            ],
            "strategies": [
                {
                    "name": s.name,
                    "target_participation": s.target_participation,
                    "var95_bps": s.cost.total + 1.6448536269514722 * s.cost.std,
                    "horizon_s": s.horizon_s,
                    "participation": s.participation,
                    **cost(s.cost, s.prob_exceeds),
                    "schedule": s.schedule.summary(),
                }
                for s in self.strategies
            ],
            "recommended": self.recommended,
            "horizon_dependent": self.horizon_dependent,
            "notes": list(self.notes),
        }

    def tables(self) -> list[Any]:
        """Rich tables: the cost curve and the strategy comparison."""
        from rich.table import Table

        side = "buy" if self.side > 0 else "sell"
        head = (
            f"{self.symbol} {side} {self.quantity:,.0f} sh (${self.notional:,.0f}, "
            f"{self.quantity / self.market.adv:.1%} of ADV) — {self.model}"
        )
        curve = Table(title=f"Cost curve (VWAP over each horizon): {head}")
        for c in (
            "horizon",
            "participation",
            "temporary bps",
            "permanent bps",
            "total bps",
            "sd bps",
            f"P(>{self.threshold_bps:g} bps)",
        ):
            curve.add_column(c, justify="right")
        for p in self.curve:
            curve.add_row(
                _fmt_h(p.horizon_s),
                f"{_part(p.schedule):.1%}",
                f"{p.cost.temporary:.2f}",
                "n/a" if p.cost.permanent is None else f"{p.cost.permanent:.2f}",
                f"{p.cost.total:.2f}",
                f"{p.cost.std:.2f}",
                f"{p.prob_exceeds:.1%}",
            )
        rec = self.recommended or "none: the model's cost does not depend on the horizon (see the notes)"
        strat = Table(title=f"Strategies (recommended: {rec})")
        for c in (
            "strategy",
            "horizon",
            "participation",
            "temporary bps",
            "permanent bps",
            "total bps",
            "sd bps",
            "total $",
            f"P(>{self.threshold_bps:g} bps)",
        ):
            strat.add_column(c, justify="right" if c != "strategy" else "left")
        for s in self.strategies:
            strat.add_row(
                s.name + (" *" if s.name == self.recommended else ""),
                _fmt_h(s.horizon_s),
                f"{s.participation:.1%}",
                f"{s.cost.temporary:.2f}",
                "n/a" if s.cost.permanent is None else f"{s.cost.permanent:.2f}",
                f"{s.cost.total:.2f}",
                f"{s.cost.std:.2f}",
                f"{s.cost.total * self.notional / 1e4:,.0f}",
                f"{s.prob_exceeds:.1%}",
            )
        return [curve, strat]

    def figures(self) -> dict[str, str]:
        """SVG plots: the cost curve with its ±1 sd band, the frontier of expected cost against risk with the
        strategies marked, and the strategies' trajectories."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        h = np.array([p.horizon_s for p in self.curve]) / 60
        e = np.array([p.cost.total for p in self.curve])
        sd = np.array([p.cost.std for p in self.curve])
        out: dict[str, str] = {}
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        ax.plot(h, e, "o-", label="expected cost")
        ax.fill_between(h, e - sd, e + sd, alpha=0.2, label="± 1 sd")
        ax.axhline(self.threshold_bps, color="grey", ls=":", label=f"{self.threshold_bps:g} bps")
        ax.set_xscale("log")
        ax.set_xlabel("horizon (minutes)")
        ax.set_ylabel("cost (bps)")
        ax.legend(fontsize=8)
        out["cost_curve"] = svg(fig)
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        ax.plot(sd, e, "o-", color="C0", ms=3, label="VWAP over 1 min … 1 day")
        for s, c in zip(self.strategies, ("C3", "C1", "C2"), strict=False):
            ax.plot([s.cost.std], [s.cost.total], "s", color=c, ms=8, label=f"{s.name} ({_fmt_h(s.horizon_s)})")
        ax.set_xlabel("risk: sd of cost (bps)")
        ax.set_ylabel("expected cost (bps)")
        ax.legend(fontsize=8)
        out["frontier"] = svg(fig)
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        for s, c in zip(self.strategies, ("C3", "C1", "C2"), strict=False):
            t = (s.schedule.times - s.schedule.times[0]) / 60
            ax.step(t, s.schedule.holdings / s.schedule.quantity, where="post", color=c, label=s.name)
        ax.set_xlabel("minutes from arrival")
        ax.set_ylabel("fraction left to trade")
        ax.legend(fontsize=8)
        out["trajectories"] = svg(fig)
        plt.close("all")
        return out

    def to_html(self) -> str:
        """A self-contained HTML page: the inputs, both tables and the three plots (inline SVG)."""
        d = self.to_dict()
        figs = self.figures()
        esc = html.escape

        def table(rows: list[dict[str, Any]], cols: list[tuple[str, str, str]]) -> str:
            head = "".join(f"<th>{esc(lbl)}</th>" for _, lbl, _ in cols)
            body = "".join(
                "<tr>" + "".join(f"<td>{esc(_cell(r.get(k), fmt))}</td>" for k, _, fmt in cols) + "</tr>" for r in rows
            )
            return f"<table><tr>{head}</tr>{body}</table>"

        p_key = f"prob_cost_above_{self.threshold_bps:g}bps"
        cols = [
            ("horizon_s", "horizon", "h"),
            ("participation", "participation", "%"),
            ("temporary_bps", "temporary bps", ".2f"),
            ("permanent_bps", "permanent bps", ".2f"),
            ("total_bps", "total bps", ".2f"),
            ("std_bps", "sd bps", ".2f"),
            (p_key, f"P(cost > {self.threshold_bps:g} bps)", "%"),
        ]
        strat_cols = [("name", "strategy", "s"), *cols[:6], ("total_currency", "total $", ",.0f"), cols[6]]
        m = self.market
        notes = "".join(f"<li>{esc(n)}</li>" for n in self.notes)
        return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Pre-trade: {esc(self.symbol)} {esc(d["side"])} {self.quantity:,.0f}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
th{{background:#f3f3f3}}.figs svg{{max-width:100%;height:auto}}</style></head><body>
<h1>Pre-trade: {esc(self.symbol)} {esc(d["side"])} {self.quantity:,.0f} shares</h1>
<p>Notional ${self.notional:,.0f} at {m.price:.2f}; {self.quantity / m.adv:.2%} of ADV {m.adv:,.0f};
daily volatility {m.daily_vol:.2%}; spread {m.spread_bps:.2f} bps; arrival {_fmt_h(m.start_s)} after the open.
Model: {esc(self.model)}. Recommended: <b>{esc(self.recommended or NO_RECOMMENDATION)}</b>.</p>
<h2>Strategies</h2>{table(d["strategies"], strat_cols)}
<h2>Cost curve</h2>{table(d["cost_curve"], cols)}
<div class="figs"><h2>Cost against horizon</h2>{figs["cost_curve"]}
<h2>Efficient frontier</h2>{figs["frontier"]}<h2>Trajectories</h2>{figs["trajectories"]}</div>
<h2>Notes</h2><ul>{notes}</ul></body></html>
"""


def _cell(v: Any, fmt: str) -> str:
    if v is None:
        return "n/a"
    if fmt == "s":
        return str(v)
    if fmt == "h":
        return _fmt_h(float(v))
    if fmt == "%":
        return f"{float(v):.1%}"
    return format(float(v), fmt)


def _fmt_h(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _part(s: Schedule) -> float:
    """The order over the market volume expected while it works (NaN without a volume forecast)."""
    p = s.participation
    return float(s.quantity / np.sum(s.trades / p)) if p is not None else math.nan


def _horizon_for(market: MarketContext, volume: float) -> float:
    """Seconds from arrival until the market is expected to trade ``volume`` shares."""
    curve = market.volume_curve
    start = float(curve.cumulative(market.start_s))
    need = volume / market.adv
    return float(
        optimize.brentq(
            lambda h: float(curve.cumulative(market.start_s + h)) - start - need,
            0.0,
            50 * curve.session_s + need * curve.session_s,
        )
    )


def _steps(horizon_s: float, unit_s: float = 60.0) -> float:
    """Step length: steps of ``unit_s`` (a minute), at least 10 and at most 390 of them."""
    n = min(390, max(10, round(horizon_s / unit_s)))
    return horizon_s / n


def pretrade(
    quantity: float,
    *,
    side: int,
    model: CostModel,
    market: MarketContext,
    horizon_s: float | None = None,
    urgency: Strategy | None = None,
    horizons_s: F64 | None = None,
    threshold_bps: float = 10.0,
    max_participation: float = 0.25,
    model_name: str | None = None,
) -> PreTradeReport:
    """Pre-trade analysis of a block.

    Parameters
    ----------
    quantity
        Shares (> 0; at most :data:`MAX_QUANTITY_ADV` days of volume).
    side
        +1 buy, −1 sell.
    model
        Anything that prices a schedule in bps (:class:`~impactlab.schedules.ModelCost`,
        :class:`~impactlab.schedules.TransientImpact` with ``unit="bps"``,
        :class:`~impactlab.schedules.CombinedCost` …).
    market
        The market at arrival.
    horizon_s
        The longest horizon the desk allows (default: one session); strategies are chosen within it.
    urgency
        Which strategy to recommend (default: the one with the least 95% value at risk).
    horizons_s
        Horizons of the cost curve (default: 20 from one minute to one session, evenly in log).
    threshold_bps
        The cost whose probability of being exceeded is reported.
    max_participation
        The largest share of the market's expected volume a strategy may take: strategies only choose
        horizons long enough to stay within it (the cost curve shows every horizon).

    Notes
    -----
    Each horizon is worked by VWAP on the market's volume curve in one-minute steps (10 to 390 of them).
    The strategies take the participations of :data:`STRATEGY_PARTICIPATION`; their horizons follow from the
    volume curve (clipped to ``horizon_s``).
    """
    if not (math.isfinite(quantity) and quantity > 0):
        raise InfeasibleScheduleError(f"'quantity' must be > 0 shares, got {quantity!r}")
    if quantity > MAX_QUANTITY_ADV * market.adv:
        raise InfeasibleScheduleError(
            f"'quantity' {quantity:,.0f} is {quantity / market.adv:.1f} days of volume (limit {MAX_QUANTITY_ADV:g})"
        )
    if side not in (1, -1):
        raise InfeasibleScheduleError(f"'side' must be +1 or -1, got {side!r}")
    if urgency is not None and urgency not in STRATEGY_PARTICIPATION:
        raise InfeasibleScheduleError(f"'urgency' must be one of {sorted(STRATEGY_PARTICIPATION)}, got {urgency!r}")
    if not (math.isfinite(threshold_bps)):
        raise InfeasibleScheduleError(f"'threshold_bps' must be finite, got {threshold_bps!r}")
    if not 0 < max_participation <= 1:
        raise InfeasibleScheduleError(f"'max_participation' must be in (0, 1], got {max_participation!r}")
    session = market.session_s
    h_min = min(60.0, session / 10)  # a minute, or a tenth of a session shorter than ten minutes (a capture)
    cap = session if horizon_s is None else float(horizon_s)
    if not (math.isfinite(cap) and h_min <= cap <= 5 * session):
        raise InfeasibleScheduleError(
            f"'horizon_s' must be between {h_min:g} s and five sessions ({5 * session:g} s), got {horizon_s!r}"
        )
    grid = np.geomspace(h_min, session, 20) if horizons_s is None else np.asarray(horizons_s, float)
    if (
        grid.ndim != 1
        or grid.size < 2
        or grid.size > 200
        or np.any(grid < min(1.0, h_min))
        or not np.all(np.isfinite(grid))
    ):
        raise InfeasibleScheduleError(
            f"'horizons_s' must hold 2 to 200 finite horizons of at least {min(1.0, h_min):g} s"
        )

    cache: dict[float, tuple[Schedule, ScheduleCost]] = {}

    def price(h: float) -> tuple[Schedule, ScheduleCost]:
        if h not in cache:
            s = vwap(
                quantity,
                h,
                curve=market.volume_curve,
                daily_volume=market.adv,
                step_s=_steps(h, h_min),
                start_s=market.start_s,
                side=side,
            )
            c = model.schedule_cost(s, market)
            if c.unit != "bps":
                raise InfeasibleScheduleError(f"pre-trade needs a model in bps; {c.model} prices in {c.unit}")
            cache[h] = (s, c)
        return cache[h]

    curve = tuple(CurvePoint(float(h), *price(float(h)), price(float(h))[1].prob_exceeds(threshold_bps)) for h in grid)
    # the shortest horizon whose VWAP stays within the participation cap (the curve's volume is cumulative)
    need = quantity / max_participation / market.adv
    shortest = _horizon_for(market, need * market.adv)
    if shortest > cap:
        raise InfeasibleScheduleError(
            f"participation cap too low to finish: {quantity:,.0f} shares at {max_participation:.0%} of the expected "
            f"volume take {_fmt_h(shortest)}, longer than the horizon {_fmt_h(cap)}"
        )
    results = []
    for name, share in STRATEGY_PARTICIPATION.items():
        target = max_participation * share
        h_needed = _horizon_for(market, quantity / target)
        h = float(min(max(h_needed, h_min), cap))
        sch, c = price(h)
        results.append(StrategyResult(name, target, h, sch, c, c.prob_exceeds(threshold_bps)))
    z95 = float(stats.norm.ppf(0.95))
    best = min(results, key=lambda r: r.cost.total + z95 * r.cost.std).name
    dep = [p.cost.horizon_dependent for p in curve]
    depends: bool | None = None if any(d is None for d in dep) else any(dep)
    notes = []
    mid = price(float(min(max(1800.0, h_min), cap)))[1]
    if mid.horizon_free is not None:
        parts = ", ".join(f"{k} {v:.2f}" for k, v in mid.parts.items()) if mid.parts else ""
        notes.append(
            f"over {_fmt_h(min(max(1800.0, h_min), cap))}: {mid.horizon_free:.2f} of {mid.total:.2f} bps do not depend "
            f"on the horizon or the rate (a half-spread, the square-root metaorder law), "
            f"{mid.total - mid.horizon_free:.2f} bps do" + (f" (parts, bps: {parts})" if parts else "")
        )
    if depends is False:
        notes.append(
            "this model's cost is the same at every horizon (the square-root law prices the metaorder, not its "
            "speed), so it cannot choose a horizon: only the timing risk differs between the strategies"
            + ("" if urgency else "; no strategy is recommended (give an urgency to choose one)")
        )
    extrap = sorted({f for p in curve for f in p.cost.extrapolated_features})
    if extrap:
        notes.append(f"the model extrapolates beyond its training data in {extrap} for some horizons")
    notes.append(
        "sd combines the model's impact uncertainty and the timing risk of the schedule at the day's volatility, "
        "as independent; P(cost > threshold) is normal with that sd"
    )
    notes.append(
        "strategies work the order by VWAP at "
        + ", ".join(f"{k} {max_participation * v:.0%}" for k, v in STRATEGY_PARTICIPATION.items())
        + f" of the expected volume (at most {_fmt_h(cap)}); the least 95% value at risk (E + 1.645·sd) is {best}"
        + (" (by timing risk alone: not a recommendation)" if depends is False else "")
    )
    return PreTradeReport(
        symbol=market.symbol,
        side=side,
        quantity=float(quantity),
        market=market,
        model=model_name or curve[0].cost.model,
        threshold_bps=float(threshold_bps),
        curve=curve,
        strategies=tuple(results),
        recommended=urgency or ("" if depends is False else best),
        notes=tuple(notes),
        horizon_dependent=depends,
    )
