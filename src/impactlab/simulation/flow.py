"""Order-flow models that drive the simulated book: Cont–Stoikov–Talreja queue-reactive flow, calibrated
from a LOBSTER day, and a Hawkes variant whose market orders cluster.

References
----------
Cont, R., Stoikov, S. & Talreja, R. (2010). A stochastic model for order book dynamics. Operations
Research 58(3), 549–563.
Hawkes, A. G. (1971). Spectra of some self-exciting and mutually exciting point processes. Biometrika
58(1), 83–90.  Ozaki, T. (1979). Maximum likelihood estimation of Hawkes' self-exciting point processes.
Annals of the Institute of Statistical Mathematics 31, 145–155 (the O(n) likelihood recursion).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import optimize

from impactlab.data.market import EventFlag, EventKind, MarketDay
from impactlab.errors import CalibrationError, SimulationError
from impactlab.simulation import _kernels as k
from impactlab.simulation.venue import Venue

__all__ = [
    "CST_PUBLISHED",
    "HawkesParams",
    "QueueReactiveMarket",
    "QueueReactiveParams",
    "fit_hawkes",
    "fit_queue_reactive",
    "market_order_times",
]

F64 = NDArray[np.float64]

#: Cont, Stoikov & Talreja (2010), Table 1 / Section 4 (as quoted in REFERENCES.md): rates per second,
#: distance i = 1..5 ticks from the opposite best quote, sizes in units of the mean limit order.
CST_PUBLISHED: dict[str, Any] = {
    "lambda": [1.85, 1.51, 1.09, 0.88, 0.77],
    "theta": [0.71, 0.81, 0.68, 0.56, 0.47],
    "mu": 0.94,
    "power_law_k": 1.92,
    "power_law_alpha": 0.52,
    "source": "Cont, Stoikov & Talreja (2010), Oper. Res. 58(3); secondary figures in REFERENCES.md",
}


def _positive(name: str, v: float, *, allow_zero: bool = False) -> float:
    x = float(v)
    if not np.isfinite(x) or x < 0 or (x == 0 and not allow_zero):
        raise SimulationError(f"{name!r} must be {'>= 0' if allow_zero else '> 0'} and finite, got {v!r}")
    return x


@dataclass(frozen=True)
class QueueReactiveParams:
    """Rates of the Cont–Stoikov–Talreja model, per side.

    Parameters
    ----------
    limit_rate_per_s
        λ(i): limit orders per second arriving ``i`` ticks from the opposite best quote, i = 1..K.
    cancel_rate_per_s
        θ(i): cancellations per second per resting order of ``limit_size`` at distance i.
    market_rate_per_s
        μ: market orders per second (each side).
    limit_size, market_size, cancel_size
        Mean sizes, shares.
    depth_profile
        Mean resting volume (shares) at distance i, used to start the book; default λ(i)/θ(i) orders.
    source
        Where the numbers came from.
    """

    limit_rate_per_s: tuple[float, ...]
    cancel_rate_per_s: tuple[float, ...]
    market_rate_per_s: float
    limit_size: float = 100.0
    market_size: float = 100.0
    cancel_size: float = 100.0
    depth_profile: tuple[float, ...] = ()
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        lam, th = self.limit_rate_per_s, self.cancel_rate_per_s
        if len(lam) == 0 or len(lam) != len(th):
            raise SimulationError(
                f"'limit_rate_per_s' and 'cancel_rate_per_s' need the same non-zero length, got {len(lam)} and "
                f"{len(th)}"
            )
        for i, v in enumerate(lam):
            _positive(f"limit_rate_per_s[{i}]", v, allow_zero=True)
        for i, v in enumerate(th):
            _positive(f"cancel_rate_per_s[{i}]", v)
        if sum(lam) <= 0:
            raise SimulationError("'limit_rate_per_s' must have a positive entry, got all zeros")
        _positive("market_rate_per_s", self.market_rate_per_s, allow_zero=True)
        for f in ("limit_size", "market_size", "cancel_size"):
            _positive(f, getattr(self, f))
        if self.depth_profile and len(self.depth_profile) != len(lam):
            raise SimulationError(
                f"'depth_profile' needs {len(lam)} entries (one per distance), got {len(self.depth_profile)}"
            )
        for i, v in enumerate(self.depth_profile):
            _positive(f"depth_profile[{i}]", v, allow_zero=True)

    @property
    def max_distance(self) -> int:
        return len(self.limit_rate_per_s)

    def initial_depth(self) -> F64:
        """Shares resting at each distance at the start."""
        if self.depth_profile:
            return np.asarray(self.depth_profile, float)
        lam = np.asarray(self.limit_rate_per_s, dtype=np.float64)
        return np.asarray(lam / np.asarray(self.cancel_rate_per_s) * self.limit_size, dtype=np.float64)

    @classmethod
    def published(cls, *, size: float = 100.0) -> QueueReactiveParams:
        """The published CST rates (unit orders of ``size`` shares)."""
        return cls(
            tuple(CST_PUBLISHED["lambda"]),
            tuple(CST_PUBLISHED["theta"]),
            float(CST_PUBLISHED["mu"]),
            size,
            size,
            size,
            source=CST_PUBLISHED["source"],
        )

    def comparison(self) -> pd.DataFrame:
        """Fitted rates next to the published ones, in CST's units (sizes in mean limit orders)."""
        kmax = max(self.max_distance, 5)
        pub_l = CST_PUBLISHED["lambda"] + [np.nan] * (kmax - 5)
        pub_t = CST_PUBLISHED["theta"] + [np.nan] * (kmax - 5)
        lam = list(self.limit_rate_per_s) + [np.nan] * (kmax - self.max_distance)
        th = [t * self.cancel_size / self.limit_size for t in self.cancel_rate_per_s]
        th += [np.nan] * (kmax - self.max_distance)
        return pd.DataFrame(
            {
                "distance_ticks": np.arange(1, kmax + 1),
                "lambda_fitted": lam,
                "lambda_published": pub_l,
                "theta_fitted": th,
                "theta_published": pub_t,
            }
        )


@dataclass(frozen=True)
class HawkesParams:
    """Bivariate exponential Hawkes intensity of market buys and sells (symmetric).

    ``λ_buy(t) = μ + α_self Σ_buys e^{−β(t−t_j)} + α_cross Σ_sells e^{−β(t−t_j)}`` and the mirror for sells.

    Parameters
    ----------
    baseline_per_s
        μ, per side.
    alpha_self, alpha_cross
        Jumps of the intensity (1/s) after a market order of the same / the other side.
    beta_per_s
        Decay rate β.
    """

    baseline_per_s: float
    alpha_self: float
    alpha_cross: float
    beta_per_s: float
    std_errors: dict[str, float] = field(default_factory=dict, compare=False)
    log_likelihood: float = float("nan")
    n_events: int = 0

    def __post_init__(self) -> None:
        _positive("baseline_per_s", self.baseline_per_s)
        _positive("alpha_self", self.alpha_self, allow_zero=True)
        _positive("alpha_cross", self.alpha_cross, allow_zero=True)
        _positive("beta_per_s", self.beta_per_s)
        if self.branching_ratio >= 1:
            raise SimulationError(
                f"'alpha_self' + 'alpha_cross' must be < 'beta_per_s' (a stationary process), got branching "
                f"ratio {self.branching_ratio:.3f}"
            )

    @property
    def branching_ratio(self) -> float:
        return (self.alpha_self + self.alpha_cross) / self.beta_per_s

    @property
    def mean_rate_per_s(self) -> float:
        """Stationary market orders per second per side, ``μ / (1 − n)``."""
        return self.baseline_per_s / (1 - self.branching_ratio)


# --------------------------------------------------------------------------------------------------
# Calibration from order events
# --------------------------------------------------------------------------------------------------


def market_order_times(day: MarketDay) -> tuple[F64, NDArray[np.int8], F64]:
    """Market orders of a day: visible prints with the same time and aggressor sign are one market order.

    Returns seconds since the first book state, the aggressor sign (+1 buy) and the size.  Unsigned
    prints (sign 0) and hidden executions are left out.
    """
    tr = day.trades
    m = ~tr.hidden & (tr.sign != 0)
    t = tr.ts_ns[m]
    sign_all = tr.sign[m]
    size = tr.size[m].astype(float)
    if t.size == 0:
        raise CalibrationError(f"{day.label}: no signed visible trades to fit market orders on")
    new = np.ones(t.size, dtype=bool)
    new[1:] = (t[1:] != t[:-1]) | (sign_all[1:] != sign_all[:-1])
    gid = np.cumsum(new) - 1
    sizes = np.bincount(gid, weights=size)
    times = (t[new] - day.ts_ns[0]) / 1e9
    return np.asarray(times, dtype=np.float64), sign_all[new].astype(np.int8), np.asarray(sizes, dtype=np.float64)


def fit_queue_reactive(
    day: MarketDay, *, max_distance: int | None = None, tick_size: float | None = None
) -> QueueReactiveParams:
    """Estimate the CST rates from a day's order events, as Cont, Stoikov & Talreja (2010, Section 4) do.

    λ(i) = N_l(i) / (2T), μ = N_m / (2T) per side; θ(i) = N_c(i) · S_l / (2 T Q̄_i), with distances in
    ticks from the opposite best quote before each event and Q̄_i the time-weighted mean volume at
    distance i, taken over the time the book shows that distance.  The power law λ(i) ≈ k/i^α is
    fitted on i = 1..5 by least squares on logs.  ``max_distance`` defaults to twice the mean spread in
    ticks (within 5..100), so that a wide-spread stock's orders behind its own best quote are covered.
    Needs order-by-order events (LOBSTER, Databento MBO) and at least two book levels.
    """
    if day.depth < 2 or not day.has_order_ids:
        raise CalibrationError(
            f"{day.label}: the CST fit needs order-by-order events and at least 2 book levels; {day.source} has "
            f"{day.depth} level(s) and {'order ids' if day.has_order_ids else 'no order ids'}"
        )
    tick = float(tick_size or day.tick_size)
    ev = day.events
    b = day.book
    n = len(ev)
    t_s = (b.ts_ns - b.ts_ns[0]) / 1e9
    T = float(t_s[-1] - t_s[0])
    if T <= 0:
        raise CalibrationError(f"{day.label}: the data span no time")
    bid_t, ask_t = b.ticks(tick)
    bid_ok = np.isfinite(b.bid_price) & (b.bid_size > 0)
    ask_ok = np.isfinite(b.ask_price) & (b.ask_size > 0)
    both = bid_ok[:, 0] & ask_ok[:, 0]
    if max_distance is None:
        sp = (ask_t[both, 0] - bid_t[both, 0]).astype(float)
        max_distance = int(np.clip(np.ceil(2 * np.mean(sp)), 5, 100))
    ask1 = ask_t[:, 0]
    bid1 = bid_t[:, 0]
    pre = np.searchsorted(b.event_index, np.arange(n), side="left") - 1  # the state before each event
    ok_pre = (pre >= 0) & both[np.clip(pre, 0, None)] & b.synced[np.clip(pre, 0, None)]
    prev_ask = ask1[np.clip(pre, 0, None)]
    prev_bid = bid1[np.clip(pre, 0, None)]
    snap = (ev.flags & np.uint8(EventFlag.SNAPSHOT)) != 0
    dist = np.where(ev.side == 1, prev_ask - ev.price_ticks, ev.price_ticks - prev_bid)
    valid = ok_pre & ~snap
    kmax = int(max_distance)
    lim = valid & (ev.kind == EventKind.ADD)
    can = valid & (ev.kind == EventKind.CANCEL)
    if lim.sum() == 0 or can.sum() == 0:
        raise CalibrationError(f"{day.label}: no limit orders or cancellations after the first book state")
    n_l = np.bincount(np.clip(dist[lim], 0, kmax + 1), minlength=kmax + 2)[1 : kmax + 1]
    n_c = np.bincount(np.clip(dist[can], 0, kmax + 1), minlength=kmax + 2)[1 : kmax + 1]
    s_l = float(ev.size[lim].mean())
    s_c = float(ev.size[can].mean())
    mt, _, msz = market_order_times(day)
    s_m = float(msz.mean())
    # time-weighted depth at distance i from the opposite quote
    dur = np.diff(t_s, append=t_s[-1])
    vol_t = np.zeros(kmax + 2)
    obs_t = np.zeros(kmax + 2)
    for px, szs, okk, opp, sign in ((bid_t, b.bid_size, bid_ok, ask1, 1), (ask_t, b.ask_size, ask_ok, bid1, -1)):
        okr = okk & both[:, None]
        d = np.where(okr, sign * (opp[:, None] - px), 0)
        deepest = np.where(okr, d, 0).max(axis=1)
        w = np.where(okr & (d >= 1) & (d <= kmax), szs * dur[:, None], 0.0)
        np.add.at(vol_t, np.clip(d, 0, kmax + 1).ravel(), w.ravel())
        for i in range(1, kmax + 1):
            obs_t[i] += dur[deepest >= i].sum()
    qbar = np.where(obs_t[1 : kmax + 1] > 0, vol_t[1 : kmax + 1] / np.maximum(obs_t[1 : kmax + 1], 1e-300), 0.0)
    lam = n_l / (2 * T)
    theta = np.where(qbar > 0, n_c * s_l / (2 * T * np.maximum(qbar, 1e-300)), 0.0)
    # a distance with no resting volume in the sample cannot be estimated: keep the nearest estimate
    for i in range(kmax):
        if not theta[i] > 0:
            theta[i] = theta[i - 1] if i > 0 and theta[i - 1] > 0 else float(np.max(theta[theta > 0], initial=1.0))
    i5 = np.arange(1, min(5, kmax) + 1)
    good = lam[: i5.size] > 0
    if good.sum() >= 2:
        slope, icept = np.polyfit(np.log(i5[good]), np.log(lam[: i5.size][good]), 1)
        pk, pa = float(np.exp(icept)), float(-slope)
    else:
        pk, pa = float("nan"), float("nan")
    spread_ticks = np.where(both, ask1 - bid1, 0).astype(float)
    return QueueReactiveParams(
        tuple(float(x) for x in lam),
        tuple(float(x) for x in theta),
        float(mt.size / (2 * T)),
        s_l,
        s_m,
        s_c,
        tuple(float(x) for x in qbar),
        source=f"{day.source} {day.label}: {n:,} events over {T:,.0f} s",
        extra={
            "power_law_k": pk,
            "power_law_alpha": pa,
            "n_limit": int(lim.sum()),
            "n_cancel": int(can.sum()),
            "n_market": int(mt.size),
            "seconds": T,
            "mean_spread_ticks": float(np.average(spread_ticks[both], weights=np.maximum(dur[both], 1e-12))),
            "price": day.first_mid(),
            "tick_size": tick,
        },
    )


# --------------------------------------------------------------------------------------------------
# Hawkes maximum likelihood
# --------------------------------------------------------------------------------------------------


def hawkes_loglik_py(params: F64, t: F64, sign: NDArray[np.int8], horizon: float) -> float:
    """Log-likelihood of the symmetric bivariate exponential Hawkes process (Ozaki's recursion)."""
    mu, a_s, a_c, beta = params[0], params[1], params[2], params[3]
    ab = 0.0  # Σ over past buys of e^{−β(t−t_j)}
    asl = 0.0
    ll = 0.0
    last = 0.0
    comp = 2.0 * mu * horizon
    for i in range(t.shape[0]):
        dec = math.exp(-beta * (t[i] - last))
        ab *= dec
        asl *= dec
        lam = mu + (a_s * ab + a_c * asl if sign[i] > 0 else a_s * asl + a_c * ab)
        ll += math.log(lam)
        if sign[i] > 0:
            ab += 1.0
        else:
            asl += 1.0
        last = t[i]
        comp += (a_s + a_c) / beta * (1.0 - math.exp(-beta * (horizon - t[i])))
    return float(ll - comp)


hawkes_loglik = numba.njit(cache=True, nogil=True)(hawkes_loglik_py)


def fit_hawkes(times_s: F64, sign: NDArray[np.int8], *, horizon_s: float | None = None) -> HawkesParams:
    """Maximum-likelihood fit of :class:`HawkesParams` to market-order times and signs.

    Standard errors come from the inverse of the numerical Hessian of the log-likelihood.
    """
    t = np.asarray(times_s, float)
    sg = np.asarray(sign, np.int8)
    if t.size < 20:
        raise CalibrationError(f"a Hawkes fit needs at least 20 events, got {t.size}")
    if np.any(np.diff(t) < 0):
        raise CalibrationError("market-order times must be non-decreasing")
    t = t - t[0]
    horizon = float(horizon_s if horizon_s is not None else t[-1])
    rate = t.size / (2 * horizon)

    def unpack(z: F64) -> F64:
        beta = np.exp(z[3])
        w = np.exp(z[1:3])
        n = 0.999 / (1 + np.exp(-z[4])) if z.size > 4 else 0.5
        a = n * beta * w / w.sum()
        return np.array([np.exp(z[0]), a[0], a[1], beta])

    def nll(z: F64) -> float:
        v = -hawkes_loglik(unpack(z), t, sg, horizon)
        return float(v) if np.isfinite(v) else 1e300

    best = None
    for beta0 in (0.1, 1.0, 10.0):
        z0 = np.array([np.log(rate * 0.5), 0.0, -1.0, np.log(beta0), 0.0])
        res = optimize.minimize(nll, z0, method="Nelder-Mead", options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-6})
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    p = unpack(best.x)
    from statsmodels.tools.numdiff import approx_hess3

    def nll_natural(theta: F64) -> float:
        if np.any(theta[[0, 3]] <= 0) or np.any(theta[1:3] < 0):
            return 1e300
        return float(-hawkes_loglik(theta, t, sg, horizon))

    se: dict[str, float] = {}
    try:
        hess = approx_hess3(p, nll_natural)
        cov = np.linalg.inv(hess)
        se = {n: float(np.sqrt(v)) if v > 0 else float("nan") for n, v in zip(
            ("baseline_per_s", "alpha_self", "alpha_cross", "beta_per_s"), np.diag(cov), strict=True)}  # fmt: skip
    except np.linalg.LinAlgError:
        se = {}
    return HawkesParams(float(p[0]), float(p[1]), float(p[2]), float(p[3]), se, float(-best.fun), int(t.size))


# --------------------------------------------------------------------------------------------------
# The simulated market
# --------------------------------------------------------------------------------------------------


class QueueReactiveMarket(Venue):
    """A market whose other participants follow the CST model (Poisson, or Hawkes market orders).

    Parameters
    ----------
    params
        The flow rates (e.g. :func:`fit_queue_reactive` of a LOBSTER day).
    hawkes
        If given, market orders arrive as this Hawkes process instead of Poisson at ``μ``.
    price
        Initial best bid, currency.
    tick_size
        Price increment.
    initial_spread_ticks
        Spread at the start.
    record
        Keep every event (for stylised facts and plots); :meth:`records` returns them.
    **venue
        Latency, fee, seed and size settings of :class:`~impactlab.simulation.Venue`.
    """

    def __init__(
        self,
        params: QueueReactiveParams,
        *,
        hawkes: HawkesParams | None = None,
        price: float = 100.0,
        tick_size: float = 0.01,
        initial_spread_ticks: int = 1,
        ladder_ticks: int = 4096,
        record: bool = False,
        uniform_block: int = 1 << 16,
        **venue: Any,
    ) -> None:
        kmax = params.max_distance
        if ladder_ticks < 4 * kmax + 64:
            raise SimulationError(f"'ladder_ticks' must be >= {4 * kmax + 64} for {kmax} distances, got {ladder_ticks}")
        if initial_spread_ticks < 1:
            raise SimulationError(f"'initial_spread_ticks' must be >= 1, got {initial_spread_ticks}")
        c = ladder_ticks // 2
        base = round(price / tick_size) - c
        super().__init__(ladder_ticks=ladder_ticks, tick_size=tick_size, replay=False, base_tick=base, **venue)
        self.params = params
        self.hawkes = hawkes
        depth = params.initial_depth()
        bid, ask = c, c + int(initial_spread_ticks)
        for i in range(1, kmax + 1):
            if ask - i <= bid:
                k.level_add(self._q, self._top, 0, ask - i, float(depth[i - 1]))
            if bid + i >= ask:
                k.level_add(self._q, self._top, 1, bid + i, float(depth[i - 1]))
        self._lam = np.asarray(params.limit_rate_per_s, float)
        self._theta = np.asarray(params.cancel_rate_per_s, float)
        h = hawkes
        self._prm = np.array(
            [
                h.baseline_per_s if h else params.market_rate_per_s,
                params.limit_size,
                params.market_size,
                params.cancel_size,
                h.alpha_self if h else 0.0,
                h.alpha_cross if h else 0.0,
                h.beta_per_s if h else 0.0,
                8.0,
            ]
        )
        self._block = int(uniform_block)
        self._ubuf = self.rng.random(self._block)
        self.record = bool(record)
        cap = 1 << 16 if record else 1
        self._rec_i = np.zeros((cap, 6), dtype=np.int64)
        self._rec_q = np.zeros(cap)
        self._chunks: list[tuple[NDArray[np.int64], F64]] = []

    def _run_flow(self, t_ns: int) -> None:
        t_stop = (t_ns - self.start_ns) / 1e9
        if t_stop <= self._sf[k.SF_T]:
            return
        while True:
            code = k.cst_run(
                self._q, self._top, self._own, self._oi, self._of, self._fi, self._ff, self._st, self._sf,
                self._lam, self._theta, self._prm, self._ubuf, t_stop, self._rec_i, self._rec_q, self.record,
            )  # fmt: skip
            if code == k.NEED_UNIFORMS:
                self._ubuf = self.rng.random(self._block)
                self._st[k.ST_UI] = 0
            elif code == k.RECORD_FULL:
                self._flush()
            else:
                break
            if self._st[k.ST_NFILL] > self._ff.size // 2:
                self._collect()

    def _flush(self) -> None:
        n = int(self._st[k.ST_NREC])
        if n:
            self._chunks.append((self._rec_i[:n].copy(), self._rec_q[:n].copy()))
        self._st[k.ST_NREC] = 0

    def records(self) -> pd.DataFrame:
        """Every event so far: ``t_ns, type`` (1 limit, 3 cancel, 4 execution), ``side`` of the resting order
        (+1 bid), ``price``, ``size``, ``best_bid``, ``best_ask`` after the event."""
        if not self.record:
            raise SimulationError("this market was built with record=False")
        self._flush()
        if not self._chunks:
            cols = ["t_ns", "type", "side", "price", "size", "best_bid", "best_ask"]
            return pd.DataFrame({c: [] for c in cols})
        ri = np.concatenate([c[0] for c in self._chunks])
        rq = np.concatenate([c[1] for c in self._chunks])
        self._chunks = [(ri, rq)]
        return pd.DataFrame(
            {
                "t_ns": ri[:, 0] + self.start_ns,
                "type": ri[:, 1].astype(np.int8),
                "side": ri[:, 2].astype(np.int8),
                "price": ri[:, 3] * self.tick_size,
                "size": rq,
                "best_bid": np.where(ri[:, 4] == k.NO_QUOTE, np.nan, ri[:, 4] * self.tick_size),
                "best_ask": np.where(ri[:, 5] == k.NO_QUOTE, np.nan, ri[:, 5] * self.tick_size),
            }
        )
