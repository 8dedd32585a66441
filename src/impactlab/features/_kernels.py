"""Compiled L1 feature kernel on the model's float book (plain-Python twin ``l1_features_py``)."""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray


def l1_features_py(
    bid_price: NDArray[np.float64],
    bid_size: NDArray[np.float64],
    ask_price: NDArray[np.float64],
    ask_size: NDArray[np.float64],
    tick_size: float,
    out: NDArray[np.float64],
) -> None:
    """One pass over the level-1 prices and sizes (``(n,)`` each; an empty level is NaN-priced).

    Fills ``out`` (``(n, 6)``) with mid, microprice, spread in ticks, spread in bps, L1 imbalance and
    the Cont–Kukanov–Stoikov OFI contribution, exactly as :func:`impactlab.features.book_features` and
    :func:`impactlab.features.ofi_events` define them (an empty side is NaN-priced with size 0; for OFI
    an empty bid is −∞ and an empty ask +∞).
    """
    n = bid_price.shape[0]
    pb_prev = -math.inf
    pa_prev = math.inf
    qb_prev = 0.0
    qa_prev = 0.0
    for k in range(n):
        a_ok = not math.isnan(ask_price[k]) and ask_size[k] > 0
        b_ok = not math.isnan(bid_price[k]) and bid_size[k] > 0
        pa = ask_price[k] if a_ok else math.inf
        qa = ask_size[k] if a_ok else 0.0
        pb = bid_price[k] if b_ok else -math.inf
        qb = bid_size[k] if b_ok else 0.0
        if a_ok and b_ok:
            mid = 0.5 * (pa + pb)
            out[k, 0] = mid
            out[k, 1] = (pa * qb + pb * qa) / (qa + qb)
            out[k, 2] = (pa - pb) / tick_size
            out[k, 3] = (pa - pb) / mid * 1e4
        else:
            out[k, 0] = math.nan
            out[k, 1] = math.nan
            out[k, 2] = math.nan
            out[k, 3] = math.nan
        tot = qb + qa
        out[k, 4] = (qb - qa) / tot if tot > 0 else math.nan
        if k == 0:
            out[k, 5] = 0.0
        else:
            e = 0.0
            if pb >= pb_prev:
                e += qb
            if pb <= pb_prev:
                e -= qb_prev
            if pa <= pa_prev:
                e -= qa
            if pa >= pa_prev:
                e += qa_prev
            out[k, 5] = e
        pb_prev, pa_prev, qb_prev, qa_prev = pb, pa, qb, qa


l1_features = numba.njit(cache=True, nogil=True)(l1_features_py)

L1_COLUMNS = ("mid", "microprice", "spread_ticks", "spread_bps", "imbalance_1", "ofi")
