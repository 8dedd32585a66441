"""Supervised rows for machine-learned impact: blocks of Q shares over a horizon T from a time t.

Each row is a hypothetical block placed on a historical day.  Its features are the book and flow at t
(known before trading); its targets are what executing it would have cost:

- ``immediate_cost_bps``: walking the visible book at t with Q shares (spread and depth, exact);
- ``horizon_move_bps``: ``side · (mid(t + T) − mid(t)) / mid(t) · 10⁴``, the move over the horizon;
- ``post_move_bps``: the move over a further ``post_s`` after the horizon;
- ``cost_bps = immediate_cost_bps + horizon_move_bps``: the realised cost of the block against the
  arrival mid if it were worked over T on top of the day's flow.

Historical data carry no impact of a hypothetical block beyond its walk of the book, so the horizon moves
are the market's; rows from the system's own parent orders (``order_outcomes``) carry real impact.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from impactlab.book.cost import walk_the_book
from impactlab.data.market import MarketDay
from impactlab.errors import CalibrationError
from impactlab.features.blocks import BLOCK_FEATURES
from impactlab.features.book import l1_features
from impactlab.features.daily import DailyBars, find_daily
from impactlab.features.trades import state_at

__all__ = ["BLOCK_FEATURES", "block_features", "day_context", "default_block_range", "hypothetical_blocks"]


def _cum(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.concatenate([[0.0], np.cumsum(x)])


def hypothetical_blocks(
    day: MarketDay,
    *,
    n_blocks: int = 20_000,
    seed: int = 0,
    q_range: tuple[float, float] | None = None,
    horizons_s: tuple[float, ...] = (10.0, 30.0, 60.0, 300.0),
    post_s: float = 60.0,
    adv: float | None = None,
) -> pd.DataFrame:
    """Hypothetical blocks on a day, with features at their start and their realised costs.

    Start times are uniform over the day's data (leaving room for the horizon and ``post_s``); sizes are
    log-uniform in ``q_range`` (default: 100–5,000 shares for an equity with five or more levels, else
    from 5% to 100% of the median visible depth on one side, so that the blocks can be walked); sides ±1 and
    horizons from ``horizons_s`` at random, all from ``seed``.
    Blocks larger than the visible depth (their walk would be a guess) are left out and counted in
    ``attrs['beyond_depth']``.  ADV and daily volatility (the ``adv`` and ``daily_vol`` columns, for
    parametric baselines) come from the daily file (on LOBSTER's share basis) or, without one, from the
    day itself (``attrs['adv_source']`` and ``attrs['daily_vol_source']`` say which).
    """
    if q_range is None:
        q_range = default_block_range(day)
    if n_blocks < 1 or not 0 < q_range[0] < q_range[1]:
        raise CalibrationError(f"bad block settings: n_blocks={n_blocks}, q_range={q_range}")
    rng = np.random.default_rng(seed)
    adv, adv_source, daily_vol, vol_source = day_context(day, adv=adv)

    open_ns, close_ns = day.start_ns, day.end_ns
    span_s = (close_ns - open_ns) / 1e9
    horizons = np.asarray([h for h in horizons_s if h + post_s < 0.8 * span_s], float)
    if horizons.size == 0:
        raise CalibrationError(f"{day.label}: {span_s:.0f} s of data is too short for any of the horizons {horizons_s}")
    horizon = rng.choice(horizons, n_blocks)
    lead = int(min(60.0, 0.05 * span_s) * 1e9)
    latest = close_ns - ((horizon + post_s) * 1e9).astype(np.int64)
    t = open_ns + lead + (rng.random(n_blocks) * (latest - open_ns - lead)).astype(np.int64)
    q = np.exp(rng.uniform(np.log(q_range[0]), np.log(q_range[1]), n_blocks))
    side = rng.choice([-1, 1], n_blocks)
    return _blocks_at(day, t, q, side, horizon, post_s, adv, adv_source, daily_vol, vol_source)


def default_block_range(day: MarketDay) -> tuple[float, float]:
    """Block sizes for :func:`hypothetical_blocks`: 100–5,000 shares on an equity book of five or more
    levels, else 5%–100% of the median visible depth of one side (lot-rounded, at least one lot)."""
    if day.spec.asset_class == "equity" and day.depth >= 5:
        return (100.0, 5_000.0)
    _, bz = day.bid()
    _, az = day.ask()
    depth = float(np.median(np.minimum(bz.sum(axis=1), az.sum(axis=1))))
    lot = day.spec.lot_size
    hi = max(depth, 2 * lot)
    return (max(lot, 0.05 * hi), hi)


def day_context(day: MarketDay, *, adv: float | None = None) -> tuple[float, str, float, str]:
    """``(adv, adv_source, daily_vol, daily_vol_source)`` for a day: from the daily file (on the data's
    share basis) where there is one, else from the day itself (its volume and realised volatility)."""
    mid = l1_features(day)["mid"]
    path = find_daily(day.symbol)
    stats = (
        DailyBars.load(path).stats(day.date, reference_price=float(mid[np.isfinite(mid)][-1]))
        if path is not None
        else None
    )
    if adv is None:
        adv = stats.adv if stats is not None else day.volume()
        adv_source = str(path) if stats is not None else "the day's own traded volume (no daily file)"
    else:
        adv_source = "given"
    if stats is not None:
        return float(adv), adv_source, stats.daily_vol, str(path)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = mid[np.isfinite(mid)]
        lr = np.diff(np.log(m))
    vol = float(np.sqrt(np.sum(lr**2)))
    if not vol > 0:  # the mid never moved (seconds of data): one tick over the session is the least it can be
        vol = day.tick_size / float(np.median(m))
        return (
            float(adv),
            adv_source,
            vol,
            "one tick (the mid never moved on the day's data: volatility not measurable)",
        )
    if not adv > 0:
        raise CalibrationError(f"{day.label}: no traded volume to measure ADV on")
    return float(adv), adv_source, vol, "the day's realised volatility (no daily file)"


def block_features(
    day: MarketDay, *, ts_ns: int, side: int, quantity: float, horizon_s: float, adv: float | None = None
) -> dict[str, float]:
    """The features of one block (:data:`BLOCK_FEATURES`, plus ``arrival_mid``, ``adv`` and ``daily_vol``)
    for an order arriving at ``ts_ns``: the book and flow a pre-trade forecast conditions on.  The quantity
    only sets the size ratios; it is not walked through the book."""
    if side not in (1, -1) or not quantity > 0 or not horizon_s > 0:
        raise CalibrationError(f"bad block: side={side}, quantity={quantity}, horizon_s={horizon_s}")
    adv_v, adv_src, vol, vol_src = day_context(day, adv=adv)
    frame = _blocks_at(
        day,
        np.array([ts_ns], dtype=np.int64),
        np.array([float(quantity)]),
        np.array([side]),
        np.array([float(horizon_s)]),
        0.0,
        adv_v,
        adv_src,
        vol,
        vol_src,
        require_depth=False,
    )
    if frame.empty:
        raise CalibrationError(f"no complete book at {ts_ns} to take features from (or the block exceeds its depth)")
    row = frame.iloc[0]
    return {k: float(row[k]) for k in (*BLOCK_FEATURES, "arrival_mid", "adv", "daily_vol")}


def _blocks_at(
    day: MarketDay,
    t: NDArray[np.int64],
    q: NDArray[np.float64],
    side: NDArray[np.int64],
    horizon: NDArray[np.float64],
    post_s: float,
    adv: float,
    adv_source: str,
    daily_vol: float,
    vol_source: str,
    *,
    require_depth: bool = True,
) -> pd.DataFrame:
    ts = day.ts_ns
    l1 = l1_features(day)
    mid = l1["mid"]
    bp, bz = day.bid()
    ap, az = day.ask()
    tr = day.trades
    k5 = min(5, day.depth)
    open_ns = day.start_ns
    n_blocks = t.size

    i = state_at(ts, t)
    m0 = mid[i]
    near_z = np.where(side[:, None] > 0, az[i], bz[i])
    far_z = np.where(side[:, None] > 0, bz[i], az[i])
    near_depth_1 = near_z[:, 0]
    near_depth_5 = near_z[:, :k5].sum(axis=1)
    complete = near_z.sum(axis=1) >= q
    ok = complete & np.isfinite(m0)

    cost = np.full(n_blocks, np.nan)
    for r in np.flatnonzero(ok) if require_depth else ():
        cost[r] = walk_the_book(
            q[r], int(side[r]), ask_price=ap[i[r]], ask_size=az[i[r]], bid_price=bp[i[r]], bid_size=bz[i[r]]
        ).cost_bps

    def mid_at(when: NDArray[np.int64]) -> NDArray[np.float64]:
        return mid[state_at(ts, when)]

    t_end = t + (horizon * 1e9).astype(np.int64)
    m_end = mid_at(t_end)
    m_post = mid_at(t_end + round(post_s * 1e9))
    cs_ofi = _cum(np.nan_to_num(l1["ofi"]))
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.concatenate([[0.0], np.diff(np.log(mid)) ** 2])
    cs_r2 = _cum(np.nan_to_num(r2, nan=0.0, posinf=0.0))
    cs_vol = _cum(tr.size)
    cs_svol = _cum(tr.size * tr.sign)

    def window(cs: NDArray[np.float64], stamps: NDArray[np.int64], seconds: float) -> NDArray[np.float64]:
        a = np.searchsorted(stamps, t - round(seconds * 1e9), side="right")
        b = np.searchsorted(stamps, t, side="right")
        return cs[b] - cs[a]

    ofi10 = window(cs_ofi, ts, 10.0)
    vol60 = window(cs_vol, tr.ts_ns, 60.0)
    svol60 = window(cs_svol, tr.ts_ns, 60.0)
    rv60 = np.sqrt(window(cs_r2, ts, 60.0)) * 1e4
    with np.errstate(invalid="ignore", divide="ignore"):
        imb = (far_z[:, 0] - near_z[:, 0]) / (far_z[:, 0] + near_z[:, 0])
        df = pd.DataFrame(
            {
                "ts_ns": t,
                "side": side,
                "quantity": q,
                "horizon_s": horizon,
                "arrival_mid": m0,
                "adv": adv,
                "daily_vol": daily_vol,
                "log_q_over_adv": np.log(q / adv),
                "q_over_near_depth_1": q / near_depth_1,
                "q_over_near_depth_5": q / near_depth_5,
                "spread_bps": l1["spread_bps"][i],
                "near_depth_1": near_depth_1,
                "far_depth_1": far_z[:, 0],
                "imbalance_1_signed": -imb,  # > 0 when the far side is thin relative to the near side
                "ofi_10s_signed": side * ofi10,
                "signed_volume_60s_signed": side * svol60,
                "volume_60s": vol60,
                "realized_vol_60s_bps": rv60,
                "seconds_since_open": (t - open_ns) / 1e9,
                "participation": q / (adv * horizon / day.session_s),
                "immediate_cost_bps": cost,
                "horizon_move_bps": side * (m_end - m0) / m0 * 1e4,
                "post_move_bps": side * (m_post - m_end) / m0 * 1e4,
            }
        )
    df["cost_bps"] = df["immediate_cost_bps"] + df["horizon_move_bps"]
    targets = ["cost_bps", "post_move_bps"] if require_depth else []
    keep = (ok if require_depth else np.isfinite(m0)) & np.isfinite(df[[*BLOCK_FEATURES, *targets]].to_numpy()).all(
        axis=1
    )
    out = df[keep].sort_values("ts_ns").reset_index(drop=True)
    out.attrs.update(
        {
            "beyond_depth": int((~complete).sum()),
            "dropped_undefined": int((~keep & complete).sum()),
            "adv_source": adv_source,
            "daily_vol_source": vol_source,
            "symbol": day.symbol,
            "date": day.date.isoformat(),
        }
    )
    return out
