"""How the hedging engine prices a hedge: the instrument's calibrated cost model
(:class:`~impactlab.calibration.InstrumentModel`, the same object the pre-trade report and the service use),
over candidate horizons, with the risk of the exposure left open while the hedge works.

Each candidate is the Almgren–Chriss trajectory of the problem linearised from the model at the hedge's own
size and horizon (:meth:`~impactlab.calibration.InstrumentModel.linearised`), priced by the model itself:
the half-spread, the book's transient impact at the trajectory's rates and the square-root law's
permanent move.  Its cost in currency is the model's bps of the hedge's value at the decision mid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from impactlab.schedules import MarketContext, Schedule, ScheduleCost

__all__ = ["CostProfile", "cost_profile", "gamma_risk_usd2", "hedge_schedule"]


@dataclass(frozen=True)
class CostProfile:
    """Expected cost and risk of hedging ``quantity`` shares over each candidate horizon (the trajectory at
    risk aversion λ).  ``cost_usd``: expected execution cost; ``risk_usd2``: variance of the P&L of the
    exposure left unhedged while the hedge works: the hedge's own remainder, σ²τΣx_k², plus the delta the
    book's gamma Γ makes meanwhile (the engine does not re-hedge during a hedge), ½Γ²σ⁴T².  ``cost_bps``
    and ``std_bps`` are the model's forecast of each (the same numbers as the pre-trade report's)."""

    quantity: float
    horizons_s: tuple[float, ...]
    cost_usd: tuple[float, ...]
    risk_usd2: tuple[float, ...]
    risk_aversion: float
    model_version: str
    cost_bps: tuple[float, ...] = ()
    std_bps: tuple[float, ...] = ()

    def objective(self) -> list[float]:
        return [c + self.risk_aversion * v for c, v in zip(self.cost_usd, self.risk_usd2, strict=True)]

    def best(self) -> int:
        """Index of the horizon with the least expected cost + λ · risk."""
        obj = self.objective()
        return int(min(range(len(obj)), key=obj.__getitem__))


def gamma_risk_usd2(sigma: float, gamma_shares_per_unit: float, horizon_s: float) -> float:
    """Variance of the P&L of the delta a book with gamma Γ builds over ``horizon_s`` while nobody hedges it:
    ``E[(∫ΓΔS dS)²] = Γ²σ⁴T²/2`` (σ per √s in currency)."""
    return 0.5 * gamma_shares_per_unit**2 * sigma**4 * horizon_s**2


def hedge_schedule(
    model: Any, policy: str, quantity: float, horizon_s: float, step_s: float, side: int, risk_aversion: float,
    market: MarketContext,
) -> tuple[Schedule, ScheduleCost, float, float]:  # fmt: skip
    """The schedule a policy trades and what it costs under ``model``: ``(schedule, cost in bps, expected
    cost in currency, variance in currency²)``.  ``almgren-chriss``: the trajectory at λ of the problem
    linearised from the model; otherwise even slices (one slice: immediate)."""
    n = max(1, round(horizon_s / max(min(step_s, horizon_s), 1e-9)))
    ac = model.linearised(quantity, horizon_s, n, side, market)
    sch = ac.solve(risk_aversion) if policy == "almgren-chriss" and ac.n_steps > 1 else ac.twap()
    c = model.schedule_cost(sch, market)
    usd = float(c.total) * quantity * market.price / 1e4
    return sch, c, usd, sch.variance(model.sigma(market))


def cost_profile(
    model: Any,
    quantity: float,
    side: int,
    horizons_s: tuple[float, ...],
    step_s: float,
    risk_aversion: float,
    *,
    market: MarketContext,
    gamma_shares_per_unit: float = 0.0,
) -> CostProfile:
    """The :class:`CostProfile` of a hedge under ``model`` for a book with gamma ``gamma_shares_per_unit``.

    ``E[(∫(x + ΓΔS) dS)²] = σ²∫x² dt + Γ²σ⁴T²/2``: the cross term has zero mean (an odd moment of the
    price move), so the gamma term adds to the schedule's own variance."""
    if getattr(model, "profile", None) is not None:  # the instrument model: one compiled pass over the horizons
        c, v, b, s = model.profile(quantity, horizons_s, step_s, risk_aversion, market,
                                   gamma_shares_per_unit=gamma_shares_per_unit)  # fmt: skip
        return CostProfile(quantity, tuple(horizons_s), tuple(map(float, c)), tuple(map(float, v)), risk_aversion,
                           model.version, tuple(map(float, b)), tuple(map(float, s)))  # fmt: skip
    cost, risk, bps, sd = [], [], [], []
    sigma = model.sigma(market)
    for h in horizons_s:
        n = max(1, round(h / max(min(step_s, h), 1e-9)))
        ac = model.linearised(quantity, h, n, side, market)
        x = ac.trajectory(risk_aversion) if n > 1 else np.array([quantity, 0.0])
        t = ac.times()
        c = model.price_holdings(t, x, market)
        cost.append(float(c.total) * quantity * market.price / 1e4)
        risk.append(sigma**2 * float(np.dot(np.diff(t), x[1:] ** 2)) + gamma_risk_usd2(sigma, gamma_shares_per_unit, h))
        bps.append(float(c.total))
        sd.append(float(c.std))
    return CostProfile(quantity, tuple(horizons_s), tuple(cost), tuple(risk), risk_aversion, model.version,
                       tuple(bps), tuple(sd))  # fmt: skip
