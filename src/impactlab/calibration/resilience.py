"""Obizhaeva–Wang parameters from the book itself: depth from its shape, resilience from the spread's recovery.

The event study of :class:`~impactlab.impact.ObizhaevaWangImpact` regresses the mid's path on order size.
On NASDAQ data that cannot identify OW (``BENCHMARKS.md``): the near quote's jump does not scale with size
(orders are sized to the queue, so the jump is the gap to the next level), and the mid does not revert.
This module measures each OW parameter where the data do show it:

* **depth q** (shares per bps): OW's book is a block of density q, so taking C shares moves the near quote
  by ``C/q``.  Snapshots of the visible book every second give, per level k, the mean distance to level
  k+1 and the mean shares in levels 1..k; q is the slope of that average profile through the origin, with
  a jackknife error over one-minute blocks.
* **resilience ρ** (per second): after a market order that moved the near quote, the spread is wider than
  it was, and the hole refills.  The spread at t + τ is compared with random times that had the same
  spread in ticks (events happen when the spread is tight, and a tight spread widens on its own); the
  excess decays as ``A e^{−ρτ} + c``, fitted with errors clustered by event.
* **permanent fraction f**: how much of the near quote's jump J is still there once the spread has
  recovered, with the signed flow that followed as a control:
  ``near(τ) − J e^{−ρτ} = f · J (1 − e^{−ρτ}) + φ · later``, at the longest horizon.  OW needs f in
  [0, 1]; an estimate outside is clipped and flagged.

Then ``λ = f/q`` and ``κ = (1 − f)/q`` (bps per share), the OW model's own parameters.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from impactlab.calibration.datasets import trade_series  # noqa: F401 - re-exported for resilience callers
from impactlab.data.market import MarketDay
from impactlab.errors import CalibrationError, InsufficientDepthError
from impactlab.impact import ObizhaevaWangImpact
from impactlab.impact._base import _fingerprint, nls, sandwich_cov

__all__ = [
    "BookResilience",
    "calibrate_ow_book",
    "depth_profile",
    "evaluate_ow_book",
    "fit_book_resilience",
    "resilience_events",
]

F64 = NDArray[np.float64]
HORIZONS_S = (0.0, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0)


def depth_profile(day: MarketDay, *, every_s: float = 1.0) -> pd.DataFrame:
    """The visible book's shape, sampled every ``every_s`` seconds.

    One row per snapshot, side and level k (1 ≤ k < levels) whose level k+1 exists: ``snapshot``,
    ``ts_ns``, ``side`` (+1 bid, −1 ask), ``level``, ``distance_bps`` (level k+1's price from the best
    quote, bps of the mid) and ``shares`` (the size of levels 1..k: what must be taken to move the quote
    that far).
    """
    from impactlab.features.trades import state_at

    if day.depth < 2:
        raise InsufficientDepthError(
            f"the depth profile needs at least 2 book levels; {day.label} ({day.source}) shows {day.depth}"
        )
    if not every_s > 0:
        raise CalibrationError(f"'every_s' must be > 0, got {every_s}")
    every = np.arange(day.ts_ns[0], day.ts_ns[-1], round(every_s * 1e9), dtype=np.int64)
    found = state_at(day.ts_ns, every)
    grid, idx = every[found >= 0], found[found >= 0]
    ap, aq = day.ask()
    bp, bq = day.bid()
    mid = (ap[idx, 0] + bp[idx, 0]) / 2
    frames = []
    for side, px, sz in ((1, bp, bq), (-1, ap, aq)):
        p, s = px[idx], sz[idx]
        dist = np.abs(p[:, 1:] - p[:, :1]) / mid[:, None] * 1e4
        cum = np.cumsum(s, axis=1)[:, :-1]
        ok = np.isfinite(dist) & np.isfinite(mid)[:, None]
        snap, lev = np.nonzero(ok)
        frames.append(
            pd.DataFrame(
                {
                    "snapshot": snap,
                    "ts_ns": grid[snap],
                    "side": side,
                    "level": lev + 1,
                    "distance_bps": dist[ok],
                    "shares": cum[ok],
                }
            )
        )
    return pd.concat(frames).sort_values(["snapshot", "side", "level"]).reset_index(drop=True)


def resilience_events(
    day: MarketDay,
    *,
    horizons_s: tuple[float, ...] = HORIZONS_S,
    control_draws: int = 200_000,
    min_control: int = 20,
    seed: int = 0,
) -> pd.DataFrame:
    """The book after every market order that moved the near quote, against matched random times.

    Rows per event and horizon τ: ``event``, ``ts_ns``, ``tau_s``, ``signed_quantity``, ``jump_bps`` (the
    near quote's move right after the order, bps of the mid before), ``near_move_bps`` (its move by
    t + τ, signed with the order), ``spread_excess_bps`` (the spread's change by t + τ less the mean change
    from ``control_draws`` random times with the same spread in ticks), ``later_signed_volume`` (market
    flow in the order's direction after it, up to t + τ) and ``pre_spread_ticks``.  Events whose spread
    has fewer than ``min_control`` random matches, and horizons past the close, are left out; ``attrs``
    counts them.
    """
    from impactlab.calibration.datasets import market_trade_series
    from impactlab.features.trades import state_at

    if control_draws < 1000:
        raise CalibrationError(f"'control_draws' must be >= 1000, got {control_draws}")
    ap, _ = day.ask()
    bp, _ = day.bid()
    ask, bid = ap[:, 0], bp[:, 0]
    mid = (ask + bid) / 2
    spread_ticks = np.rint((ask - bid) / day.tick_size)
    tr = day.trades
    orders = market_trade_series(day)
    ts = orders["ts_ns"].to_numpy()
    sgn = orders["sign"].to_numpy().astype(np.float64)
    i0 = state_at(day.ts_ns, ts, strict=True)
    i1 = state_at(day.ts_ns, ts)
    keep = (i0 >= 0) & np.isfinite(mid[np.clip(i0, 0, None)]) & np.isfinite(mid[i1])

    def near(i: NDArray[np.int64], s: F64) -> F64:  # the quote an order of sign s trades against
        return np.where(s > 0, ask[i], bid[i])

    jump = sgn * (near(i1, sgn) - near(np.clip(i0, 0, None), sgn))
    walked = keep & (jump > 0)
    ts, sgn, i0, i1 = ts[walked], sgn[walked], i0[walked], i1[walked]
    size = orders["size"].to_numpy()[walked]
    jump = jump[walked]
    m0 = mid[i0]
    k0 = spread_ticks[i0]
    n_walked = int(walked.sum())

    tau_max_ns = round(max(horizons_s) * 1e9)
    rng = np.random.default_rng(seed)
    rt = np.sort(rng.integers(day.ts_ns[0], max(day.ts_ns[-1] - tau_max_ns, day.ts_ns[0] + 1), control_draws))
    r0 = state_at(day.ts_ns, rt, strict=True)
    r0 = r0[r0 >= 0]
    rt = rt[rt.size - r0.size :]
    rk = spread_ticks[r0]
    ok_r = np.isfinite(rk)
    kinds, counts = np.unique(rk[ok_r], return_counts=True)
    matched = np.isin(k0, kinds[counts >= min_control])

    flow = np.concatenate([[0.0], np.cumsum(tr.sign * tr.size)])
    after_order = flow[np.searchsorted(tr.ts_ns, ts, "right")]
    rows = []
    for tau in horizons_s:
        when = ts + round(tau * 1e9)
        i = state_at(day.ts_ns, when)
        ri = state_at(day.ts_ns, rt + round(tau * 1e9))
        change = spread_ticks[ri] - rk
        good = ok_r & np.isfinite(change)
        sums = np.bincount(np.searchsorted(kinds, rk[good]), weights=change[good], minlength=len(kinds))
        cnts = np.bincount(np.searchsorted(kinds, rk[good]), minlength=len(kinds))
        ctrl_by_k = np.where(cnts > 0, sums / np.maximum(cnts, 1), np.nan)
        ctrl = np.full(len(ts), np.nan)
        ctrl[matched] = ctrl_by_k[np.searchsorted(kinds, k0[matched])]
        ok = matched & (when <= day.ts_ns[-1]) & np.isfinite(spread_ticks[i]) & np.isfinite(ctrl)
        later = sgn * (flow[np.searchsorted(tr.ts_ns, when, "right")] - after_order)
        rows.append(
            pd.DataFrame(
                {
                    "event": np.flatnonzero(ok),
                    "ts_ns": ts[ok],
                    "tau_s": tau,
                    "signed_quantity": (sgn * size)[ok],
                    "jump_bps": (jump / m0 * 1e4)[ok],
                    "near_move_bps": (sgn * (near(i, sgn) - near(i0, sgn)) / m0 * 1e4)[ok],
                    "spread_excess_bps": ((spread_ticks[i] - k0 - ctrl) * day.tick_size / m0 * 1e4)[ok],
                    "later_signed_volume": later[ok],
                    "pre_spread_ticks": k0[ok],
                }
            )
        )
    out = pd.concat(rows).sort_values(["event", "tau_s"]).reset_index(drop=True)
    out.attrs.update(
        market_orders=len(orders),
        events=n_walked,
        events_without_control=int((~matched).sum()),
        control_draws=control_draws,
    )
    return out


@dataclass(frozen=True)
class BookResilience:
    """OW parameters measured from the book (see the module docstring), each with its standard error."""

    depth_shares_per_bps: float
    depth_se: float
    depth_r2: float
    rho_per_s: float
    rho_se: float
    spread_jump_bps: float
    spread_floor_bps: float
    spread_floor_se: float
    permanent_fraction: float
    permanent_fraction_se: float
    permanent_fraction_raw: float
    fraction_at_bound: bool
    phi_bps_per_share: float
    snapshots: int
    events: int
    fit_horizon_s: float
    resid_std_bps: float
    near_r2: float
    fingerprint: str
    window_ns: tuple[int, int] | None

    @property
    def half_life_s(self) -> float:
        """``ln 2 / ρ``."""
        return float(np.log(2) / self.rho_per_s)

    def conf_int(self, name: str, z: float = 1.959963984540054) -> tuple[float, float]:
        """95% normal interval of ``depth``, ``rho`` or ``permanent_fraction``."""
        est, se = {
            "depth": (self.depth_shares_per_bps, self.depth_se),
            "rho": (self.rho_per_s, self.rho_se),
            "permanent_fraction": (self.permanent_fraction_raw, self.permanent_fraction_se),
        }[name]
        return est - z * se, est + z * se

    def predict_near_move(self, events: pd.DataFrame) -> F64:
        """The near quote's move (bps) at each row's τ: ``J (f + (1 − f) e^{−ρτ}) + φ · later`` with the
        unclipped f, the fit's own prediction (for validation on events it has not seen)."""
        j = events["jump_bps"].to_numpy(float)
        decay = np.exp(-self.rho_per_s * events["tau_s"].to_numpy(float))
        f = self.permanent_fraction_raw
        return np.asarray(
            j * (f + (1 - f) * decay) + self.phi_bps_per_share * events["later_signed_volume"].to_numpy(float),
            dtype=np.float64,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, with the half-life."""
        d = asdict(self)
        d["half_life_s"] = self.half_life_s
        d["window_ns"] = list(self.window_ns) if self.window_ns else None
        return d

    def model(self) -> ObizhaevaWangImpact:
        """The :class:`ObizhaevaWangImpact` with ``λ = f/q``, ``κ = (1 − f)/q`` and ρ, errors by the delta method
        (the depth's error independent of the events')."""
        cov = np.diag([self.depth_se**2, self.permanent_fraction_se**2, self.rho_se**2])
        return ObizhaevaWangImpact.from_estimates(
            depth_shares_per_bps=self.depth_shares_per_bps,
            permanent_fraction=self.permanent_fraction,
            rho_per_s=self.rho_per_s,
            cov=cov,
            n=self.events,
            resid_std_bps=self.resid_std_bps,
            r2=self.near_r2,
            fitted_window_ns=self.window_ns,
            data_fingerprint=self.fingerprint,
            extra={
                "method": "book",
                "half_life_s": self.half_life_s,
                "depth_r2": self.depth_r2,
                "spread_floor_bps": self.spread_floor_bps,
                "permanent_fraction_raw": self.permanent_fraction_raw,
                "fraction_at_bound": self.fraction_at_bound,
                "snapshots": self.snapshots,
            },
        )


def _fit_depth(profile: pd.DataFrame, block_s: float = 60.0) -> tuple[float, float, float]:
    """q from the time-averaged profile: mean shares to level k against mean distance to level k+1, a line
    through the origin; R² of that line; error by the delete-one-block jackknife over ``block_s`` blocks.

    Averaging first matters: within one snapshot a thin book has wide gaps, so pooled snapshots would tie
    larger distances to fewer shares and bias q toward zero; the average book is what OW's block describes.
    """
    if len(profile) < 10 or profile["level"].nunique() < 2:
        raise CalibrationError(f"depth profile: too little data ({len(profile)} rows, need two levels or more)")
    lev = np.unique(profile["level"].to_numpy(), return_inverse=True)[1]
    blk = np.unique((profile["ts_ns"].to_numpy() // round(block_s * 1e9)), return_inverse=True)[1]
    nb, nl = int(blk.max()) + 1, int(lev.max()) + 1
    cell = blk * nl + lev
    sums = {
        k: np.bincount(cell, weights=profile[k].to_numpy(float), minlength=nb * nl).reshape(nb, nl)
        for k in ("distance_bps", "shares")
    }
    cnt = np.bincount(cell, minlength=nb * nl).reshape(nb, nl).astype(float)

    def slope(d_sum: F64, c_sum: F64, n: F64) -> tuple[float, float]:
        d, c = d_sum / n, c_sum / n
        q = float(d @ c / (d @ d))
        r = c - q * d
        return q, 1.0 - float(r @ r) / float(((c - c.mean()) ** 2).sum())

    tot = {k: v.sum(axis=0) for k, v in sums.items()}
    q, r2 = slope(tot["distance_bps"], tot["shares"], cnt.sum(axis=0))
    if nb < 2:
        raise CalibrationError("depth profile: need at least two time blocks for a standard error")
    jk = np.array(
        [
            slope(
                tot["distance_bps"] - sums["distance_bps"][b], tot["shares"] - sums["shares"][b], cnt.sum(0) - cnt[b]
            )[0]
            for b in range(nb)
        ]
    )
    se = float(np.sqrt((nb - 1) / nb * np.sum((jk - jk.mean()) ** 2)))
    return q, se, r2


def fit_book_resilience(profile: pd.DataFrame, events: pd.DataFrame) -> BookResilience:
    """Depth, resilience and permanent fraction from :func:`depth_profile` and
    :func:`resilience_events` tables (or simulated ones with the same columns)."""
    need = {"event", "tau_s", "jump_bps", "near_move_bps", "spread_excess_bps", "later_signed_volume"}
    missing = need - set(events.columns)
    if missing:
        raise CalibrationError(f"resilience events lack columns {sorted(missing)}")
    q, q_se, q_r2 = _fit_depth(profile)
    if q <= 0:
        raise CalibrationError(f"depth profile gives a non-positive depth {q:g} shares/bps")
    n_events = int(events["event"].nunique())
    if n_events < 30:
        raise CalibrationError(f"resilience: too few events ({n_events}); need at least 30")
    tau = events["tau_s"].to_numpy(float)
    y = events["spread_excess_bps"].to_numpy(float)
    if not np.all(np.isfinite(y)):
        raise CalibrationError("resilience: spread_excess_bps has NaN or infinite values")
    groups = np.unique(events["event"].to_numpy(), return_inverse=True)[1]

    def spread(t: F64) -> tuple[F64, F64]:
        e = np.exp(-t[1] * tau)
        return y - (t[0] * e + t[2]), np.column_stack([e, -t[0] * tau * e, np.ones_like(tau)])

    a0 = float(np.mean(y[tau == tau.min()]))
    theta, cov = nls(
        spread,
        np.array([a0, 0.1, 0.0]),
        names=("spread_jump_bps", "rho_per_s", "spread_floor_bps"),
        bounds=([-np.inf, 1e-4, -np.inf], [np.inf, 100.0, np.inf]),
        groups=groups,
        model="BookResilience",
    )
    rho, rho_se = float(theta[1]), float(np.sqrt(max(cov[1, 1], 0.0)))
    if theta[0] <= 0 or rho - 1.96 * rho_se <= 0:
        raise CalibrationError(
            f"resilience: the spread does not recover after the events (jump {theta[0]:.3g} bps, "
            f"ρ = {rho:.3g} ± {rho_se:.2g}/s)"
        )
    horizon = float(tau.max())
    last = events[events["tau_s"] == horizon]
    j = last["jump_bps"].to_numpy(float)
    decay = np.exp(-rho * horizon)
    yy = last["near_move_bps"].to_numpy(float) - j * decay
    X = np.column_stack([j * (1 - decay), last["later_signed_volume"].to_numpy(float)])
    beta, *_ = np.linalg.lstsq(X, yy, rcond=None)
    r = yy - X @ beta
    fcov = sandwich_cov(X, r, cov_type="HC1")
    f_raw = float(beta[0])
    ts = events["ts_ns"].to_numpy() if "ts_ns" in events else None
    return BookResilience(
        depth_shares_per_bps=q,
        depth_se=q_se,
        depth_r2=q_r2,
        rho_per_s=rho,
        rho_se=rho_se,
        spread_jump_bps=float(theta[0]),
        spread_floor_bps=float(theta[2]),
        spread_floor_se=float(np.sqrt(max(cov[2, 2], 0.0))),
        permanent_fraction=float(np.clip(f_raw, 0.0, 1.0)),
        permanent_fraction_se=float(np.sqrt(fcov[0, 0])),
        permanent_fraction_raw=f_raw,
        fraction_at_bound=not 0.0 <= f_raw <= 1.0,
        phi_bps_per_share=float(beta[1]),
        snapshots=int(profile["snapshot"].nunique()) if "snapshot" in profile else len(profile),
        events=n_events,
        fit_horizon_s=horizon,
        resid_std_bps=float(np.std(r, ddof=2)),
        near_r2=1.0 - float(r @ r) / float(((yy - yy.mean()) ** 2).sum()),
        fingerprint=_fingerprint([profile["distance_bps"].to_numpy(), profile["shares"].to_numpy(), y]),
        window_ns=(int(ts.min()), int(ts.max())) if ts is not None and len(ts) else None,
    )


def calibrate_ow_book(day: MarketDay, **kwargs: Any) -> BookResilience:
    """:func:`fit_book_resilience` on one day with at least two book levels (``kwargs`` go to
    :func:`resilience_events`)."""
    return fit_book_resilience(depth_profile(day), resilience_events(day, **kwargs))


def evaluate_ow_book(profile: pd.DataFrame, events: pd.DataFrame, *, n_splits: int = 5) -> dict[str, Any]:
    """Walk-forward validation: fit on the events (and snapshots) before each test block of events, predict
    the near quote's path in the block.  Returns ``fitted`` (on everything), ``in_sample`` and
    ``out_of_sample`` metrics of ``near_move_bps``."""
    from impactlab.calibration.validation import metrics, walk_forward_splits

    fitted = fit_book_resilience(profile, events)
    ids = np.sort(events["event"].unique())
    y_all, p_all = [], []
    for train, test in walk_forward_splits(len(ids), n_splits=n_splits):
        tr_ev = events[events["event"].isin(ids[train])]
        te_ev = events[events["event"].isin(ids[test])]
        cut = int(te_ev["ts_ns"].min())
        model = fit_book_resilience(profile[profile["ts_ns"] < cut], tr_ev)
        y_all.append(te_ev["near_move_bps"].to_numpy(float))
        p_all.append(model.predict_near_move(te_ev))
    if not y_all:
        raise CalibrationError("evaluate_ow_book: no walk-forward split had data")
    return {
        "fitted": fitted,
        "in_sample": metrics(events["near_move_bps"].to_numpy(float), fitted.predict_near_move(events)),
        "out_of_sample": metrics(np.concatenate(y_all), np.concatenate(p_all)),
        "out_of_sample_no_transient": metrics(np.concatenate(y_all), np.zeros(sum(len(y) for y in y_all))),
    }
