"""The impact model the hedging engine prices hedges with, its versions in the store, and recalibration
from the engine's own fills.

A version is an Almgren–Chriss parameter set in seconds (σ, η, γ, ε: :class:`HedgeCostModel`), first
calibrated on a market day (:func:`~impactlab.calibration.pretrade.calibrated_almgren_chriss`).  Recalibration
fits one scale factor ``c`` to the temporary cost of the hedges done (TCA's temporary impact: fills against
the mid when each child was sent, which leaves out most of the price's own moves) by least squares through
the origin, ``measured_i = c · predicted_i`` (with its standard error), and writes a new version with ε and
η scaled by ``c``: the shape of the cost curve is the day's, its level is what the desk's own fills paid.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from impactlab.data import Store
from impactlab.data.schemas import MODEL_VERSIONS
from impactlab.errors import HedgingError
from impactlab.schedules import AlmgrenChriss

__all__ = [
    "CostProfile",
    "HedgeCostModel",
    "ModelRegistry",
    "Recalibration",
    "cost_profile",
    "gamma_risk_usd2",
    "recalibrate",
]


@dataclass(frozen=True)
class HedgeCostModel:
    """Almgren–Chriss impact in seconds: σ ($/share/√s), η ($·s/share²), γ ($/share²), ε ($/share).

    ``version`` names it in the store; every hedge records the version that priced it.
    """

    version: str
    sigma: float
    eta: float
    gamma: float
    epsilon: float
    price: float
    source: str = ""

    def __post_init__(self) -> None:
        for name in ("sigma", "eta", "gamma", "epsilon", "price"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise HedgingError(f"model {self.version!r}: {name!r} must be finite and >= 0, got {v!r}")
        if self.eta <= 0 or self.price <= 0:
            raise HedgingError(f"model {self.version!r}: 'eta' and 'price' must be > 0")

    @classmethod
    def from_day(cls, day: Any, *, version: str = "v1") -> HedgeCostModel:
        """Calibrate on a market day: σ, η, γ from the book (Obizhaeva–Wang fit; with one level, the
        half-spread + square-root law linearised at a 1,000-share, 5-minute hedge), ε half the mean spread."""
        from impactlab.calibration.pretrade import calibrated_almgren_chriss
        from impactlab.features.book import l1_features

        ac = calibrated_almgren_chriss(day, quantity=1_000.0, horizon_s=300.0, n_steps=5)
        spread_bps = float(np.nanmean(l1_features(day)["spread_bps"]))
        price = day.first_mid()
        return cls(version, ac.sigma, ac.eta, ac.gamma, 0.5 * spread_bps * 1e-4 * price, price,
                   f"{day.label} ({day.source})")  # fmt: skip

    def problem(self, quantity: float, horizon_s: float, step_s: float, side: int) -> AlmgrenChriss:
        n = max(1, round(horizon_s / step_s))
        tau = horizon_s / n
        return AlmgrenChriss(
            quantity=quantity, horizon=horizon_s, n_steps=n, sigma=self.sigma, eta=max(self.eta, self.gamma * tau),
            gamma=self.gamma, epsilon=self.epsilon, side=side, time_unit="s",
        )  # fmt: skip

    def scaled(self, factor: float, version: str) -> HedgeCostModel:
        """The same curve with its temporary cost multiplied by ``factor`` (ε and η; σ is the market's and
        the permanent γ the day's)."""
        return replace(self, version=version, eta=self.eta * factor, epsilon=self.epsilon * factor)

    def to_json(self) -> str:
        return json.dumps(asdict(self), allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> HedgeCostModel:
        doc = json.loads(text)
        if not isinstance(doc, dict) or set(doc) != {f for f in cls.__dataclass_fields__}:
            raise HedgingError(f"not a hedge cost model: {text[:80]!r}")
        return cls(**doc)


@dataclass(frozen=True)
class CostProfile:
    """Expected cost and risk of hedging ``quantity`` shares over each candidate horizon (Almgren–Chriss
    optimum at risk aversion λ).  ``cost_usd``: expected execution cost; ``risk_usd2``: variance of the
    P&L of the exposure left unhedged while the hedge works: the hedge's own remainder, σ²τΣx_k², plus the
    delta the book's gamma Γ makes meanwhile (the engine does not re-hedge during a hedge), ½Γ²σ⁴T²."""

    quantity: float
    horizons_s: tuple[float, ...]
    cost_usd: tuple[float, ...]
    risk_usd2: tuple[float, ...]
    risk_aversion: float
    model_version: str

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


def cost_profile(
    model: HedgeCostModel,
    quantity: float,
    side: int,
    horizons_s: tuple[float, ...],
    step_s: float,
    risk_aversion: float,
    *,
    gamma_shares_per_unit: float = 0.0,
) -> CostProfile:
    """The :class:`CostProfile` of a hedge under ``model`` for a book with gamma ``gamma_shares_per_unit``.

    ``E[(∫(x + ΓΔS) dS)²] = σ²∫x² dt + Γ²σ⁴T²/2``: the cross term has zero mean (an odd moment of the
    price move), so the gamma term adds to the schedule's own variance."""
    cost, risk = [], []
    for h in horizons_s:
        e, v = model.problem(quantity, h, min(step_s, h), side).closed_form(risk_aversion)
        cost.append(float(e))
        risk.append(float(v) + gamma_risk_usd2(model.sigma, gamma_shares_per_unit, h))
    return CostProfile(quantity, tuple(horizons_s), tuple(cost), tuple(risk), risk_aversion, model.version)


class ModelRegistry:
    """Model versions in the store (table ``model_versions``): written before they are used."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, model: HedgeCostModel, *, ts_ns: int, reason: str, n_obs: int = 0) -> HedgeCostModel:
        row = {"version": model.version, "created_ns": int(ts_ns), "params_json": model.to_json(), "reason": reason,
               "n_obs": int(n_obs)}  # fmt: skip
        self.store.write("model_versions", pa.Table.from_pylist([row], schema=MODEL_VERSIONS.remove_metadata()))
        return model

    def versions(self) -> list[dict[str, Any]]:
        rows = self.store.read("model_versions").to_pylist()
        return sorted(rows, key=lambda r: (r["created_ns"], r["version"]))

    def latest(self) -> HedgeCostModel | None:
        rows = self.versions()
        return HedgeCostModel.from_json(rows[-1]["params_json"]) if rows else None

    def get(self, version: str) -> HedgeCostModel:
        t = self.store.read("model_versions", where="version = ?", params=[version])
        if not t.num_rows:
            raise HedgingError(f"no model version {version!r} in the store")
        return HedgeCostModel.from_json(t.column("params_json")[0].as_py())


@dataclass(frozen=True)
class Recalibration:
    """A fitted cost scale: ``factor`` (realised / predicted), its standard error, and the hedges used."""

    factor: float
    std_error: float
    n_obs: int
    mean_error_usd: float


def recalibrate(
    predicted_usd: NDArray[np.float64], realised_usd: NDArray[np.float64], *, bounds: tuple[float, float] = (0.2, 5.0)
) -> Recalibration:
    """Least squares through the origin of realised on predicted hedge cost (statsmodels OLS, no constant);
    the factor is clipped to ``bounds`` so one wild hedge cannot zero or explode the model."""
    import statsmodels.api as sm

    p = np.asarray(predicted_usd, float)
    r = np.asarray(realised_usd, float)
    ok = np.isfinite(p) & np.isfinite(r) & (p > 0)
    p, r = p[ok], r[ok]
    if p.size < 2:
        raise HedgingError(f"recalibration needs at least 2 priced hedges with realised costs, got {p.size}")
    fit = sm.OLS(r, p).fit()
    factor = float(np.clip(fit.params[0], *bounds))
    return Recalibration(factor, float(fit.bse[0]), int(p.size), float(np.mean(r - p)))
