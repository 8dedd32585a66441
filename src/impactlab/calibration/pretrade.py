"""Pre-trade inputs calibrated on a LOBSTER day: the market at arrival and a cost model for any schedule."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from impactlab.calibration.blocks import BLOCK_FEATURES, block_features
from impactlab.calibration.datasets import bar_flows
from impactlab.calibration.resilience import BookResilience, calibrate_ow_book
from impactlab.data.lobster import LobsterDay
from impactlab.errors import CalibrationError
from impactlab.features.book import lobster_l1_features
from impactlab.features.pipeline import lobster_features
from impactlab.impact.obizhaeva_wang import ObizhaevaWangImpact
from impactlab.impact.parametric import SquareRootImpact
from impactlab.schedules import (
    AlmgrenChriss,
    CombinedCost,
    MarketContext,
    ModelCost,
    TransientImpact,
    VolumeCurve,
)

__all__ = ["BookCostModel", "lobster_almgren_chriss", "lobster_book_cost_model", "lobster_market", "lobster_paths"]

_ORDER_FEATURES = (
    "log_q_over_adv",
    "q_over_near_depth_1",
    "q_over_near_depth_5",
    "seconds_since_open",
    "horizon_s",
    "participation",
)
"""Block features that describe the order rather than the market (set per schedule by ``ModelCost``)."""


def lobster_market(
    day: LobsterDay,
    *,
    start_s: float = 1800.0,
    side: int = 1,
    volume_days: Sequence[LobsterDay] = (),
    bin_s: float = 300.0,
) -> MarketContext:
    """The market at ``start_s`` seconds after the open of a LOBSTER day.

    Price and spread are the book's at that moment; ADV and daily volatility come from the daily file
    (else the day); the volume curve is averaged over ``volume_days`` (default: this day alone); the book
    and flow features machine-learned models read are taken for an order on ``side``.
    """
    ts = day.session_open_ns + round(start_s * 1e9)
    feats = block_features(day, ts_ns=ts, side=side, quantity=1.0, horizon_s=60.0)
    curve = VolumeCurve.from_lobster(list(volume_days) or [day], bin_s=bin_s)
    state = {k: feats[k] for k in BLOCK_FEATURES if k not in _ORDER_FEATURES}
    state["near_depth_5"] = 1.0 / feats["q_over_near_depth_5"]
    return MarketContext(
        symbol=day.symbol,
        price=feats["arrival_mid"],
        adv=feats["adv"],
        daily_vol=feats["daily_vol"],
        spread_bps=feats["spread_bps"],
        volume_curve=curve,
        start_s=start_s,
        state=state,
        sources={"book": f"{day.symbol} {day.date} L{day.levels}", "volume_curve": ", ".join(curve.sources)},
    )


@dataclass(frozen=True)
class BookCostModel:
    """A cost model calibrated on one LOBSTER day, with the fits it came from.

    ``model`` = half the day's mean spread + Obizhaeva–Wang transient impact measured from the book
    (depth, resilience, permanent fraction: :func:`~impactlab.calibration.calibrate_ow_book`), priced for
    trading at a constant rate within each interval + half the permanent move of a square-root law with a
    free exponent fitted on the day's 10-second bars (``I = Yσ(Q/V)^δ``; the order pays I/2 as it works).
    The book's own permanent fraction is not charged as linear permanent impact: measured on single
    market orders, it would grow linearly with a block's size, which the square-root law contradicts.
    """

    model: CombinedCost
    ow: ObizhaevaWangImpact
    book: BookResilience
    sqrt: SquareRootImpact
    half_spread_bps: float

    def describe(self) -> dict[str, Any]:
        """The calibrated inputs, for reports."""
        p = self.sqrt.result_.params_dict()
        ci = self.sqrt.result_.conf_int()
        return {
            "half_spread_bps": self.half_spread_bps,
            "depth_shares_per_bps": self.book.depth_shares_per_bps,
            "half_life_s": self.book.half_life_s,
            "permanent_fraction": self.book.permanent_fraction,
            "transient_bps_per_share": self.ow.result_.params_dict()["kappa_bps"],
            "sqrt_Y": p["Y"],
            "sqrt_delta": p["delta"],
            "sqrt_conf_int": {k: list(v) for k, v in ci.items()},
        }


def lobster_book_cost_model(day: LobsterDay, *, bar_s: float = 10.0) -> BookCostModel:
    """Calibrate :class:`BookCostModel` on a LOBSTER day."""
    book = calibrate_ow_book(day)
    ow = book.model()
    fs = lobster_features(day, bar_s=bar_s)
    adv, vol = fs.meta.get("adv"), fs.meta.get("daily_vol")
    bars = bar_flows(fs.bars.to_pandas(), adv=float(adv), daily_vol=float(vol)) if adv and vol else None
    if bars is None:
        raise CalibrationError(f"{day.symbol} {day.date}: no ADV and volatility to fit the square-root law on bars")
    bars = bars[(bars[["quantity", "adv", "daily_vol"]] > 0).all(axis=1)].reset_index(drop=True)
    sqrt = SquareRootImpact(delta=None).fit(bars)
    spread = lobster_l1_features(day)["spread_bps"]
    half = float(np.nanmean(spread)) / 2
    p = ow.result_.params_dict()
    transient = TransientImpact(
        TransientImpact.from_model(ow).kernel, p["kappa_bps"], 0.0, half, "bps", continuous=True
    )
    return BookCostModel(CombinedCost((transient, ModelCost(sqrt, role="permanent"))), ow, book, sqrt, half)


def lobster_almgren_chriss(
    day: LobsterDay,
    *,
    quantity: float,
    horizon_s: float,
    n_steps: int,
    side: int = 1,
    book: BookResilience | None = None,
) -> AlmgrenChriss:
    """The Almgren–Chriss problem at the parameters calibrated on a LOBSTER day, in seconds.

    σ is the standard deviation of the mid's changes sampled about 2,000 times over the day, per √s; from
    the Obizhaeva–Wang fit of the book (:func:`calibrate_ow_book`), the permanent impact is ``γ = λ S`` and
    the temporary impact ``η = κ S / ρ`` (the steady displacement of trading at a constant rate under an
    exponentially decaying kernel); η is raised to ``γτ`` where needed so that η̃ = η − γτ/2 > 0.
    """
    book = book or calibrate_ow_book(day)
    p = book.model().result_.params_dict()
    price = float(day.price_e4[0] / 1e4)
    mids = (day.book[:, 0] + day.book[:, 2]) / 2e4
    every = max(len(mids) // 2000, 1)
    span_s = float(day.ts_ns[-1] - day.ts_ns[0]) / 1e9
    sigma = float(np.std(np.diff(mids[::every])) / np.sqrt(span_s / (len(mids) / every)))
    eta = p["kappa_bps"] * price * 1e-4 / max(p["rho_per_s"], 1e-6)
    gamma = max(p["lambda_bps"], 0.0) * price * 1e-4
    step_s = horizon_s / n_steps
    return AlmgrenChriss(
        quantity=quantity, horizon=horizon_s, n_steps=n_steps, sigma=sigma, eta=max(eta, gamma * step_s),
        gamma=gamma, side=side, time_unit="s",
    )  # fmt: skip


def lobster_paths(root: Path, symbol: str) -> tuple[Path, Path] | None:
    """The deepest LOBSTER message/book pair for ``symbol`` under ``root`` (test fixtures left out)."""
    from impactlab.data.lobster import find_lobster_pairs

    pairs = [
        pr for pr in find_lobster_pairs(root) if pr[0].name.split("_")[0] == symbol and "fixtures" not in pr[0].parts
    ]
    if not pairs:
        return None
    return max(pairs, key=lambda pr: int(pr[0].name.rsplit("_", 1)[1].split(".")[0]))
