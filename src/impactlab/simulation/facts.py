"""Stylised facts of a market, real or simulated, measured the same way on both.

Spread distribution, depth profile, autocorrelation of mid returns, the volatility signature plot and the
autocorrelation of trade signs (long memory in real markets: Bouchaud, Farmer & Lillo 2009).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from impactlab.data.market import MarketDay
from impactlab.simulation.flow import QueueReactiveMarket, market_order_times

__all__ = ["MarketSample", "StylisedFacts", "sample_day", "sample_market", "stylised_facts"]

F64 = NDArray[np.float64]
NS = 1_000_000_000
SIGNATURE_S = (1, 2, 5, 10, 30, 60, 120, 300)


@dataclass(frozen=True, eq=False)
class MarketSample:
    """A market seen on a regular clock: mid, spread (ticks) and depth of the first levels each
    ``every_s`` seconds, plus the signs of market orders in event time."""

    name: str
    every_s: float
    mid: F64
    spread_ticks: F64
    bid_depth: F64
    ask_depth: F64
    trade_sign: NDArray[np.int8]


@dataclass(frozen=True)
class StylisedFacts:
    """The facts, as numbers (each a dict or list that :meth:`to_dict` gives as JSON)."""

    name: str
    spread_ticks_mean: float
    spread_distribution: dict[int, float]
    depth_profile: list[float]
    return_acf: list[float]
    volatility_signature: dict[int, float]
    trade_sign_acf: dict[int, float]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "spread_ticks_mean": self.spread_ticks_mean,
            "spread_distribution": {str(k): v for k, v in self.spread_distribution.items()},
            "depth_profile": self.depth_profile,
            "return_acf_10s": self.return_acf,
            "volatility_signature_bps2_per_s": {str(k): v for k, v in self.volatility_signature.items()},
            "trade_sign_acf": {str(k): v for k, v in self.trade_sign_acf.items()},
            **self.extra,
        }


def _acf(x: F64, lags: list[int]) -> list[float]:
    x = np.asarray(x, float) - np.mean(x)
    v = float(x @ x)
    if v == 0:
        return [0.0 for _ in lags]
    return [float(x[:-lag] @ x[lag:] / v) if lag < x.size else float("nan") for lag in lags]


def sample_day(day: MarketDay, *, every_s: float = 1.0, levels: int = 5) -> MarketSample:
    """Sample a day on a regular clock (the book in force at each instant)."""
    t = day.ts_ns
    grid = np.arange(t[0], t[-1], int(every_s * NS))
    rows = np.searchsorted(t, grid, side="right") - 1
    ap, asz = day.ask()
    bp, bsz = day.bid()
    mid = (ap[rows, 0] + bp[rows, 0]) / 2
    spread = np.rint((ap[rows, 0] - bp[rows, 0]) / day.tick_size)
    lv = min(levels, day.depth)
    _, sign, _ = market_order_times(day)
    return MarketSample(f"{day.source} {day.label}", every_s, mid, spread, bsz[rows, :lv], asz[rows, :lv], sign)


def sample_market(
    market: QueueReactiveMarket, duration_s: float, *, every_s: float = 1.0, levels: int = 5
) -> MarketSample:
    """Run a simulated market for ``duration_s`` and sample it like :func:`sample_day` (the market
    must record its events, for the trade signs)."""
    n = int(duration_s / every_s)
    mid = np.empty(n)
    spread = np.empty(n)
    bd = np.empty((n, levels))
    ad = np.empty((n, levels))
    t0 = market.now_ns
    for i in range(n):
        market.run_to(t0 + int((i + 1) * every_s * NS))
        b = market.book(levels)
        mid[i] = b.mid
        spread[i] = round(b.spread / market.tick_size) if np.isfinite(b.spread) else np.nan
        bd[i], ad[i] = b.bid_size, b.ask_size
    rec = market.records()
    ex = rec[rec["type"] == 4]
    new = np.ones(len(ex), dtype=bool)
    tt, sd = ex["t_ns"].to_numpy(), ex["side"].to_numpy()
    new[1:] = (tt[1:] != tt[:-1]) | (sd[1:] != sd[:-1])
    sign = (-sd[new]).astype(np.int8)
    name = "simulated (" + ("Hawkes" if market.hawkes else "CST") + f", {market.params.source or 'published rates'})"
    return MarketSample(name, every_s, mid, spread, bd, ad, sign)


def stylised_facts(sample: MarketSample) -> StylisedFacts:
    """Measure the facts on a sample."""
    ok = np.isfinite(sample.mid) & np.isfinite(sample.spread_ticks)
    sp = sample.spread_ticks[ok].astype(int)
    vals, counts = np.unique(np.clip(sp, 0, 60), return_counts=True)
    dist = {int(v): float(c / sp.size) for v, c in zip(vals, counts, strict=True)}
    depth = ((np.nanmean(sample.bid_depth, axis=0) + np.nanmean(sample.ask_depth, axis=0)) / 2).tolist()
    logm = np.log(np.where(ok, sample.mid, np.nan))
    logm = logm[np.isfinite(logm)]
    step10 = max(round(10 / sample.every_s), 1)
    r10 = np.diff(logm[::step10])
    ret_acf = _acf(r10, list(range(1, 11)))
    sig = {}
    for h in SIGNATURE_S:
        step = max(round(h / sample.every_s), 1)
        r = np.diff(logm[::step]) * 1e4
        if r.size > 10:
            sig[h] = float(np.sum(r**2) / (r.size * step * sample.every_s))
    lags = [1, 2, 5, 10, 20, 50, 100]
    sacf = dict(zip(lags, _acf(sample.trade_sign.astype(float), lags), strict=True))
    return StylisedFacts(
        sample.name,
        float(sp.mean()),
        dist,
        depth,
        ret_acf,
        sig,
        sacf,
        {"samples": int(ok.sum()), "market_orders": int(sample.trade_sign.size)},
    )


def facts_figure(real: StylisedFacts, sim: list[StylisedFacts]) -> Any:
    """Five panels comparing the facts of the real market with simulated ones (matplotlib figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 5, figsize=(22, 4))
    for f in [real, *sim]:
        ks = sorted(f.spread_distribution)
        ax[0].plot(ks, [f.spread_distribution[k] for k in ks], marker="o", label=f.name[:40])
        ax[1].plot(range(1, len(f.depth_profile) + 1), f.depth_profile, marker="o")
        ax[2].plot(range(1, 11), f.return_acf, marker="o")
        hs = sorted(f.volatility_signature)
        ax[3].semilogx(hs, [f.volatility_signature[h] for h in hs], marker="o")
        ls = sorted(f.trade_sign_acf)
        ax[4].loglog(ls, [max(f.trade_sign_acf[k], 1e-4) for k in ls], marker="o")
    titles = ["spread (ticks): share of time", "depth by level (shares)", "ACF of 10 s mid returns",
              "volatility signature (bps²/s)", "trade-sign ACF (log-log)"]  # fmt: skip
    for a, t in zip(ax, titles, strict=True):
        a.set_title(t)
    ax[2].axhline(0, color="k", lw=0.5)
    ax[0].legend(fontsize=7)
    fig.tight_layout()
    return fig
