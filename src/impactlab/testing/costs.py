"""A cost model with known parameters, without a market day: for tests of everything that prices with an
:class:`~impactlab.calibration.InstrumentModel` (the hedging engine, the service, schedules)."""

from __future__ import annotations

import numpy as np

from impactlab.calibration.costmodel import InstrumentModel
from impactlab.calibration.pretrade import BookCostModel, prior_square_root
from impactlab.impact.obizhaeva_wang import ObizhaevaWangImpact
from impactlab.impact.results import ImpactResult
from impactlab.schedules import CombinedCost, MarketContext, SpreadCost, VolumeCurve
from impactlab.schedules.volume import SESSION_S

__all__ = ["known_cost_model"]


def known_cost_model(
    symbol: str = "GOOG",
    *,
    price: float = 580.0,
    adv: float = 2_000_000.0,
    daily_vol: float = 0.02,
    half_spread_bps: float = 1.3,
    kappa_bps_per_share: float = 1e-3,
    rho_per_s: float = 0.05,
    sqrt_y: float = 0.7,
    session_s: float = SESSION_S,
    start_s: float = 1_800.0,
) -> InstrumentModel:
    """An instrument model at the given parameters: half-spread, Obizhaeva–Wang transient impact of κ bps per
    share decaying at ρ per second, and a square-root law ``Yσ(Q/V)^½`` whose half the order pays."""
    ow = ObizhaevaWangImpact()
    ow.result_ = ImpactResult("ObizhaevaWangImpact", ("kappa_bps", "rho_per_s", "lambda_bps"),
                              np.array([kappa_bps_per_share, rho_per_s, 0.0]), np.zeros((3, 3)), 0, float("nan"),
                              float("nan"), dof_resid=1, cov_type="known")  # fmt: skip
    ow.resid_std_bps_ = 0.0
    ow.n_features_in_ = len(ow._columns())
    ow.data_fingerprint_, ow.fitted_window_ = "known", None
    sq = prior_square_root()
    cov = np.array([[(0.1 * sqrt_y) ** 2]])
    sq.result_ = ImpactResult("SquareRootImpact", ("Y",), np.array([sqrt_y]), cov, 0, float("nan"), float("nan"),
                              fixed={"delta": 0.5}, dof_resid=1, cov_type="known")  # fmt: skip
    sq.resid_std_bps_ = 1.0
    fit = BookCostModel(_empty(), ow, None, sq, half_spread_bps, ("known parameters",))
    curve = VolumeCurve.uniform(session_s=session_s)
    markets = {s: MarketContext(symbol, price, adv, daily_vol, 2 * half_spread_bps, curve, start_s) for s in (1, -1)}
    return InstrumentModel(symbol, "known parameters", fit, markets, None)


def _empty() -> CombinedCost:
    return CombinedCost((SpreadCost(0.0),))
