"""One entry point from a data source to fitted, validated models (used by the CLI and the benchmarks)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from impactlab.calibration.datasets import (
    bar_flows,
    large_order_events,
    market_trade_series,
    order_outcomes,
)
from impactlab.calibration.resilience import depth_profile, evaluate_ow_book, resilience_events
from impactlab.calibration.validation import evaluate
from impactlab.data.binance import load_binance
from impactlab.data.lobster import load_lobster
from impactlab.data.market import MarketDay
from impactlab.data.tabular import load_parent_orders
from impactlab.errors import CalibrationError, InsufficientDepthError
from impactlab.features.pipeline import market_features
from impactlab.impact import (
    ImpactModel,
)
from impactlab.impact.registry import MODELS as _CATALOGUE

__all__ = ["MODELS", "DataSource", "calibrate", "day_source", "load_source"]

MODELS: dict[str, tuple[Callable[[], ImpactModel], str]] = {
    name: (m.build, "|".join(m.fits_on)) for name, m in _CATALOGUE.items() if m.family in ("parametric", "transient")
    and set(m.fits_on) <= {"bars", "orders", "trades", "events", "book"}
}  # fmt: skip
"""The models ``calibrate`` fits, from the catalogue (:data:`impactlab.impact.registry.MODELS`): name →
(factory, the dataset kinds it is fitted on)."""


@dataclass
class DataSource:
    """Datasets built lazily from one source; ``notes`` records every assumption made."""

    kind: str
    label: str
    builders: dict[str, Callable[[], pd.DataFrame]]
    notes: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)
    day: MarketDay | None = None
    _cache: dict[str, pd.DataFrame] = field(default_factory=dict)

    def dataset(self, name: str) -> pd.DataFrame:
        if name not in self.builders:
            raise CalibrationError(f"a {self.kind} source has no {name} dataset; it offers {sorted(self.builders)}")
        if name not in self._cache:
            self._cache[name] = self.builders[name]()
        return self._cache[name]


def _bars_with_flows(bars: pd.DataFrame, adv: float | None, daily_vol: float | None, notes: list[str]) -> pd.DataFrame:
    b = bars.copy()
    b["depth_1_mean"] = b["depth_1_mean"].fillna(b["depth_1_close"])
    if adv is None:
        adv = float(b["volume"].sum())
        notes.append(f"no ADV source: the day's own traded volume ({adv:,.0f}) stands in for V")
    if daily_vol is None:
        r = b["return_bps"].to_numpy(float)
        daily_vol = float(np.sqrt(np.nansum(r**2))) / 1e4
        notes.append(f"no daily volatility source: the day's realised volatility ({daily_vol:.4f}) stands in for σ")
    out = bar_flows(b, adv=adv, daily_vol=daily_vol)
    return out[np.isfinite(out["depth_1_mean"]) & (out["depth_1_mean"] > 0)].reset_index(drop=True)


def day_source(day: MarketDay, *, bar_s: float = 10.0) -> DataSource:
    """The calibration datasets of one instrument-day from any source.

    ``bars``, ``trades`` and ``events`` are built from any book; ``book`` and ``resilience`` (Obizhaeva–Wang
    measured from the book) only where the source shows two or more levels: elsewhere they are absent
    and :data:`SKIPPED` says why.
    """
    src = DataSource(day.source, f"{day.label} ({day.source})", {}, day=day)
    src.notes.extend(day.notes)

    def bars() -> pd.DataFrame:
        fs = market_features(day, bar_s=bar_s)
        src.notes.append(f"bars of {bar_s:g} s; ADV source: {fs.meta.get('adv_source')}")
        return _bars_with_flows(fs.bars.to_pandas(), fs.meta.get("adv"), fs.meta.get("daily_vol"), src.notes)

    src.builders = {
        "bars": bars,
        "trades": lambda: market_trade_series(day),
        "events": lambda: large_order_events(day),
    }
    if day.depth >= 2:
        src.builders["book"] = lambda: depth_profile(day)
        src.builders["resilience"] = lambda: resilience_events(day)
    else:
        src.missing["book"] = (
            f"{day.source} shows {day.depth} book level: Obizhaeva–Wang from the book needs at least 2 "
            "(depth beyond level 1 is unknown)"
        )
    return src


def load_source(
    *,
    day: MarketDay | None = None,
    lobster: tuple[Path, Path | None] | None = None,
    trades: list[Path] | None = None,
    orders: Path | None = None,
    bar_s: float = 10.0,
) -> DataSource:
    """A data source: an instrument-day (``day``, or a LOBSTER pair, or Binance capture files), or a
    parent-order file."""
    given = [x is not None for x in (day, lobster, trades, orders)]
    if sum(given) != 1:
        raise CalibrationError("give exactly one market (--symbol/--date, --lobster, --trades) or --orders")
    if lobster is not None:
        day = load_lobster(lobster[0], lobster[1])
    elif trades is not None:
        day = load_binance(trades)
    if day is not None:
        return day_source(day, bar_s=bar_s)
    assert orders is not None
    loaded = load_parent_orders(orders)
    src = DataSource("orders", str(orders), {})
    if loaded.report.rows_quarantined:
        src.notes.append(f"{loaded.report.rows_quarantined} order rows quarantined: {loaded.report.reasons}")

    def outcomes() -> pd.DataFrame:
        o = order_outcomes(loaded.table)
        if o.attrs.get("orders_in_flight"):
            src.notes.append(f"{o.attrs['orders_in_flight']} orders without outcomes left out")
        return o

    src.builders = {"orders": outcomes}
    return src


def calibrate(model_name: str, source: DataSource, *, n_splits: int = 5, save: Path | None = None) -> dict[str, Any]:
    """Fit ``model_name`` on the matching dataset of ``source`` and validate it walk-forward.

    Returns the JSON object the CLI prints: ``model``, ``source``, ``params``, ``stderr``, ``conf_int``,
    ``n``, ``metrics`` (``in_sample`` and ``out_of_sample``), ``extra`` and ``notes``.
    """
    if model_name not in MODELS:
        raise CalibrationError(f"unknown model {model_name!r}; choose from {sorted(MODELS)}")
    factory, kinds = MODELS[model_name]
    usable = [k for k in kinds.split("|") if k in source.builders]
    why = [source.missing[k] for k in kinds.split("|") if k in source.missing]
    if not usable and why:
        raise InsufficientDepthError(f"model {model_name!r}: {why[0]}")
    if not usable:
        raise CalibrationError(
            f"model {model_name!r} is fitted on {kinds.replace('|', ' or ')}; a {source.kind} "
            f"source offers {sorted(source.builders)}"
        )
    if usable[0] == "book":
        return _calibrate_ow_book(source, n_splits=n_splits, save=save)
    data = source.dataset(usable[0])
    model = factory()
    pos = [c for c in model.positive_columns if c in data]
    if pos:
        keep = (data[pos] > 0).all(axis=1)
        if not keep.all():
            source.notes.append(
                f"{model_name}: {int((~keep).sum())} rows without positive {pos} left out (e.g. bars with no net flow)"
            )
            data = data[keep].reset_index(drop=True)
    ev = evaluate(model, data, n_splits=n_splits, gap=getattr(model, "max_lag", 0))
    fitted: ImpactModel = ev["fitted"]
    res = fitted.result_
    if save is not None:
        if source.day is not None:
            fitted.set_market(source.day)
        fitted.save(save)

    extra = {k: v for k, v in res.to_dict()["extra"].items() if not isinstance(v, list) or len(v) <= 4}
    return _report(fitted, source, usable[0], ev, extra, save)


def _report(
    model: ImpactModel, source: DataSource, dataset: str, ev: dict[str, Any], extra: dict[str, Any], save: Path | None
) -> dict[str, Any]:
    """The JSON object ``calibrate`` returns, from a fitted model and its walk-forward metrics."""

    def clean(m: dict[str, float]) -> dict[str, float | None]:
        return {k: (float(v) if np.isfinite(v) else None) for k, v in m.items()}

    res = model.result_
    return {
        "model": type(model).__name__,
        "source": source.label,
        "dataset": dataset,
        "params": res.params_dict(),
        "stderr": res.stderr_dict(),
        "conf_int": {k: list(v) for k, v in res.conf_int().items()},
        "n": res.n,
        "metrics": {"in_sample": clean(ev["in_sample"]), "out_of_sample": clean(ev["out_of_sample"])},
        "cov_type": res.cov_type,
        "extra": extra,
        "notes": list(dict.fromkeys(source.notes)),
        "saved_to": str(save) if save else None,
    }


def _calibrate_ow_book(source: DataSource, *, n_splits: int, save: Path | None) -> dict[str, Any]:
    """OW from the book (:mod:`impactlab.calibration.resilience`): q, f and ρ, then λ, κ, ρ; validated on
    the near quote's path after events it has not seen."""
    ev_table = source.dataset("resilience")
    ev = evaluate_ow_book(source.dataset("book"), ev_table, n_splits=n_splits)
    book = ev["fitted"]
    model = book.model()
    if save is not None:
        if source.day is not None:
            model.set_market(source.day)
        model.save(save)
    source.notes.append(
        f"OW from the book: depth from {book.snapshots:,} snapshots, resilience and permanent fraction from "
        f"{book.events:,} market orders that moved the near quote ({ev_table.attrs.get('events_without_control', 0)} "
        "without a matched spread left out); metrics are of the near quote's move, near_move_bps"
    )
    if book.fraction_at_bound:
        source.notes.append(
            f"permanent fraction estimated at {book.permanent_fraction_raw:.3f}, outside [0, 1]; clipped to "
            f"{book.permanent_fraction:g}"
        )
    extra = {k: v for k, v in book.to_dict().items() if k not in ("fingerprint", "window_ns")}
    return _report(model, source, "book+resilience", ev, extra, save)
