"""Time bars: the per-interval view that impact regressions use."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

__all__ = ["time_bars"]


def time_bars(
    *,
    state_ts: NDArray[np.int64],
    mid: NDArray[np.float64],
    spread_bps: NDArray[np.float64],
    depth_1: NDArray[np.float64],
    ofi: NDArray[np.float64],
    trade_ts: NDArray[np.int64],
    trade_size: NDArray[np.float64],
    trade_sign: NDArray[np.integer],
    bar_s: float,
    origin_ns: int,
    end_ns: int | None = None,
    adv: float | None = None,
) -> pa.Table:
    """Aggregate per-event states and trades into bars of ``bar_s`` seconds from ``origin_ns``.

    Returns
    -------
    pyarrow.Table
        One row per bar, with ``bar_start_ns``; ``seconds_since_open`` (time of day from
        ``origin_ns``); ``mid_open`` / ``mid_close`` (mid of the last state strictly before the bar's start /
        end; the first state's mid where none precedes);
        ``d_mid`` (= close − open, currency) and ``return_bps``; ``ofi`` (Σ e_n of the events in the bar);
        ``volume``, ``signed_volume`` and ``n_trades``; ``realized_vol_bps`` (√Σ r², r the log-mid
        changes of the events in the bar, ×10⁴); ``spread_bps`` and ``depth_1`` as the mean over the
        bar's events and at the close; and ``participation`` = volume / ADV when ``adv`` is given
        (null otherwise).
    """
    if bar_s <= 0:
        raise ValueError(f"'bar_s' must be > 0, got {bar_s}")
    if state_ts.size == 0:
        raise ValueError("no book states to aggregate")
    bar_ns = round(bar_s * 1e9)
    last = int(end_ns if end_ns is not None else state_ts[-1])
    n_bars = max(1, (last - origin_ns) // bar_ns + 1)
    edges = origin_ns + bar_ns * np.arange(n_bars + 1, dtype=np.int64)
    # state in force at each edge (the last state strictly before it)
    at_edge = np.searchsorted(state_ts, edges, side="left") - 1
    # before the first state the opening state stands in, so the first bar opens at the first mid
    mid_edge = mid[np.clip(at_edge, 0, None)]
    mid_open, mid_close = mid_edge[:-1], mid_edge[1:]

    ev_bar = (state_ts - origin_ns) // bar_ns
    in_range = (ev_bar >= 0) & (ev_bar < n_bars)
    eb = ev_bar[in_range]
    counts = np.bincount(eb, minlength=n_bars).astype(np.float64)
    ofi_bar = np.bincount(eb, weights=ofi[in_range], minlength=n_bars)
    with np.errstate(invalid="ignore", divide="ignore"):
        logmid = np.log(mid)
        r = np.concatenate(([0.0], np.diff(logmid)))
    r = np.where(np.isfinite(r), r, 0.0)
    rv = np.sqrt(np.bincount(eb, weights=(r * r)[in_range], minlength=n_bars)) * 1e4
    sp = np.where(np.isfinite(spread_bps), spread_bps, 0.0)
    sp_n = np.bincount(eb, weights=np.isfinite(spread_bps)[in_range].astype(float), minlength=n_bars)
    with np.errstate(invalid="ignore", divide="ignore"):
        spread_mean = np.bincount(eb, weights=sp[in_range], minlength=n_bars) / sp_n
        depth_mean = np.bincount(eb, weights=depth_1[in_range], minlength=n_bars) / counts
    spread_close = np.where(at_edge[1:] >= 0, spread_bps[np.clip(at_edge[1:], 0, None)], np.nan)
    depth_close = np.where(at_edge[1:] >= 0, depth_1[np.clip(at_edge[1:], 0, None)], np.nan)

    tb = (trade_ts - origin_ns) // bar_ns
    t_ok = (tb >= 0) & (tb < n_bars)
    volume = np.bincount(tb[t_ok], weights=trade_size[t_ok], minlength=n_bars)
    signed = np.bincount(tb[t_ok], weights=(trade_size * trade_sign)[t_ok], minlength=n_bars)
    n_trades = np.bincount(tb[t_ok], minlength=n_bars)

    with np.errstate(invalid="ignore", divide="ignore"):
        ret_bps = (mid_close - mid_open) / mid_open * 1e4
    cols = {
        "bar_start_ns": edges[:-1],
        "seconds_since_open": (edges[:-1] - origin_ns) / 1e9,
        "mid_open": mid_open,
        "mid_close": mid_close,
        "d_mid": mid_close - mid_open,
        "return_bps": ret_bps,
        "ofi": ofi_bar,
        "volume": volume,
        "signed_volume": signed,
        "n_trades": n_trades.astype(np.int64),
        "n_events": counts.astype(np.int64),
        "realized_vol_bps": rv,
        "spread_bps_mean": spread_mean,
        "spread_bps_close": spread_close,
        "depth_1_mean": depth_mean,
        "depth_1_close": depth_close,
    }
    table = pa.table(cols)
    part = pa.array(volume / adv if adv else [None] * n_bars, pa.float64())
    return table.append_column("participation", part)
