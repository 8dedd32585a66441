"""Pre-trade inputs calibrated on a market day: the market at arrival and a cost model for any schedule."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from impactlab.calibration.blocks import BLOCK_FEATURES, block_features
from impactlab.calibration.datasets import bar_flows
from impactlab.calibration.resilience import BookResilience, calibrate_ow_book
from impactlab.data.market import MarketDay
from impactlab.errors import CalibrationError
from impactlab.features.book import l1_features
from impactlab.features.pipeline import market_features
from impactlab.impact.obizhaeva_wang import ObizhaevaWangImpact
from impactlab.impact.parametric import SquareRootImpact
from impactlab.schedules import (
    AlmgrenChriss,
    CombinedCost,
    MarketContext,
    ModelCost,
    SpreadCost,
    TransientImpact,
    VolumeCurve,
)

__all__ = ["BookCostModel", "book_cost_model", "calibrated_almgren_chriss", "market_context"]

_ORDER_FEATURES = (
    "log_q_over_adv",
    "q_over_near_depth_1",
    "q_over_near_depth_5",
    "seconds_since_open",
    "horizon_s",
    "participation",
)
"""Block features that describe the order rather than the market (set per schedule by ``ModelCost``)."""


def market_context(
    day: MarketDay,
    *,
    start_s: float = 1800.0,
    side: int = 1,
    volume_days: Sequence[MarketDay] = (),
    bin_s: float = 300.0,
) -> MarketContext:
    """The market at ``start_s`` seconds after the start of a day's data (:attr:`MarketDay.start_ns`).

    Price and spread are the book's at that moment; ADV and daily volatility come from the daily file
    (else the day); the volume curve is averaged over ``volume_days`` (default: this day alone); the book
    and flow features machine-learned models read are taken for an order on ``side``.
    """
    if not 0 <= start_s < day.session_s:
        raise CalibrationError(f"'start' must be within the {day.session_s:.0f} s of {day.label}, got {start_s:g} s")
    ts = day.start_ns + round(start_s * 1e9)
    feats = block_features(day, ts_ns=ts, side=side, quantity=1.0, horizon_s=60.0)
    curve = VolumeCurve.from_days(list(volume_days) or [day], bin_s=bin_s)
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
        sources={
            "book": f"{day.label} ({day.source})",
            "volume_curve": ", ".join(curve.sources),
            "instrument": f"{day.spec.symbol} {day.spec.venue}",
        },
    )


@dataclass(frozen=True)
class BookCostModel:
    """A cost model calibrated on one market day, with the fits it came from.

    ``model`` = half the day's mean spread + (with two or more book levels) Obizhaeva–Wang transient
    impact measured from the book
    (depth, resilience, permanent fraction: :func:`~impactlab.calibration.calibrate_ow_book`), priced for
    trading at a constant rate within each interval + half the permanent move of a square-root law with a
    free exponent fitted on the day's 10-second bars (``I = Yσ(Q/V)^δ``; the order pays I/2 as it works).
    The book's own permanent fraction is not charged as linear permanent impact: measured on single
    market orders, it would grow linearly with a block's size, which the square-root law contradicts.

    With one book level (LOBSTER level 1, TAQ, MBP-1) depth and resilience cannot be measured: the model
    is half the spread + the square-root law's whole estimate (its temporary and permanent parts), and
    ``notes`` says so.
    """

    model: CombinedCost
    ow: ObizhaevaWangImpact | None
    book: BookResilience | None
    sqrt: SquareRootImpact
    half_spread_bps: float
    notes: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        """``spread+ow+sqrt`` (book of two or more levels) or ``spread+sqrt`` (top of book only)."""
        return "spread+ow+sqrt" if self.ow is not None else "spread+sqrt"

    def describe(self) -> dict[str, Any]:
        """The calibrated inputs, for reports."""
        p = self.sqrt.result_.params_dict()
        ci = self.sqrt.result_.conf_int()
        out: dict[str, Any] = {
            "model": self.kind,
            "half_spread_bps": self.half_spread_bps,
            "sqrt_Y": p["Y"],
            "sqrt_delta": p["delta"],
            "sqrt_conf_int": {k: list(v) for k, v in ci.items()},
            "notes": list(self.notes),
        }
        if self.book is not None and self.ow is not None:
            out.update(
                depth_shares_per_bps=self.book.depth_shares_per_bps,
                half_life_s=self.book.half_life_s,
                permanent_fraction=self.book.permanent_fraction,
                transient_bps_per_share=self.ow.result_.params_dict()["kappa_bps"],
            )
        return out


def book_cost_model(day: MarketDay, *, bar_s: float = 10.0) -> BookCostModel:
    """Calibrate :class:`BookCostModel` on a day of any source and depth.

    ADV and daily volatility come from the daily file where there is one, else from the day itself (its
    volume and realised volatility over :attr:`MarketDay.session_s`); the notes say which.
    """
    from impactlab.calibration.blocks import day_context
    from impactlab.errors import InsufficientDepthError

    notes: list[str] = []
    try:
        book: BookResilience | None = calibrate_ow_book(day) if day.depth >= 2 else None
    except (CalibrationError, InsufficientDepthError) as exc:
        book = None
        notes.append(f"no Obizhaeva–Wang fit from the book ({exc})")
    if day.depth < 2:
        notes.append(
            f"{day.source} shows {day.depth} book level: depth beyond level 1 is unknown, so the cost is half the "
            "spread + the square-root law (no transient book term)"
        )
    elif book is None:
        notes.append("the cost is half the spread + the square-root law (no transient book term: see above)")
    ow = book.model() if book is not None else None
    if day.session_s < 50 * bar_s:
        bar_s = max(day.session_s / 50, 1e-3)
        notes.append(f"bars of {bar_s:.3g} s (the data span {day.session_s:.0f} s: at least 50 bars)")
    fs = market_features(day, bar_s=bar_s)
    adv, vol = fs.meta.get("adv"), fs.meta.get("daily_vol")
    if not (adv and vol):
        adv, adv_src, vol, vol_src = day_context(day)
        notes.append(f"ADV: {adv_src}; volatility: {vol_src}")
    bars = bar_flows(fs.bars.to_pandas(), adv=float(adv), daily_vol=float(vol))
    bars = bars[(bars[["quantity", "adv", "daily_vol"]] > 0).all(axis=1)].reset_index(drop=True)
    try:
        sqrt = SquareRootImpact(delta=None).fit(bars)
    except CalibrationError as exc:
        try:
            sqrt = SquareRootImpact().fit(bars)
            notes.append(f"square-root exponent not identified on {len(bars)} bars ({exc}); δ fixed at ½")
        except CalibrationError as exc2:
            sqrt = prior_square_root()
            notes.append(
                f"square-root law not identifiable on {len(bars)} bars ({exc2}): the published Y = 1 ± 0.5, "
                "δ = ½ is used (Tóth et al. 2011; Y of order one)"
            )
    spread = l1_features(day)["spread_bps"]
    half = float(np.nanmean(spread)) / 2
    if ow is not None:
        p = ow.result_.params_dict()
        transient = TransientImpact(
            TransientImpact.from_model(ow).kernel, p["kappa_bps"], 0.0, half, "bps", continuous=True
        )
        model = CombinedCost((transient, ModelCost(sqrt, role="permanent")))
    else:
        model = CombinedCost((SpreadCost(half), ModelCost(sqrt, role="total")))
    return BookCostModel(model, ow, book, sqrt, half, tuple(notes))


def calibrated_almgren_chriss(
    day: MarketDay,
    *,
    quantity: float,
    horizon_s: float,
    n_steps: int,
    side: int = 1,
    book: BookResilience | None = None,
) -> AlmgrenChriss:
    """The Almgren–Chriss problem at linear parameters fitted directly on a day's book, in seconds.

    No decision prices with it any more (they use :class:`~impactlab.calibration.InstrumentModel` and its
    :meth:`~impactlab.calibration.InstrumentModel.linearised` problem): it is the linear model the
    forecast-accuracy benchmark compares the instrument model with (the hedging engine's model before it,
    15–40× too high on fast hedges because linear temporary impact explodes for fast trades).

    σ is the standard deviation of the mid's changes sampled about 2,000 times over the day, per √s; from
    the Obizhaeva–Wang fit of the book (:func:`calibrate_ow_book`), the permanent impact is ``γ = λ S`` and
    the temporary impact ``η = κ S / ρ`` (the steady displacement of trading at a constant rate under an
    exponentially decaying kernel); η is raised to ``γτ`` where needed so that η̃ = η − γτ/2 > 0.
    """
    price = day.first_mid()
    mids = day.mid[np.isfinite(day.mid)]
    every = max(len(mids) // 2000, 1)
    span_s = float(day.ts_ns[-1] - day.ts_ns[0]) / 1e9
    sigma = float(np.std(np.diff(mids[::every])) / np.sqrt(span_s / (len(mids) / every)))
    if book is None and day.depth >= 2:
        from impactlab.errors import InsufficientDepthError

        try:
            book = calibrate_ow_book(day)
        except (CalibrationError, InsufficientDepthError):
            book = None  # Obizhaeva–Wang not identified on this book: linearise the square-root law below
    if book is not None:
        p = book.model().result_.params_dict()
        eta = p["kappa_bps"] * price * 1e-4 / max(p["rho_per_s"], 1e-6)
        gamma = max(p["lambda_bps"], 0.0) * price * 1e-4
    else:  # top of book only: linearise half-spread + square-root at the order's own rate
        bcm = book_cost_model(day)
        rate_share = quantity / horizon_s
        y, delta = (bcm.sqrt.result_.params_dict()[k] for k in ("Y", "delta"))
        from impactlab.calibration.blocks import day_context

        adv, _, vol, _ = day_context(day)
        # temporary cost per share of trading at rate v: Y σ (v T / V)^δ; linear η at that rate
        cost_frac = y * vol * (rate_share * horizon_s / adv) ** delta
        eta = cost_frac * price / max(rate_share, 1e-12)
        gamma = 0.0
    step_s = horizon_s / n_steps
    return AlmgrenChriss(
        quantity=quantity, horizon=horizon_s, n_steps=n_steps, sigma=sigma, eta=max(eta, gamma * step_s),
        gamma=gamma, side=side, time_unit="s",
    )  # fmt: skip


def prior_square_root() -> SquareRootImpact:
    """The square-root law at the literature's values, Y = 1 (sd 0.5), δ = ½, as a fitted model."""
    import dataclasses  # noqa: F401 - the result type is a dataclass

    from impactlab.impact.results import ImpactResult

    m = SquareRootImpact()
    m.result_ = ImpactResult(
        "SquareRootImpact",
        ("Y",),
        np.array([1.0]),
        np.array([[0.25]]),
        0,
        float("nan"),
        float("nan"),
        fixed={"delta": 0.5},
        dof_resid=1,
        cov_type="prior",
        extra={"prior": "Tóth et al. (2011): Y of order one"},
    )
    m.n_features_in_ = len(m._columns())
    m.resid_std_bps_ = 0.0
    m.data_fingerprint_ = "prior"
    m.fitted_window_ = None
    return m
