"""Request and response schemas of the service: every field typed and bounded, unknown fields refused."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ErrorBody",
    "EstimateRequest",
    "EstimateResponse",
    "FillIn",
    "FrontierRequest",
    "ParentIn",
    "PreTradeRequest",
    "RecalibrateRequest",
    "ScheduleRequest",
    "TCARequest",
]

Symbol = Annotated[
    str, Field(pattern=r"^[A-Z0-9][A-Z0-9._-]{0,23}$", description="Instrument, e.g. GOOG, ESU4, BTCUSD_PERP")
]
Side = Literal["buy", "sell"]
# strict: a JSON true or "100" is refused, never read as a number
Quantity = Annotated[
    float, Field(strict=True, ge=1e-6, le=1e9, allow_inf_nan=False, description="Shares (fractions allowed)")
]
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{1,64}$")]
SESSION_S = 23_400.0
TimeNs = Annotated[int, Field(strict=True, ge=0, le=4_102_444_800_000_000_000, description="ns since the epoch")]
Price = Annotated[float, Field(strict=True, gt=0, le=1e7, allow_inf_nan=False)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EstimateRequest(_In):
    """An order to price: worked by VWAP over ``horizon_s``."""

    symbol: Symbol
    side: Side
    quantity: Quantity
    horizon_s: Annotated[float, Field(ge=60, le=5 * SESSION_S, allow_inf_nan=False)] = 1800.0
    threshold_bps: Annotated[float, Field(ge=-1e4, le=1e4, allow_inf_nan=False)] = 10.0


class EstimateResponse(BaseModel):
    symbol: str
    side: Side
    quantity: float
    horizon_s: float
    temporary_bps: float
    permanent_bps: float
    total_bps: float
    std_bps: float
    total_usd: float
    notional: float
    currency: str
    arrival_price: float
    participation: float
    quantiles_bps: dict[str, float]
    threshold_bps: float
    prob_exceeds: float
    model: str
    model_version: str
    extrapolated_features: list[str]


class PreTradeRequest(_In):
    """A block for the pre-trade report: cost curve over horizons and the strategy table."""

    symbol: Symbol
    side: Side
    quantity: Quantity
    horizon_s: Annotated[float | None, Field(ge=60, le=5 * SESSION_S, allow_inf_nan=False)] = None
    urgency: Literal["aggressive", "balanced", "passive"] | None = None
    threshold_bps: Annotated[float, Field(ge=-1e4, le=1e4, allow_inf_nan=False)] = 10.0
    max_participation: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 0.25


class ScheduleRequest(_In):
    """A trading schedule: Almgren–Chriss at the day's calibrated parameters, TWAP, VWAP or POV."""

    symbol: Symbol
    side: Side
    quantity: Quantity
    kind: Literal["almgren-chriss", "twap", "vwap", "pov"] = "almgren-chriss"
    horizon_s: Annotated[float, Field(ge=60, le=SESSION_S, allow_inf_nan=False)] = 1800.0
    step_s: Annotated[float, Field(ge=10, le=SESSION_S, allow_inf_nan=False)] = 60.0
    risk_aversion: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 1e-6
    participation: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 0.1


class FrontierRequest(_In):
    """The Almgren–Chriss efficient frontier of an order at the day's calibrated parameters."""

    symbol: Symbol
    side: Side
    quantity: Quantity
    horizon_s: Annotated[float, Field(ge=60, le=SESSION_S, allow_inf_nan=False)] = 1800.0
    n_steps: Annotated[int, Field(ge=2, le=500)] = 30
    n_points: Annotated[int, Field(ge=5, le=200)] = 50


class ParentIn(_In):
    order_id: Identifier
    symbol: Symbol
    side: Side
    quantity: Quantity
    start_ns: TimeNs
    end_ns: TimeNs


class FillIn(_In):
    fill_id: Identifier
    ts_ns: TimeNs
    quantity: Quantity
    price: Price
    fee: Annotated[float, Field(strict=True, ge=-1e7, le=1e7, allow_inf_nan=False)] = 0.0
    liquidity: Literal["maker", "taker"] = "taker"
    venue: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,32}$")] = "NASDAQ"


class TCARequest(_In):
    """A parent order and its fills, for transaction cost analysis. ``mid_path`` ([ns, mid] pairs, in time
    order) gives the market; without it the symbol's recorded day must cover the order."""

    parent: ParentIn
    fills: Annotated[list[FillIn], Field(min_length=1, max_length=10_000)]
    mid_path: Annotated[list[tuple[TimeNs, Price]] | None, Field(min_length=2, max_length=100_000)] = None
    post_s: Annotated[float, Field(ge=0, le=3_600, allow_inf_nan=False)] = 60.0


class RecalibrateRequest(_In):
    reason: Annotated[str, Field(min_length=1, max_length=200)] = "manual"


class ErrorBody(BaseModel):
    """Every error: ``{"error": {"status", "type", "message", "details"}}``."""

    error: dict[str, Any]
