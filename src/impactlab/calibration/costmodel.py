"""The one cost model of an instrument: what every decision prices with, its versions, and its refit from the
desk's own fills.

:class:`InstrumentModel` is calibrated on a market day (:func:`calibrate_instrument`) and answers every
surface: the pre-trade report, the service's estimate, schedule and frontier, the hedging engine's cost and
risk profile, and the Almgren–Chriss baselines (linearised from it, :meth:`InstrumentModel.linearised`).  It
prices a :class:`~impactlab.schedules.Schedule` as the sum of parts, each with a multiplier the desk's own
fills re-estimate:

* ``spread``: half the day's mean quoted spread on every share (does not depend on the horizon);
* ``transient``: Obizhaeva–Wang transient impact measured from the book (κ, resilience ρ), priced for
  trading at a constant rate within each interval (depends on the rate; books of two or more levels);
* ``sqrt``: the square-root law ``I = Yσ(Q/V)^δ`` fitted on the day's bars: the order pays ``I/2`` while
  it executes when the book gives the transient part, the whole ``I`` on a top-of-book day (does not
  depend on the horizon: the metaorder law is the same over a minute or a day).

Recalibration (:meth:`InstrumentModel.refit`) is a Bayesian weighted least-squares fit of every part's
multiplier to the realised costs of the desk's own parent orders and hedges (the store's
``cost_predictions`` rows, each with the parts it was priced at): the market-day calibration is the prior
(multipliers 1; sd 1 for the spread and transient parts, the square-root law's relative standard error but
at least 0.5), each own order weighs by the inverse of its timing variance plus the residual scatter, and the
scatter itself is re-estimated on the own fills (what the 90% interval then uses).  A new version therefore
changes the shape of the cost curve (the spread, rate-dependent and size-dependent parts move separately),
not only its level.  The form (with or without the book's transient part) is chosen out of sample: on the
day's book at calibration, by walk-forward on the own orders at each recalibration
(:meth:`InstrumentModel.recalibrated`), and the scores are recorded with the version.

:class:`ModelVersions` is the one version table (``model_versions``) of every instrument's model, written
before a version is used; a version whose predicted cost of any reference order moves by more than
``approve_above`` is held ``pending`` for a person (``impactlab models approve``) while the live one stays.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray
from scipy import stats

from impactlab.errors import CalibrationError
from impactlab.schedules import AlmgrenChriss, MarketContext, Schedule, ScheduleCost

__all__ = [
    "PARTS",
    "InstrumentModel",
    "ModelVersions",
    "Refit",
    "accuracy",
    "calibrate_instrument",
]

log = logging.getLogger(__name__)
F64 = NDArray[np.float64]
PARTS = ("spread", "transient", "sqrt")
"""The parts of an instrument's cost, in the order of the multipliers."""
HORIZON_FREE = {"spread": True, "transient": False, "sqrt": True}
"""Whether each part's cost is the same at every horizon and rate (the square-root metaorder law is)."""
_PRIOR_SD = {"spread": 1.0, "transient": 1.0}
"""Prior standard deviation of the spread and transient multipliers (the sqrt part's is its fit's)."""
Z90 = float(stats.norm.ppf(0.95))
_QZ = {p: float(stats.norm.ppf(p)) for p in (0.05, 0.5, 0.95)}


@dataclass(frozen=True)
class Refit:
    """What one recalibration estimated: each part's multiplier with its standard error, the residual scatter
    of the own fills (bps), and how many own orders it used."""

    multipliers: Mapping[str, float]
    std_errors: Mapping[str, float]
    cov: tuple[tuple[float, ...], ...]
    resid_std_bps: float
    n_obs: int
    parts: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class InstrumentModel:
    """The cost model of one instrument at one version.

    Attributes
    ----------
    symbol, source
        The instrument and the market day it was calibrated on.
    fit
        The day's calibration (:class:`~impactlab.calibration.BookCostModel`): half-spread, the book's
        Obizhaeva–Wang fit, the square-root law.
    markets
        The market at arrival for a buy (+1) and a sell (−1).
    spec
        The instrument (notional and currency).
    multipliers, multiplier_cov
        Each part's multiplier (1 at the day's calibration) and their covariance.
    resid_std_bps
        Scatter of a realised cost around the forecast beyond timing risk, bps (from the day's fit at first;
        from the own fills after a refit).
    version, created_ns, reason, n_obs, status
        The version's record.
    """

    symbol: str
    source: str
    fit: Any
    markets: Mapping[int, MarketContext]
    spec: Any
    day: Any = None
    multipliers: Mapping[str, float] = field(default_factory=lambda: dict.fromkeys(PARTS, 1.0))
    multiplier_cov: tuple[tuple[float, ...], ...] = ()
    resid_std_bps: float | None = None
    version: str = ""
    created_ns: int = 0
    reason: str = "calibrated on the market day"
    n_obs: int = 0
    status: str = "live"
    use_transient: bool = True
    """Whether the book's transient part is priced (when the day has one): the choice of
    :func:`calibrate_instrument` and of each recalibration (:meth:`recalibrated`), by out-of-sample score."""
    selection: Mapping[str, Any] = field(default_factory=dict)
    """The scores the choice of form was made on (recorded with the version)."""

    # -- the parts --------------------------------------------------------------------------------------

    @property
    def has_transient(self) -> bool:
        return self.fit.ow is not None and self.use_transient

    @property
    def parts(self) -> tuple[str, ...]:
        """The parts priced: spread, transient (the book's; two or more levels, when chosen) and square-root."""
        return PARTS if self.has_transient else ("spread", "sqrt")

    @property
    def sqrt_role(self) -> str:
        """``permanent`` (the order pays I/2, with the book's transient part) or ``total`` (without it)."""
        return "permanent" if self.has_transient else "total"

    @property
    def kind(self) -> str:
        """``spread+ow+sqrt`` or ``spread+sqrt``."""
        return "spread+ow+sqrt" if self.has_transient else "spread+sqrt"

    @cached_property
    def _k(self) -> dict[str, Any]:
        """The constants pricing reads (computed once per version: the decision path is hot)."""
        r = self.fit.sqrt.result_
        p = r.params_dict()
        names = self.parts
        if self.multiplier_cov:
            cov = np.asarray(self.multiplier_cov, float)
        else:  # the day's calibration: how far it may be off for the desk's own orders (the refit's prior)
            cov = np.diag([self.refit_prior_sd(k) ** 2 for k in names])
        out: dict[str, Any] = {
            "Y": float(p["Y"]), "delta": float(p.get("delta", r.fixed.get("delta", 0.5))),
            "sqrt_share": 0.5 if self.sqrt_role == "permanent" else 1.0, "half": float(self.fit.half_spread_bps),
            "cov": cov, "names": names, "resid": self._resid_std_bps(),
            "m": np.array([float(self.multipliers.get(k, 1.0)) for k in names]),
        }  # fmt: skip
        if self.has_transient:
            po = self.fit.ow.result_.params_dict()
            out["kappa"], out["rho"] = float(po["kappa_bps"]), float(po["rho_per_s"])
        return out

    def _sqrt_bps(self, quantity: float, market: MarketContext) -> float:
        k = self._k
        return float(k["sqrt_share"] * k["Y"] * market.daily_vol * 1e4 * (quantity / market.adv) ** k["delta"])

    def _base(self, trades: F64, times: F64, quantity: float, market: MarketContext) -> F64:
        """The parts' costs (bps, multipliers 1) of trading ``trades`` over the intervals ``times``, in the order
        of :attr:`parts`: constant-rate trading within each interval under the book's exponential kernel."""
        from impactlab.schedules import _kernels as K

        k = self._k
        sq = self._sqrt_bps(quantity, market)
        if "kappa" not in k:
            return np.array([k["half"], sq])
        quad = K.exp_interval_quadratic(trades, times[:-1], times[1:], k["rho"])
        return np.array([k["half"], 0.5 * k["kappa"] * quad / quantity, sq])

    def base_parts(self, schedule: Schedule, market: MarketContext) -> dict[str, float]:
        """Each part's cost of ``schedule`` in bps at the day's calibration (multipliers 1)."""
        if schedule.time_unit != "s":
            raise CalibrationError(f"an instrument model prices schedules in seconds, got {schedule.time_unit!r}")
        b = self._base(schedule.trades, schedule.times, schedule.quantity, market)
        return {name: float(v) for name, v in zip(self.parts, b, strict=True)}

    def _impact_var(self, base: Mapping[str, float] | F64) -> float:
        """Variance of the impact forecast: the multipliers' uncertainty plus the residual scatter."""
        k = self._k
        x = base if isinstance(base, np.ndarray) else np.array([base.get(n, 0.0) for n in k["names"]])
        return float(x @ k["cov"] @ x) + float(k["resid"]) ** 2

    def _resid_std_bps(self) -> float:
        if self.resid_std_bps is not None:
            return float(self.resid_std_bps)
        # the day's fit: the square-root law's residual sd on its bars, for the part it prices
        s = float(self.fit.sqrt.resid_std_bps_)
        return 0.5 * s if self.sqrt_role == "permanent" else s

    def prior_sd(self, part: str) -> float:
        """A part's parameter uncertainty in the day's own fit, as a multiplier's sd: the square-root law's
        relative standard error of Y (at least 5%); the book's parts are measured and carry none."""
        if part != "sqrt":
            return 0.0
        r = self.fit.sqrt.result_
        y = r.params_dict()["Y"]
        se = float(r.stderr_dict().get("Y", 0.0)) if np.size(r.cov) else 0.0
        return float(min(max(se / abs(y), 0.05), 1.0)) if y else 1.0

    def refit_prior_sd(self, part: str) -> float:
        """How far the day's calibration of a part may be off for the desk's own orders, as a multiplier's sd:
        the prior of a refit, and the parameter uncertainty the first version's interval carries.  Wide (a
        desk's fills may pay twice the day's spread, or half its book impact): 1 for the half-spread and the
        transient part, the square-root law's own relative standard error but at least 0.5."""
        return max(self.prior_sd(part), 0.5) if part == "sqrt" else _PRIOR_SD[part]

    # -- the cost-model interface ---------------------------------------------------------------------

    def schedule_cost(self, schedule: Schedule, market: MarketContext | None = None) -> ScheduleCost:
        """Temporary, permanent and total cost of ``schedule`` in bps of the arrival price, with the impact
        forecast's sd (parameters and residual scatter), the timing risk, 5/50/95% quantiles and the part
        of it that does not depend on the horizon (``ScheduleCost.horizon_free``)."""
        mk = market if market is not None else self.markets[schedule.side]
        if schedule.time_unit != "s":
            raise CalibrationError(f"an instrument model prices schedules in seconds, got {schedule.time_unit!r}")
        return self._price(schedule.trades, schedule.times, schedule.holdings, schedule.quantity, mk)

    def profile(self, quantity: float, horizons_s: Sequence[float], step_s: float, risk_aversion: float,
                market: MarketContext, *, gamma_shares_per_unit: float = 0.0, compiled: bool = True
                ) -> tuple[F64, F64, F64, F64]:  # fmt: skip
        """For each horizon, the trajectory at λ of the problem :meth:`linearised` at the order's TWAP, priced
        by this model: ``(cost in currency, variance in currency² (with the gamma term), cost bps, sd bps)``,
        in one compiled pass (``compiled=False``: the Python twin)."""
        from impactlab.calibration import _costkernels as CK

        k = self._k
        h = np.asarray(horizons_s, float)
        out = [np.empty(h.size) for _ in range(4)]
        fn = CK.profile if compiled else CK.profile_py
        fn(float(quantity), h, float(step_s), float(risk_aversion), float(market.start_s), float(market.price),
           float(market.daily_vol), float(market.adv), float(market.session_s), k["half"], k.get("kappa", -1.0),
           k.get("rho", 1.0), k["sqrt_share"] * k["Y"], k["delta"], k["m"], k["cov"], float(k["resid"]),
           float(gamma_shares_per_unit), *out)  # fmt: skip
        return out[0], out[1], out[2], out[3]

    def price_holdings(self, times: F64, holdings: F64, market: MarketContext) -> ScheduleCost:
        """:meth:`schedule_cost` of the trajectory ``holdings`` at ``times`` (seconds) without building a
        :class:`~impactlab.schedules.Schedule` (the hedging engine's profile prices several per decision)."""
        x = np.asarray(holdings, float)
        return self._price(x[:-1] - x[1:], np.asarray(times, float), x, float(x[0]), market)

    def _price(self, trades: F64, times: F64, holdings: F64, quantity: float,
               mk: MarketContext) -> ScheduleCost:  # fmt: skip
        k = self._k
        base = self._base(trades, times, quantity, mk)
        vals = k["m"] * base
        cost = dict(zip(k["names"], map(float, vals), strict=True))
        if "kappa" in k:
            temp, perm = cost["spread"] + cost["transient"], cost["sqrt"]
        else:
            temp, perm = cost["spread"] + cost["sqrt"], 0.0
        total = temp + perm
        impact_sd = math.sqrt(self._impact_var(base))
        sig = mk.daily_vol * 1e4 / math.sqrt(mk.session_s)
        timing = sig * math.sqrt(float(np.dot(np.diff(times), holdings[1:] ** 2))) / quantity if quantity else 0.0
        sd = math.hypot(impact_sd, timing)
        qs = {p: total + z * sd for p, z in _QZ.items()}
        return ScheduleCost(
            temp, perm, total, "bps", impact_sd, timing, qs, self.label, (),
            horizon_free=sum(v for k, v in cost.items() if HORIZON_FREE[k]), parts=cost,
        )  # fmt: skip

    @property
    def label(self) -> str:
        return {"spread+ow+sqrt": "half spread + OW transient + square-root permanent",
                "spread+sqrt": "half spread + square-root law"}.get(self.kind, self.kind)  # fmt: skip

    def horizon_dependent(self) -> bool:
        """Whether any part's cost depends on the horizon or the rate (False: a horizon cannot be chosen by
        this model's cost)."""
        return any(not HORIZON_FREE[k] for k in self.parts)

    def market(self, side: int) -> MarketContext:
        return self.markets[side]

    def market_at(
        self, side: int, *, mid: float, spread: float | None = None, ts_ns: int | None = None
    ) -> MarketContext:
        """The arrival market moved to a live quote: price, spread and (with ``ts_ns``) the time of day."""
        mk = self.markets[side]
        changes: dict[str, Any] = {"price": float(mid)}
        if spread is not None and spread > 0:
            changes["spread_bps"] = float(spread / mid * 1e4)
        if ts_ns is not None and self.day is not None:
            t = (ts_ns - int(self.day.start_ns)) / 1e9
            if 0 <= t < mk.session_s:
                changes["start_s"] = t
        return replace(mk, **changes)

    def sigma(self, market: MarketContext) -> float:
        """Price volatility per √s (currency per share): the market's daily volatility over its session."""
        return market.daily_vol * market.price / math.sqrt(market.session_s)

    def linearised(
        self, quantity: float, horizon_s: float, n_steps: int, side: int, market: MarketContext | None = None
    ) -> AlmgrenChriss:
        """The Almgren–Chriss problem (linear impact, in seconds) that matches this model on the order's own
        TWAP: ε = the horizon-free temporary cost per share, η such that a TWAP over ``horizon_s`` pays this
        model's rate-dependent temporary cost, γ such that ½γX² is its permanent cost; σ the market's.  Used
        where a linear model is needed (trajectories, the frontier's shape); its schedules are priced by
        :meth:`schedule_cost`."""
        mk = market if market is not None else self.markets[side]
        n = max(int(n_steps), 1)
        times = mk.start_s + np.arange(n + 1, dtype=np.float64) * (horizon_s / n)
        k = self._k
        part = dict(zip(k["names"], k["m"] * self._base(np.full(n, quantity / n), times, quantity, mk), strict=True))
        usd = quantity * mk.price / 1e4
        permanent = part["sqrt"] if "kappa" in k else 0.0
        fixed_temp = part["spread"] + (0.0 if "kappa" in k else part["sqrt"])
        rate_temp = max(part.get("transient", 0.0), 0.0)
        eps = fixed_temp * usd / quantity
        gamma = 2.0 * permanent * usd / quantity**2
        tau = horizon_s / n
        # TWAP's linear temporary cost is η̃ X²/T with η̃ = η − γτ/2
        eta = rate_temp * usd * horizon_s / quantity**2 + 0.5 * gamma * tau
        eta = max(eta, 0.5 * gamma * tau + 1e-12 * mk.price, 1e-12)
        return AlmgrenChriss(quantity=quantity, horizon=horizon_s, n_steps=n, sigma=self.sigma(mk), eta=eta,
                             gamma=gamma, epsilon=eps, side=side, time_unit="s")  # fmt: skip

    def notional(self, quantity: float, market: MarketContext) -> float:
        return float(self.spec.notional(quantity, market.price)) if self.spec is not None else quantity * market.price

    def estimate(self, side: int, quantity: float, horizon_s: float, threshold_bps: float) -> dict[str, Any]:
        """The cost of working ``quantity`` by VWAP over ``horizon_s`` from arrival (the service's estimate and
        the pre-trade report's cost curve): parts, total, sd, quantiles and P(cost > threshold)."""
        from impactlab.schedules.pretrade import _part

        mk = self.markets[side]
        s = self.vwap(side, quantity, horizon_s)
        c = self.schedule_cost(s, mk)
        notional = self.notional(quantity, mk)
        return {
            "symbol": self.symbol, "side": "buy" if side > 0 else "sell", "quantity": quantity,
            "horizon_s": horizon_s, "temporary_bps": c.temporary, "permanent_bps": c.permanent,
            "total_bps": c.total, "std_bps": c.std, "total_usd": c.total * notional / 1e4, "notional": notional,
            "currency": getattr(self.spec, "quote_currency", "USD"), "arrival_price": float(mk.price),
            "participation": _part(s), "quantiles_bps": {f"{p:g}": v for p, v in c.quantiles.items()},
            "threshold_bps": threshold_bps, "prob_exceeds": c.prob_exceeds(threshold_bps),
            "horizon_free_bps": c.horizon_free, "parts_bps": dict(c.parts),
            "model": self.label, "model_version": self.version, "extrapolated_features": [],
        }  # fmt: skip

    def vwap(self, side: int, quantity: float, horizon_s: float) -> Schedule:
        """The VWAP schedule from arrival over ``horizon_s`` on the market's volume curve, in one-minute steps
        (10 to 390 of them): what the estimate and the pre-trade cost curve price."""
        from impactlab.schedules.pretrade import _steps
        from impactlab.schedules.volume import vwap

        mk = self.markets[side]
        return vwap(quantity, horizon_s, curve=mk.volume_curve, daily_volume=mk.adv, step_s=_steps(horizon_s),
                    start_s=mk.start_s, side=side)  # fmt: skip

    def forecast(self, schedule: Schedule, market: MarketContext | None = None, *,
                 cost: ScheduleCost | None = None) -> dict[str, Any]:  # fmt: skip
        """What a parent order or hedge records before it trades: the version, the total and temporary cost,
        the 90% interval, and the day-calibrated parts and timing sd a refit reads (bps); ``cost`` is this
        model's price of ``schedule`` where the caller has it."""
        mk = market if market is not None else self.markets[schedule.side]
        c = cost if cost is not None else self.schedule_cost(schedule, mk)
        base = self.base_parts(schedule, mk)
        raw = {"spread": float(self.fit.half_spread_bps), "sqrt_full": self._sqrt_bps(schedule.quantity, mk)
               / self._k["sqrt_share"]}  # fmt: skip
        if self.fit.ow is not None:  # recorded whether priced or not: a later refit may choose either form
            from impactlab.schedules import _kernels as K

            rho = float(self.fit.ow.result_.params_dict()["rho_per_s"])
            kappa = float(self.fit.ow.result_.params_dict()["kappa_bps"])
            t = schedule.times
            raw["transient"] = (
                0.5 * kappa * K.exp_interval_quadratic(schedule.trades, t[:-1], t[1:], rho) / schedule.quantity
            )
        return {
            "version": self.version, "symbol": self.symbol, "predicted_bps": c.total,
            "predicted_temporary_bps": c.temporary, "lower_bps": c.total - Z90 * c.std,
            "upper_bps": c.total + Z90 * c.std,
            "parts_json": json.dumps({"base": base, "raw": raw, "timing_sd_bps": c.timing_std}, allow_nan=False),
        }  # fmt: skip

    # -- recalibration --------------------------------------------------------------------------------

    def refit(self, rows: Sequence[Mapping[str, Any]], *, window: int = 500) -> Refit:
        """Re-estimate every part's multiplier from own orders (``cost_predictions`` rows with ``parts_json``
        and ``realised_bps``; the latest ``window``), combined with the day's calibration as the prior.

        Weighted least squares with a Gaussian prior: ``m = (P₀⁻¹ + XᵀWX)⁻¹(P₀⁻¹·1 + XᵀWy)`` with X the
        parts' day-calibrated costs, y the realised cost, ``W = 1/(timing_sd² + s²)``; the scatter s is
        re-estimated from the weighted residuals (two passes).  Raises
        :class:`~impactlab.errors.CalibrationError` with fewer than 2 usable orders.
        """
        names = self.parts
        X, y, t = [], [], []
        for r in list(rows)[-window:]:
            try:
                doc = json.loads(r.get("parts_json") or "")
                real = float(r["realised_bps"])
            except (TypeError, ValueError, KeyError):
                continue
            base = self._design(doc)
            if base is None or not math.isfinite(real):
                continue
            X.append([float(base[k]) for k in names])
            y.append(real)
            t.append(float(doc.get("timing_sd_bps", 0.0)))
        if len(y) < 2:
            raise CalibrationError(
                f"{self.symbol}: a refit needs at least 2 own orders with realised costs, got {len(y)}"
            )
        Xa, ya, ta = np.array(X), np.array(y), np.array(t)
        p0 = np.diag([1.0 / self.refit_prior_sd(k) ** 2 for k in names])
        s2 = self._resid_std_bps() ** 2
        mean = np.ones(len(names))
        cov = np.linalg.inv(p0)
        for _ in range(3):
            w = 1.0 / (ta**2 + max(s2, 1e-6))
            a = p0 + Xa.T @ (Xa * w[:, None])
            cov = np.linalg.inv(a)
            mean = cov @ (p0 @ np.ones(len(names)) + Xa.T @ (w * ya))
            mean = np.clip(mean, 0.05, 20.0)
            r2 = (ya - Xa @ mean) ** 2 - ta**2
            s2 = float(max(np.mean(r2), (0.05 * np.mean(np.abs(Xa @ mean))) ** 2))
        se = np.sqrt(np.diag(cov))
        return Refit(dict(zip(names, map(float, mean), strict=True)), dict(zip(names, map(float, se), strict=True)),
                     tuple(tuple(map(float, row)) for row in cov), math.sqrt(s2), len(ya), names)  # fmt: skip

    def _design(self, doc: Mapping[str, Any]) -> dict[str, float] | None:
        """A recorded forecast's parts in this form's terms: from the raw parts where they were recorded (the
        square-root law's whole and the book's transient cost, whichever form priced the order), else the
        parts as priced (only when that form is this one)."""
        raw = doc.get("raw")
        if isinstance(raw, Mapping) and "spread" in raw and "sqrt_full" in raw:
            if self.has_transient and "transient" not in raw:
                return None
            out = {"spread": float(raw["spread"]), "sqrt": float(raw["sqrt_full"]) * self._k["sqrt_share"]}
            if self.has_transient:
                out["transient"] = float(raw["transient"])
            return out
        base = doc.get("base", {})
        if not isinstance(base, Mapping) or set(base) != set(self.parts):
            return None
        return {k: float(base[k]) for k in self.parts}

    def variant(self, use_transient: bool) -> InstrumentModel:
        """The day's calibration in the other form (with or without the book's transient part), unversioned
        and unrefitted."""
        return replace(self, use_transient=use_transient, multipliers=dict.fromkeys(PARTS, 1.0), multiplier_cov=(),
                       resid_std_bps=None, version="", n_obs=0, selection={})  # fmt: skip

    def walk_forward(self, rows: Sequence[Mapping[str, Any]], *, start: int = 5) -> dict[str, Any]:
        """Out-of-sample score on own orders: each order from the ``start``-th on predicted by this form refitted
        on the orders before it.  Returns the mean absolute error (bps), the median |log(realised / predicted)|
        (where both are positive) and the 90% coverage, with the count."""
        err, logs, inside = [], [], []
        rows = list(rows)
        for k in range(start, len(rows)):
            try:
                doc = json.loads(rows[k].get("parts_json") or "")
                real = float(rows[k]["realised_bps"])
                m = self.with_refit(self.refit(rows[:k]), reason="")
            except (TypeError, ValueError, KeyError, CalibrationError):
                continue
            x = m._design(doc)
            if x is None or not math.isfinite(real):
                continue
            xv = np.array([x[n] for n in m.parts])
            pred = float(m._k["m"] @ xv)
            sd = math.sqrt(m._impact_var(xv) + float(doc.get("timing_sd_bps", 0.0)) ** 2)
            err.append(abs(real - pred))
            inside.append(abs(real - pred) <= Z90 * sd)
            if real > 0 and pred > 0:
                logs.append(abs(math.log(real / pred)))
        if not err:
            return {"n": 0}
        return {"n": len(err), "mae_bps": float(np.mean(err)), "coverage_90": float(np.mean(inside)),
                "median_abs_log_ratio": float(np.median(logs)) if logs else None}  # fmt: skip

    def recalibrated(
        self, rows: Sequence[Mapping[str, Any]], *, reason: str, min_orders: int = 10, score_window: int = 200
    ) -> InstrumentModel:
        """The next version from own orders: the form (with or without the book's transient part) chosen by
        :meth:`walk_forward` score (mean absolute error, over the latest ``score_window``) once there are
        ``min_orders`` of them and the day has both forms, then refitted on all of them (:meth:`refit`); the
        scores go into the reason and the version's record."""
        forms = [self]
        selection: dict[str, Any] = dict(self.selection)
        if self.fit.ow is not None and len(rows) >= min_orders:
            forms = [self.variant(True), self.variant(False)]
            recent = list(rows)[-score_window:]  # each step refits on the orders before it: O(n²) in the window
            scores = {f.kind: f.walk_forward(recent) for f in forms}
            ok = [f for f in forms if scores[f.kind].get("n", 0) > 0]
            if ok:
                best = min(ok, key=lambda f: scores[f.kind]["mae_bps"])
                forms = [best]
                selection = {"on": f"walk-forward over the latest {len(recent)} own orders", "scores": scores,
                             "chosen": best.kind}  # fmt: skip
                if best.kind != self.kind:
                    reason += f"; form {self.kind} -> {best.kind} by walk-forward MAE"
        m = forms[0]
        fit = m.refit(rows)
        mult = ", ".join(f"{k} × {v:.2f} (se {fit.std_errors[k]:.2f})" for k, v in fit.multipliers.items())
        return replace(m.with_refit(fit, reason=f"{reason}: {mult}; scatter {fit.resid_std_bps:.2f} bps; "
                                    f"{fit.n_obs} orders"), selection=selection)  # fmt: skip

    def with_refit(self, fit: Refit, *, reason: str) -> InstrumentModel:
        """This model with a refit's multipliers, their covariance and scatter (unversioned)."""
        return replace(self, multipliers={**dict.fromkeys(PARTS, 1.0), **fit.multipliers}, multiplier_cov=fit.cov,
                       resid_std_bps=fit.resid_std_bps, reason=reason, n_obs=fit.n_obs, version="")  # fmt: skip

    def reference_cost_bps(self, *, fraction_of_adv: float = 0.005, horizon_s: float = 1800.0) -> float:
        """Predicted cost of the reference order (a buy of 0.5% of ADV by VWAP over 30 minutes)."""
        mk = self.markets[1]
        return float(self.estimate(1, fraction_of_adv * mk.adv, min(horizon_s, 0.5 * mk.session_s), 0.0)["total_bps"])

    def reference_costs_bps(self) -> dict[str, float]:
        """Predicted costs of the reference orders approval compares between versions: a small order (0.05% of
        ADV over 5 minutes), the reference order (0.5% over 30 minutes) and a large one (5% over 2 hours),
        each a buy by VWAP (horizons capped at half the session)."""
        orders = (("small", 0.0005, 300.0), ("reference", 0.005, 1800.0), ("large", 0.05, 7200.0))
        return {name: self.reference_cost_bps(fraction_of_adv=f, horizon_s=h) for name, f, h in orders}

    def params(self) -> dict[str, Any]:
        """The version's parameters (JSON): the day's calibration it rests on and the fitted multipliers."""
        d = self.fit.describe()
        return {
            "symbol": self.symbol, "source": self.source, "kind": self.kind,
            "calibration": {k: v for k, v in d.items() if isinstance(v, int | float | str)},
            "multipliers": dict(self.multipliers), "multiplier_cov": [list(r) for r in self.multiplier_cov],
            "resid_std_bps": self.resid_std_bps, "use_transient": self.use_transient,
            "selection": dict(self.selection),
        }  # fmt: skip

    def restored(self, row: Mapping[str, Any]) -> InstrumentModel:
        """This (day-calibrated) model at the version recorded in ``row`` of the version table."""
        p = json.loads(row["params_json"])
        return replace(
            self, multipliers={**dict.fromkeys(PARTS, 1.0), **p.get("multipliers", {})},
            multiplier_cov=tuple(tuple(r) for r in p.get("multiplier_cov", [])), resid_std_bps=p.get("resid_std_bps"),
            version=row["version"], created_ns=int(row["created_ns"]), reason=row["reason"], n_obs=int(row["n_obs"]),
            status=row.get("status") or "live", use_transient=bool(p.get("use_transient", True)),
            selection=p.get("selection", self.selection),
        )  # fmt: skip


def calibrate_instrument(
    day: Any, *, start_s: float | None = None, volume_days: Sequence[Any] = (), select: bool = True
) -> InstrumentModel:
    """The instrument's cost model calibrated on a market day of any source and depth (unversioned): the
    book's fit where it has two or more levels, the square-root law on its bars, the market at arrival
    (``start_s`` seconds after the start of the data; default half an hour, or a tenth of a short capture).

    With ``select`` the form is chosen by out-of-sample score: the book's transient part is priced only if
    its Obizhaeva–Wang fit predicts the near quote's path after the day's orders better, walk-forward over
    five blocks, than no transient move at all; both scores are kept in :attr:`InstrumentModel.selection`.
    """
    from impactlab.calibration.pretrade import book_cost_model, market_context

    fit = book_cost_model(day)
    start = min(1800.0, 0.1 * day.session_s) if start_s is None else float(start_s)
    markets = {s: market_context(day, start_s=start, side=s, volume_days=volume_days) for s in (1, -1)}
    use = True
    selection: dict[str, Any] = {}
    if fit.ow is None:
        selection = {"chosen": "spread+sqrt", "on": "the data: " + "; ".join(fit.notes)}
    elif select:
        from impactlab.calibration.resilience import depth_profile, evaluate_ow_book, resilience_events

        try:
            r = evaluate_ow_book(depth_profile(day), resilience_events(day))
            ow, zero = r["out_of_sample"], r["out_of_sample_no_transient"]
            use = bool(ow["rmse_bps"] < zero["rmse_bps"])
            selection = {
                "on": "the near quote's move after the day's orders, walk-forward over 5 blocks",
                "scores": {"spread+ow+sqrt": {"oos_rmse_bps": ow["rmse_bps"], "oos_r2": ow["r2"], "n": ow["n"]},
                           "spread+sqrt": {"oos_rmse_bps": zero["rmse_bps"], "n": zero["n"]}},
                "chosen": "spread+ow+sqrt" if use else "spread+sqrt",
            }  # fmt: skip
        except Exception as exc:  # the book's fit stands, unscored: say so
            selection = {"chosen": "spread+ow+sqrt", "on": f"not scored ({type(exc).__name__}: {exc})"}
    return InstrumentModel(day.symbol, f"{day.label} ({day.source})", fit, markets, day.spec, day,
                           use_transient=use, selection=selection)  # fmt: skip


# -- versions ------------------------------------------------------------------------------------------


class ModelVersions:
    """The version table of every instrument's model (``model_versions``), one mechanism for all.

    A version is written before it is used.  ``live`` is the latest version made live (at its recording or
    by approval); ``pending`` versions wait for :meth:`approve` or :meth:`reject`.
    """

    def __init__(self, store: Any, *, clock: Any = None, approve_above: float = 0.5) -> None:
        import time

        self.store = store
        self.clock = clock or time.time_ns
        if not (approve_above > 0):
            raise CalibrationError(f"'approve_above' must be > 0, got {approve_above!r}")
        self.approve_above = float(approve_above)

    def rows(self, symbol: str | None = None) -> list[dict[str, Any]]:
        """Every version (oldest first); rows of older releases without a symbol are left out."""
        where, params = ("symbol = ?", [symbol]) if symbol is not None else ("symbol IS NOT NULL", [])
        rows = self.store.read("model_versions", where=where, params=params).to_pylist()
        return sorted(rows, key=lambda r: (r["created_ns"], r["version"]))

    def live_row(self, symbol: str) -> dict[str, Any] | None:
        live = [r for r in self.rows(symbol) if r.get("status") == "live"]
        return max(live, key=lambda r: (r.get("activated_ns") or r["created_ns"], r["version"])) if live else None

    def resume(self, model: InstrumentModel) -> InstrumentModel:
        """The live version of ``model``'s instrument from the store, or ``model`` recorded as its first."""
        row = self.live_row(model.symbol)
        if row is not None:
            return model.restored(row)
        return self._record(model, status="live", reason=model.reason)

    def _record(self, model: InstrumentModel, *, status: str, reason: str) -> InstrumentModel:
        from impactlab.data.schemas import MODEL_VERSIONS

        n = len(self.rows(model.symbol)) + 1
        now = int(self.clock())
        version = f"{model.symbol}-v{n}"
        while self.store.read("model_versions", where="version = ?", params=[version]).num_rows:
            n += 1
            version = f"{model.symbol}-v{n}"
        m = replace(model, version=version, created_ns=now, reason=reason, status=status)
        row = {"version": version, "created_ns": now, "params_json": json.dumps(m.params(), allow_nan=False),
               "reason": reason, "n_obs": int(m.n_obs), "symbol": m.symbol, "status": status,
               "activated_ns": now if status == "live" else None,
               "reference_bps": m.reference_cost_bps()}  # fmt: skip
        self.store.write("model_versions", pa.Table.from_pylist([row], schema=MODEL_VERSIONS.remove_metadata()))
        return m

    def pending_row(self, symbol: str) -> dict[str, Any] | None:
        """The version of ``symbol`` waiting for a decision, if any."""
        rows = [r for r in self.rows(symbol) if r.get("status") == "pending"]
        return rows[-1] if rows else None

    def propose(self, live: InstrumentModel, new: InstrumentModel) -> InstrumentModel:
        """Record ``new``: live at once when its cost of every reference order
        (:meth:`InstrumentModel.reference_costs_bps`) is within the fraction ``approve_above`` of ``live``'s
        (logged), else ``pending`` (``live`` stays in use; the caller keeps it).  Returns the recorded
        version."""
        old, now = live.reference_costs_bps(), new.reference_costs_bps()
        moves = {k: (now[k] / old[k] - 1.0) if old[k] > 0 else math.inf for k in old}
        change = max(abs(v) for v in moves.values())
        status = "live" if change <= self.approve_above else "pending"
        reason = f"{new.reason}; reference orders " + ", ".join(
            f"{k} {old[k]:.2f} -> {now[k]:.2f} bps ({moves[k]:+.0%})" for k in old
        )
        rec = self._record(new, status=status, reason=reason)
        if status == "pending":
            log.warning("model %s held for approval: the reference order moves %.0f%% (limit %.0f%%)", rec.version,
                        100 * change, 100 * self.approve_above)  # fmt: skip
        else:
            log.info("model %s live: %s", rec.version, reason)
        return rec

    def approve(self, version: str, *, by: str = "") -> dict[str, Any]:
        """Make a pending version live; returns its row."""
        row = self._row(version)
        if row["status"] != "pending":
            raise CalibrationError(f"model version {version!r} is {row['status']}, not pending")
        now = int(self.clock())
        self.store.update("model_versions", version, status="live", activated_ns=now,
                          reason=row["reason"] + f"; approved{' by ' + by if by else ''}")  # fmt: skip
        log.warning("model %s approved%s", version, f" by {by}" if by else "")
        return self._row(version)

    def reject(self, version: str, *, by: str = "") -> dict[str, Any]:
        row = self._row(version)
        if row["status"] != "pending":
            raise CalibrationError(f"model version {version!r} is {row['status']}, not pending")
        self.store.update("model_versions", version, status="rejected",
                          reason=row["reason"] + f"; rejected{' by ' + by if by else ''}")  # fmt: skip
        return self._row(version)

    def _row(self, version: str) -> dict[str, Any]:
        t = self.store.read("model_versions", where="version = ?", params=[version]).to_pylist()
        if not t or t[0].get("symbol") is None:
            known = [r["version"] for r in self.rows()]
            raise CalibrationError(f"no model version {version!r} in the store (it has {known[-10:]})")
        return dict(t[0])

    def listing(self) -> list[dict[str, Any]]:
        """Every version with its status as seen now (``live``, ``superseded``, ``pending``, ``rejected``)."""
        out = []
        rows = self.rows()
        live = {s: self.live_row(s) for s in {r["symbol"] for r in rows}}
        for r in rows:
            status = r["status"]
            cur = live[r["symbol"]]
            if status == "live" and cur is not None and cur["version"] != r["version"]:
                status = "superseded"
            out.append({**{k: r[k] for k in ("version", "symbol", "created_ns", "reason", "n_obs", "reference_bps")},
                        "status": status, "params": json.loads(r["params_json"])})  # fmt: skip
        return out


# -- accuracy -----------------------------------------------------------------------------------------


def accuracy(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per model version, on the orders it priced: median |log(realised / predicted)| (orders with both
    positive), the bias (mean realised − predicted, bps), the coverage of the 90% interval, and counts."""
    by: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        if r.get("realised_bps") is None or r.get("predicted_bps") is None:
            continue
        by.setdefault(str(r["model"]), []).append(r)
    out = []
    for model, rs in sorted(by.items()):
        p = np.array([float(r["predicted_bps"]) for r in rs])
        y = np.array([float(r["realised_bps"]) for r in rs])
        pos = (p > 0) & (y > 0)
        lo = np.array([np.nan if r.get("lower_bps") is None else float(r["lower_bps"]) for r in rs])
        hi = np.array([np.nan if r.get("upper_bps") is None else float(r["upper_bps"]) for r in rs])
        has = np.isfinite(lo) & np.isfinite(hi)
        out.append({
            "model_version": model, "orders": len(rs),
            "median_abs_log_ratio": float(np.median(np.abs(np.log(y[pos] / p[pos])))) if pos.any() else None,
            "median_ratio": float(np.exp(np.median(np.log(y[pos] / p[pos])))) if pos.any() else None,
            "orders_with_positive_costs": int(pos.sum()),
            "bias_bps": float(np.mean(y - p)), "mean_predicted_bps": float(p.mean()),
            "mean_realised_bps": float(y.mean()),
            "coverage_90": float(np.mean((y[has] >= lo[has]) & (y[has] <= hi[has]))) if has.any() else None,
            "orders_with_interval": int(has.sum()),
        })  # fmt: skip
    return out
