"""Simulator kernels: pure functions on arrays, written once in plain Python (``*_py``) and compiled with
numba with their helper calls rebound to the compiled helpers (the pattern of :mod:`impactlab.book`).

One book layout serves the generated market and the historical replay:

``q[s, p]``
    visible quantity at ladder index ``p`` on side ``s`` (0 bid, 1 ask).  In a simulation it includes
    the trader's resting orders; in a replay it is the *historical* book.
``own[s, p]``
    the trader's resting quantity at the level.
``cons[s, p]``
    replay only: historical liquidity the trader consumed, so that it does not reappear; the trader sees
    ``max(q − cons, 0)``.
``top``
    ``[best bid index (−1 if empty), best ask index (P if empty)]`` of ``q``.

The trader's orders live in a small table: ``oi[k] = [state, side (+1 buy / −1 sell), ladder index,
trader-frame absolute tick, time joined (ns)]`` and ``of[k] = [remaining, quantity ahead in the queue]``.  A
resting order's place in the queue is the segment ``[ahead, ahead + remaining)``: an aggressor of size x
fills ``clip(x − ahead, 0, remaining)`` of it and moves everyone forward by x (price-time priority).

Fills go to ``fi[n] = [slot, trader-frame absolute tick, exchange time ns, maker flag]`` and ``ff[n] = quantity``.
Scalars live in ``st`` (int64) and ``sf`` (float64); their slots are named by the ``ST_*``/``SF_*``
constants below.  An absolute tick is a ladder index plus ``st[ST_BASE]``; the trader sees the replayed
book moved by ``st[ST_SHIFT]`` ticks of its own impact (always 0 in a simulation, whose book the
trader's orders change directly).  Every loop is resumable: it stops at a time, or when a buffer is
full, and says which.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from impactlab.book._kernels import _compile_with

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

# st (int64 scalars)
ST_NFILL, ST_BASE, ST_SHIFT, ST_NEV, ST_UI, ST_NREC, ST_EV_I, ST_DROPPED = 0, 1, 2, 3, 4, 5, 6, 7
N_ST = 8
# sf (float64 scalars)
SF_T, SF_HB, SF_HS, SF_OFI, SF_TRANS, SF_PERM, SF_TLAST, SF_TNEXT, SF_VOL, SF_RHO = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9
N_SF = 10
# order table
O_STATE, O_SIDE, O_PX, O_TPX, O_TJOIN = 0, 1, 2, 3, 4
Q_REM, Q_AHEAD = 0, 1
# event kinds (LOBSTER's codes where they exist)
K_ADD, K_CANCEL, K_EXEC, K_PRINT, K_SET, K_SYNC = 1, 3, 4, 5, 6, 7
# return codes of the loops
DONE, NEED_UNIFORMS, RECORD_FULL, FILLS_FULL = 0, 1, 2, 3
NO_QUOTE = -(1 << 62)  # recorded best price of an empty side
ARR_UNKNOWN = -2  # a cancel/trade without order identity (Binance): risk-averse queue update


def best_after_drop_py(q: F64, top: I64, s: int) -> None:
    """Move the best of side ``s`` outward past empty levels (after its level emptied)."""
    n = q.shape[1]
    if s == 0:
        i = top[0]
        while i >= 0 and q[0, i] <= 0.0:
            i -= 1
        top[0] = i
    else:
        i = top[1]
        while i < n and q[1, i] <= 0.0:
            i += 1
        top[1] = i


def level_add_py(q: F64, top: I64, s: int, p: int, x: float) -> None:
    """Add ``x`` at the back of level ``p`` of side ``s``."""
    q[s, p] += x
    if s == 0:
        if p > top[0]:
            top[0] = p
    elif p < top[1]:
        top[1] = p


def level_sub_py(q: F64, top: I64, s: int, p: int, x: float) -> None:
    """Remove ``x`` from level ``p`` (floored at zero); the best moves if the level empties."""
    left = q[s, p] - x
    q[s, p] = left if left > 1e-12 else 0.0
    if q[s, p] == 0.0 and p == top[s]:
        best_after_drop_py(q, top, s)


def ofi_py(top: I64, s: int, p: int, x: float, adds: bool) -> float:
    """Cont–Kukanov–Stoikov order-flow contribution of one event at the touch (0 away from it)."""
    if s == 0:
        if p >= top[0]:
            return x if adds else -x
        return 0.0
    if p <= top[1]:
        return -x if adds else x
    return 0.0


def record_fill_py(fi: I64, ff: F64, st: I64, slot: int, tpx: int, t_ns: int, maker: int, x: float) -> bool:
    n = st[ST_NFILL]
    if n >= ff.shape[0]:
        return False
    fi[n, 0] = slot
    fi[n, 1] = tpx
    fi[n, 2] = t_ns
    fi[n, 3] = maker
    ff[n] = x
    st[ST_NFILL] = n + 1
    return True


def hit_own_py(
    own: F64, oi: I64, of: F64, fi: I64, ff: F64, st: I64, s: int, p: int, x: float, t_ns: int, arr: int
) -> float:
    """An aggressor of ``x`` reaches level ``(s, p)``: fill the trader's resting orders there.

    ``arr`` is the arrival time of the resting order the aggressor hit, where the data say (LOBSTER): an
    order that arrived before ours was ahead of it, one that arrived after it was behind, so ours filled
    first.  ``arr == ARR_UNKNOWN`` (generated flow, Binance) uses the queue segment alone.  Returns the
    quantity filled.
    """
    if own[s, p] <= 0.0:
        return 0.0
    side = 1 if s == 0 else -1
    filled = 0.0
    left = x
    for k in range(oi.shape[0]):
        if oi[k, O_STATE] != 1 or oi[k, O_SIDE] != side or oi[k, O_PX] != p:
            continue
        if arr != ARR_UNKNOWN and arr < oi[k, O_TJOIN]:
            of[k, Q_AHEAD] = max(of[k, Q_AHEAD] - x, 0.0)
            continue
        if arr != ARR_UNKNOWN:
            of[k, Q_AHEAD] = 0.0  # an order behind ours traded: all that was ahead is gone
        ahead = of[k, Q_AHEAD]
        fill = min(max(left - ahead, 0.0), of[k, Q_REM])
        of[k, Q_AHEAD] = max(ahead - left, 0.0)
        if fill > 0.0:
            if not record_fill_py(fi, ff, st, k, oi[k, O_TPX], t_ns, 1, fill):
                st[ST_DROPPED] += 1
                continue
            of[k, Q_REM] -= fill
            own[s, p] = max(own[s, p] - fill, 0.0)
            filled += fill
            if arr != ARR_UNKNOWN:
                left -= fill
            if of[k, Q_REM] <= 1e-12:
                of[k, Q_REM] = 0.0
                oi[k, O_STATE] = 0
    return filled


def through_own_py(own: F64, oi: I64, of: F64, fi: I64, ff: F64, st: I64, s: int, p: int, x: float, t_ns: int) -> float:
    """An aggressor of ``x`` traded at level ``(s, p)``: the trader's resting orders on side ``s`` at better
    prices (a bid above ``p``, an ask below) stood in its way and fill first, best price first, each at its
    own price.  The historical flow is left as it was (the replay's orders never change it).  Returns the
    quantity filled."""
    side = 1 if s == 0 else -1
    left = x
    filled = 0.0
    while left > 1e-12:
        best = -1
        for k in range(oi.shape[0]):
            if oi[k, O_STATE] != 1 or oi[k, O_SIDE] != side:
                continue
            pk = oi[k, O_PX]
            better = (side == 1 and pk > p) or (side == -1 and pk < p)
            if better and (best < 0 or side * (pk - oi[best, O_PX]) > 0):
                best = k
        if best < 0:
            break
        fill = min(left, of[best, Q_REM])
        if not record_fill_py(fi, ff, st, best, oi[best, O_TPX], t_ns, 1, fill):
            st[ST_DROPPED] += 1
            break
        pk = oi[best, O_PX]
        of[best, Q_REM] -= fill
        of[best, Q_AHEAD] = 0.0
        own[s, pk] = max(own[s, pk] - fill, 0.0)
        left -= fill
        filled += fill
        if of[best, Q_REM] <= 1e-12:
            of[best, Q_REM] = 0.0
            oi[best, O_STATE] = 0
    return filled


def bg_cancel_own_py(q: F64, own: F64, oi: I64, of: F64, s: int, p: int, x: float, u: float, arr: int) -> None:
    """Someone else removes ``x`` from level ``(s, p)``; move the trader's orders there forward if the
    removed quantity was ahead of them.

    With the order's arrival time (LOBSTER) the answer is exact.  Generated flow draws the position of the
    cancelled quantity uniformly over the level's other volume (``u``).  Without either (Binance level
    updates) the queue ahead can only shrink to what the level still holds (risk-averse).
    """
    if own[s, p] <= 0.0:
        return
    side = 1 if s == 0 else -1
    bg = q[s, p] - own[s, p]  # others' volume before the cancel (simulation: q includes own)
    for k in range(oi.shape[0]):
        if oi[k, O_STATE] != 1 or oi[k, O_SIDE] != side or oi[k, O_PX] != p:
            continue
        if arr >= -1:
            if arr < oi[k, O_TJOIN]:
                of[k, Q_AHEAD] = max(of[k, Q_AHEAD] - x, 0.0)
        elif arr == ARR_UNKNOWN and u >= 0.0:
            own_ahead = 0.0
            for j in range(oi.shape[0]):
                if (
                    j != k
                    and oi[j, O_STATE] == 1
                    and oi[j, O_SIDE] == side
                    and oi[j, O_PX] == p
                    and of[j, Q_AHEAD] < of[k, Q_AHEAD]
                ):
                    own_ahead += of[j, Q_REM]
            bg_ahead = of[k, Q_AHEAD] - own_ahead
            if bg > 0.0 and u * bg < bg_ahead:
                of[k, Q_AHEAD] = max(of[k, Q_AHEAD] - x, 0.0)


def clamp_ahead_py(own: F64, oi: I64, of: F64, s: int, p: int, avail: float) -> None:
    """The queue ahead of an order cannot exceed what the level holds (risk-averse)."""
    if own[s, p] <= 0.0:
        return
    side = 1 if s == 0 else -1
    for k in range(oi.shape[0]):
        if oi[k, O_STATE] == 1 and oi[k, O_SIDE] == side and oi[k, O_PX] == p and of[k, Q_AHEAD] > avail:
            of[k, Q_AHEAD] = avail


# --------------------------------------------------------------------------------------------------
# The trader's own orders (both modes)
# --------------------------------------------------------------------------------------------------


def take_py(
    q: F64,
    top: I64,
    cons: F64,
    replay: bool,
    fi: I64,
    ff: F64,
    st: I64,
    sf: F64,
    slot: int,
    side: int,
    x: float,
    limit_tpx: int,
    t_ns: int,
) -> float:
    """Walk the opposite side for the trader's aggressive order of ``x`` up to ``limit_tpx`` (trader
    frame).  Simulation: the quantity leaves ``q``.  Replay: it is added to ``cons`` so it does not
    reappear.  Fills are recorded as taker fills at trader-frame prices (``index + shift``).  Returns
    the quantity filled.
    """
    s = 1 if side == 1 else 0
    n = q.shape[1]
    shift = st[ST_BASE] + st[ST_SHIFT]
    filled = 0.0
    p = top[s]
    while x - filled > 1e-12 and 0 <= p < n:
        tpx = p + shift
        if (side == 1 and tpx > limit_tpx) or (side == -1 and tpx < limit_tpx):
            break
        avail = q[s, p] - cons[s, p] if replay else q[s, p]
        if avail > 1e-12:
            take = min(avail, x - filled)
            if not record_fill_py(fi, ff, st, slot, tpx, t_ns, 0, take):
                st[ST_DROPPED] += 1
                break
            sf[SF_OFI] += take if s == 1 else -take
            if replay:
                cons[s, p] += take
            else:
                level_sub_py(q, top, s, p, take)
            filled += take
        p = p + 1 if s == 1 else p - 1
    return filled


def effective_best_py(q: F64, top: I64, cons: F64, replay: bool, s: int) -> int:
    """Best index of side ``s`` as the trader sees it (consumed liquidity removed)."""
    p = int(top[s])
    if not replay:
        return p
    n = q.shape[1]
    while 0 <= p < n and q[s, p] - cons[s, p] <= 1e-12:
        p = p - 1 if s == 0 else p + 1
    return p


# --------------------------------------------------------------------------------------------------
# Generated flow: Cont–Stoikov–Talreja with optional Hawkes market orders
# --------------------------------------------------------------------------------------------------


def cst_run_py(
    q: F64,
    top: I64,
    own: F64,
    oi: I64,
    of: F64,
    fi: I64,
    ff: F64,
    st: I64,
    sf: F64,
    lam: F64,
    theta: F64,
    prm: F64,
    ubuf: F64,
    t_stop: float,
    rec_i: I64,
    rec_q: F64,
    record: bool,
) -> int:
    """Advance the queue-reactive market to ``t_stop`` seconds.

    ``lam[i-1]``/``theta[i-1]``: limit-order arrival rate (orders/s, per side) and per-order cancel rate
    at ``i`` ticks from the opposite best quote.  ``prm = [mu (market orders/s per side), limit size,
    market size, cancel size, hawkes alpha_self, hawkes alpha_cross, hawkes beta (0: Poisson), margin]``.
    Uniforms come from ``ubuf`` from ``st[ST_UI]``; the loop returns ``NEED_UNIFORMS`` when fewer than
    four are left, ``RECORD_FULL`` when ``rec_*`` is full, ``DONE`` at ``t_stop``.  Recorded rows are
    ``[t_ns, type (1 limit, 3 cancel, 4 execution), side of the resting order (+1 bid), absolute tick,
    best bid tick, best ask tick]`` and the size.
    """
    kmax = lam.shape[0]
    n = q.shape[1]
    mu = prm[0]
    size_l = prm[1]
    size_m = prm[2]
    size_c = prm[3]
    a_self = prm[4]
    a_cross = prm[5]
    beta = prm[6]
    margin = int(prm[7])
    lam_sum = 0.0
    for i in range(kmax):
        lam_sum += lam[i]
    nu = ubuf.shape[0]
    while True:
        if st[ST_UI] + 4 > nu:
            return NEED_UNIFORMS
        if record and st[ST_NREC] >= rec_q.shape[0]:
            return RECORD_FULL
        # recentre the ladder when a best quote nears an edge
        if (top[0] >= 0 and (top[0] < kmax + margin or top[0] > n - kmax - margin)) or (
            top[1] < n and (top[1] < kmax + margin or top[1] > n - kmax - margin)
        ):
            ref = top[0] if top[0] >= 0 else top[1]
            d = ref - n // 2
            if d > 0:
                for s in range(2):
                    for i in range(n):
                        j = i + d
                        q[s, i] = q[s, j] if j < n else 0.0
                        own[s, i] = own[s, j] if j < n else 0.0
            elif d < 0:
                for s in range(2):
                    for i in range(n - 1, -1, -1):
                        j = i + d
                        q[s, i] = q[s, j] if j >= 0 else 0.0
                        own[s, i] = own[s, j] if j >= 0 else 0.0
            for k in range(oi.shape[0]):
                if oi[k, O_STATE] == 1:
                    oi[k, O_PX] -= d
            st[ST_BASE] += d
            top[0] = n - 1
            best_after_drop_py(q, top, 0)
            top[1] = 0
            best_after_drop_py(q, top, 1)
        ra = top[1] if top[1] < n else top[0] + 1  # opposite quotes (a side may be empty)
        rb = top[0] if top[0] >= 0 else top[1] - 1
        # cancellation intensity: theta(i) × others' orders at distance i
        c_bid = 0.0
        c_ask = 0.0
        for i in range(1, kmax + 1):
            pb = ra - i
            if 0 <= pb < n:
                c_bid += theta[i - 1] * max(q[0, pb] - own[0, pb], 0.0) / size_l
            pa = rb + i
            if 0 <= pa < n:
                c_ask += theta[i - 1] * max(q[1, pa] - own[1, pa], 0.0) / size_l
        hb = sf[SF_HB]
        hs = sf[SF_HS]
        bound = 2.0 * lam_sum + 2.0 * mu + hb + hs + c_bid + c_ask
        u1 = ubuf[st[ST_UI]]
        u2 = ubuf[st[ST_UI] + 1]
        st[ST_UI] += 2
        dt = -math.log(1.0 - u1) / bound
        t_new = sf[SF_T] + dt
        if t_new > t_stop:  # memoryless: discarding the draw is exact
            if beta > 0.0:
                decay = math.exp(-beta * (t_stop - sf[SF_T]))
                sf[SF_HB] = hb * decay
                sf[SF_HS] = hs * decay
            sf[SF_T] = t_stop
            return DONE
        sf[SF_T] = t_new
        total = bound
        if beta > 0.0:
            decay = math.exp(-beta * dt)
            hb *= decay
            hs *= decay
            sf[SF_HB] = hb
            sf[SF_HS] = hs
            total = 2.0 * lam_sum + 2.0 * mu + hb + hs + c_bid + c_ask
            u3 = ubuf[st[ST_UI]]
            st[ST_UI] += 1
            if u3 * bound > total:  # thinning: no event
                continue
        t_ns = round(t_new * 1e9)
        x = u2 * total
        etype = 0
        eside = 0
        p = -1
        size = 0.0
        # limit orders
        if x < 2.0 * lam_sum:
            s = 0 if x < lam_sum else 1
            x -= s * lam_sum
            i = 0
            while i < kmax - 1 and x >= lam[i]:
                x -= lam[i]
                i += 1
            p = ra - (i + 1) if s == 0 else rb + (i + 1)
            if 0 <= p < n:
                size = size_l
                sf[SF_OFI] += ofi_py(top, s, p, size, True)
                level_add_py(q, top, s, p, size)
                etype = 1
                eside = 1 if s == 0 else -1
        else:
            x -= 2.0 * lam_sum
            if x < 2.0 * mu + hb + hs:
                buy = x < mu + hb
                s = 1 if buy else 0  # a market buy hits the asks
                if beta > 0.0:
                    if buy:
                        sf[SF_HB] += a_self
                        sf[SF_HS] += a_cross
                    else:
                        sf[SF_HS] += a_self
                        sf[SF_HB] += a_cross
                left = size_m
                p = top[s]
                while left > 1e-12 and 0 <= p < n:  # a market order larger than the best level walks
                    take = min(q[s, p], left)
                    if take > 0.0:
                        hit_own_py(own, oi, of, fi, ff, st, s, p, take, t_ns, ARR_UNKNOWN)
                        sf[SF_OFI] += ofi_py(top, s, p, take, False)
                        sf[SF_VOL] += take
                        level_sub_py(q, top, s, p, take)
                        if record and st[ST_NREC] < rec_q.shape[0]:
                            r = st[ST_NREC]
                            rec_i[r, 0] = t_ns
                            rec_i[r, 1] = 4
                            rec_i[r, 2] = -1 if s == 1 else 1
                            rec_i[r, 3] = p + st[ST_BASE]
                            rec_i[r, 4] = top[0] + st[ST_BASE] if top[0] >= 0 else NO_QUOTE
                            rec_i[r, 5] = top[1] + st[ST_BASE] if top[1] < n else NO_QUOTE
                            rec_q[r] = take
                            st[ST_NREC] = r + 1
                        left -= take
                    p = top[s]
                st[ST_NEV] += 1
                continue
            x -= 2.0 * mu + hb + hs
            s = 0 if x < c_bid else 1
            if s == 1:
                x -= c_bid
            ref = ra if s == 0 else rb
            for i in range(1, kmax + 1):
                p = ref - i if s == 0 else ref + i
                if not 0 <= p < n:
                    continue
                w = theta[i - 1] * max(q[s, p] - own[s, p], 0.0) / size_l
                if x < w or i == kmax:
                    break
                x -= w
            if 0 <= p < n:
                others = max(q[s, p] - own[s, p], 0.0)
                size = min(size_c, others)
                if size > 0.0:
                    u4 = -1.0
                    if own[s, p] > 0.0:
                        u4 = ubuf[st[ST_UI]]
                        st[ST_UI] += 1
                    bg_cancel_own_py(q, own, oi, of, s, p, size, u4, ARR_UNKNOWN)
                    sf[SF_OFI] += ofi_py(top, s, p, size, False)
                    level_sub_py(q, top, s, p, size)
                    etype = 3
                    eside = 1 if s == 0 else -1
        st[ST_NEV] += 1
        if record and etype != 0:
            r = st[ST_NREC]
            rec_i[r, 0] = t_ns
            rec_i[r, 1] = etype
            rec_i[r, 2] = eside
            rec_i[r, 3] = p + st[ST_BASE]
            rec_i[r, 4] = top[0] + st[ST_BASE] if top[0] >= 0 else NO_QUOTE
            rec_i[r, 5] = top[1] + st[ST_BASE] if top[1] < n else NO_QUOTE
            rec_q[r] = size
            st[ST_NREC] = r + 1


# --------------------------------------------------------------------------------------------------
# Historical replay with the trader's impact
# --------------------------------------------------------------------------------------------------


def overlay_shift_py(st: I64, sf: F64, t_ns: int) -> bool:
    """Update the integer tick shift of the impact overlay at ``t_ns``; True if it changed.

    The overlay holds a permanent part and a transient part decaying at rate ρ (``sf[SF_TNEXT]`` caches
    the next time the rounded shift can change, so most events cost one comparison).
    """
    if t_ns < sf[SF_TNEXT]:
        return False
    rho = sf[SF_RHO]
    trans = sf[SF_TRANS] * math.exp(-rho * (t_ns - sf[SF_TLAST]) * 1e-9) if rho > 0.0 else sf[SF_TRANS]
    sf[SF_TRANS] = trans
    sf[SF_TLAST] = t_ns
    shift = sf[SF_PERM] + trans
    new = np.int64(math.floor(shift + 0.5))
    # next time |trans| decays across a half-tick boundary
    if rho > 0.0 and abs(trans) > 1e-9:
        frac = shift + 0.5 - math.floor(shift + 0.5)  # position inside the current rounding cell
        gap = frac if trans > 0 else 1.0 - frac  # how far the decaying part can move before the cell ends
        if gap <= 0.0:
            gap = 1e-9
        target = abs(trans) - gap
        if target <= 0.0:
            sf[SF_TNEXT] = np.inf  # it never leaves the cell
        else:
            sf[SF_TNEXT] = t_ns + math.log(abs(trans) / target) / rho * 1e9
    else:
        sf[SF_TNEXT] = np.inf
    old = st[ST_SHIFT]
    st[ST_SHIFT] = new
    return bool(new != old)


def remap_own_py(q: F64, own: F64, cons: F64, oi: I64, of: F64, st: I64, t_ns: int) -> None:
    """After the overlay's shift changed, resting orders keep their trader-frame price, so they sit at a
    different historical level: they rejoin the back of that level's queue (conservative)."""
    n = q.shape[1]
    for k in range(oi.shape[0]):
        if oi[k, O_STATE] != 1:
            continue
        s = 0 if oi[k, O_SIDE] == 1 else 1
        p_new = oi[k, O_TPX] - st[ST_BASE] - st[ST_SHIFT]
        if p_new == oi[k, O_PX]:
            continue
        own[s, oi[k, O_PX]] = max(own[s, oi[k, O_PX]] - of[k, Q_REM], 0.0)
        if not 0 <= p_new < n:
            oi[k, O_STATE] = 2  # off the ladder: the wrapper cancels it
            continue
        oi[k, O_PX] = p_new
        oi[k, O_TJOIN] = t_ns
        own[s, p_new] += of[k, Q_REM]
        of[k, Q_AHEAD] = max(q[s, p_new] - cons[s, p_new], 0.0)


def replay_run_py(
    q: F64,
    top: I64,
    own: F64,
    cons: F64,
    oi: I64,
    of: F64,
    fi: I64,
    ff: F64,
    st: I64,
    sf: F64,
    ev_t: I64,
    ev_kind: NDArray[np.int8],
    ev_side: NDArray[np.int8],
    ev_px: I64,
    ev_qty: F64,
    ev_arr: I64,
    t_stop: int,
    prm: F64,
) -> int:
    """Apply historical events with ``ev_t <= t_stop`` from ``st[ST_EV_I]``; the trader's orders fill
    when the real flow reaches them and the overlay moves the trader's view.

    ``prm = [permanent ticks per share, transient ticks per share, ρ (1/s), passive impact fraction]``
    (the overlay reacts to the trader's fills; the wrapper adds aggressive fills' impact itself).
    Event kinds: ``K_ADD`` (a new order; one priced through the trader's opposite orders fills them first),
    ``K_CANCEL``, ``K_EXEC`` (an execution against the visible level: fills ours
    by queue priority), ``K_PRINT`` (a trade reported without a depth change: fills ours by the queue
    segment), ``K_SET`` (absolute level quantity).  ``ev_arr`` is the arrival time of the order the event
    touched (−1: before the file began; ``ARR_UNKNOWN``: not known).
    """
    n_ev = ev_t.shape[0]
    i = st[ST_EV_I]
    lam_p = prm[0]
    kap = prm[1]
    passive = prm[3]
    while i < n_ev and ev_t[i] <= t_stop:
        t = ev_t[i]
        if t >= sf[SF_TNEXT] and overlay_shift_py(st, sf, t):
            remap_own_py(q, own, cons, oi, of, st, t)
        kind = ev_kind[i]
        s = 0 if ev_side[i] == 1 else 1
        p = ev_px[i]
        x = ev_qty[i]
        nf0 = st[ST_NFILL]
        if kind == K_ADD:
            sf[SF_OFI] += ofi_py(top, s, p, x, True)
            # a new order priced through one of ours on the other side would have traded with it: ours fills
            # at its own price (an ask at p crosses bids at p and above; a bid at p asks at p and below)
            through_own_py(own, oi, of, fi, ff, st, 1 - s, p - 1 if s == 1 else p + 1, x, t)
            level_add_py(q, top, s, p, x)
        elif kind == K_CANCEL:
            sf[SF_OFI] += ofi_py(top, s, p, x, False)
            bg_cancel_own_py(q, own, oi, of, s, p, x, -1.0, ev_arr[i])
            level_sub_py(q, top, s, p, x)
            if cons[s, p] > q[s, p]:
                cons[s, p] = q[s, p]
            clamp_ahead_py(own, oi, of, s, p, max(q[s, p] - cons[s, p], 0.0))
        elif kind == K_EXEC:
            sf[SF_OFI] += ofi_py(top, s, p, x, False)
            sf[SF_VOL] += x
            through_own_py(own, oi, of, fi, ff, st, s, p, x, t)
            hit_own_py(own, oi, of, fi, ff, st, s, p, x, t, ev_arr[i])
            level_sub_py(q, top, s, p, x)
            if cons[s, p] > q[s, p]:
                cons[s, p] = q[s, p]
            clamp_ahead_py(own, oi, of, s, p, max(q[s, p] - cons[s, p], 0.0))
        elif kind == K_PRINT:
            sf[SF_VOL] += x
            through_own_py(own, oi, of, fi, ff, st, s, p, x, t)
            hit_own_py(own, oi, of, fi, ff, st, s, p, x, t, ARR_UNKNOWN)
        else:  # K_SET, K_SYNC
            if kind == K_SYNC:  # a level came into view: the levels between it and the old deepest are gone
                j = ev_arr[i]
                step = -1 if s == 0 else 1
                j += step
                while 0 <= j < q.shape[1] and j != p:
                    if q[s, j] > 0.0:
                        level_sub_py(q, top, s, j, q[s, j])
                        cons[s, j] = 0.0
                        clamp_ahead_py(own, oi, of, s, j, 0.0)
                    j += step
            old = q[s, p]
            if x >= old:
                sf[SF_OFI] += ofi_py(top, s, p, x - old, True)
                level_add_py(q, top, s, p, x - old)
            else:
                sf[SF_OFI] += ofi_py(top, s, p, old - x, False)
                level_sub_py(q, top, s, p, old - x)
                if cons[s, p] > q[s, p]:
                    cons[s, p] = q[s, p]
                clamp_ahead_py(own, oi, of, s, p, max(q[s, p] - cons[s, p], 0.0))
        if st[ST_NFILL] > nf0 and passive > 0.0:  # passive fills move the overlay too, if asked
            signed = 0.0
            for j in range(nf0, st[ST_NFILL]):
                signed += ff[j] * oi[fi[j, 0], O_SIDE]
            overlay_push_py(st, sf, t, signed * passive, lam_p, kap)
            if overlay_shift_py(st, sf, t):
                remap_own_py(q, own, cons, oi, of, st, t)
        i += 1
        st[ST_NEV] += 1
    st[ST_EV_I] = i
    return DONE


def overlay_push_py(st: I64, sf: F64, t_ns: int, signed_qty: float, lam_p: float, kap: float) -> None:
    """Add the impact of the trader's signed quantity to the overlay at ``t_ns``."""
    rho = sf[SF_RHO]
    if rho > 0.0 and sf[SF_TRANS] != 0.0:
        sf[SF_TRANS] *= math.exp(-rho * (t_ns - sf[SF_TLAST]) * 1e-9)
    sf[SF_TLAST] = t_ns
    sf[SF_TRANS] += kap * signed_qty
    sf[SF_PERM] += lam_p * signed_qty
    sf[SF_TNEXT] = t_ns  # recompute the rounded shift at the next look


def top_levels_py(q: F64, cons: F64, replay: bool, s: int, start: int, levels: int, idx: I64, qty: F64) -> int:
    """The first ``levels`` non-empty levels of side ``s`` from ``start`` outward (as the trader sees
    them); returns how many were found (the rest of ``idx`` is −1)."""
    n = q.shape[1]
    k = 0
    p = start
    step = -1 if s == 0 else 1
    while k < levels and 0 <= p < n:
        avail = q[s, p] - cons[s, p] if replay else q[s, p]
        if avail > 1e-12:
            idx[k] = p
            qty[k] = avail
            k += 1
        p += step
    for j in range(k, levels):
        idx[j] = -1
        qty[j] = 0.0
    return k


# --------------------------------------------------------------------------------------------------
# Compilation
# --------------------------------------------------------------------------------------------------


def l1_from_events_py(
    q: F64, side: I64, index: I64, size: F64, kind: I64, best_bid: I64, best_ask: I64, bid_size: F64, ask_size: F64
) -> None:
    """Rebuild the top-of-book sizes of a recorded simulation: apply each event (kind 1 adds ``size`` at
    ladder ``index`` on the resting ``side``, +1 bid; anything else removes it) to the ladder ``q`` (the book
    before the first event, changed in place) and read the queues at the recorded best quotes (−1: none)."""
    n_px = q.shape[1]
    for n in range(side.size):
        s = 0 if side[n] > 0 else 1
        p = index[n]
        if 0 <= p < n_px:
            if kind[n] == 1:
                q[s, p] += size[n]
            else:
                left = q[s, p] - size[n]
                q[s, p] = left if left > 1e-9 else 0.0
        b, a = best_bid[n], best_ask[n]
        bid_size[n] = q[0, b] if 0 <= b < n_px else 0.0
        ask_size[n] = q[1, a] if 0 <= a < n_px else 0.0


best_after_drop = _compile_with(best_after_drop_py)
level_add = _compile_with(level_add_py)
level_sub = _compile_with(level_sub_py, best_after_drop_py=best_after_drop)
ofi = _compile_with(ofi_py)
record_fill = _compile_with(record_fill_py)
hit_own = _compile_with(hit_own_py, record_fill_py=record_fill)
through_own = _compile_with(through_own_py, record_fill_py=record_fill)
bg_cancel_own = _compile_with(bg_cancel_own_py)
clamp_ahead = _compile_with(clamp_ahead_py)
take = _compile_with(take_py, record_fill_py=record_fill, level_sub_py=level_sub)
effective_best = _compile_with(effective_best_py)
top_levels = _compile_with(top_levels_py)
_helpers = {
    "best_after_drop_py": best_after_drop,
    "level_add_py": level_add,
    "level_sub_py": level_sub,
    "ofi_py": ofi,
    "hit_own_py": hit_own,
    "through_own_py": through_own,
    "bg_cancel_own_py": bg_cancel_own,
    "clamp_ahead_py": clamp_ahead,
}
cst_run = _compile_with(cst_run_py, **_helpers)
overlay_shift = _compile_with(overlay_shift_py)
overlay_push = _compile_with(overlay_push_py)
remap_own = _compile_with(remap_own_py)
replay_run = _compile_with(
    replay_run_py, overlay_shift_py=overlay_shift, overlay_push_py=overlay_push, remap_own_py=remap_own, **_helpers
)
l1_from_events = _compile_with(l1_from_events_py)
