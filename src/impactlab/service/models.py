"""The models the service serves: per symbol, the pre-trade cost model calibrated on its LOBSTER day (half
spread + Obizhaeva–Wang transient + square-root permanent), the markets at arrival, and the Almgren–Chriss
problem for the frontier; versions are journalled in the store, and recalibration scales the temporary cost
by the realised-over-predicted ratio of the orders the service has seen filled."""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from scipy import stats

from impactlab.data import Store
from impactlab.data.schemas import MODEL_VERSIONS
from impactlab.errors import ServiceError

__all__ = ["ServiceModels", "SymbolModel", "calibrate_symbols"]

log = logging.getLogger(__name__)
NS = 1_000_000_000


@dataclass(frozen=True, eq=False)
class SymbolModel:
    """One symbol's pre-trade model at one version."""

    symbol: str
    source: str
    day: Any
    markets: dict[int, Any]
    cost: Any
    book: Any
    describe: dict[str, Any]
    version: str
    created_ns: int
    cost_scale: float = 1.0
    reason: str = "start-up calibration"

    def market(self, side: int) -> Any:
        return self.markets[side]

    def schedule_cost(self, schedule: Any, market: Any = None) -> Any:
        """The schedule's cost at this version: the calibrated model's, with the temporary part (and so the
        total and its quantiles) moved by ``cost_scale``; a cost model itself, for the pre-trade report."""
        c = self.cost.schedule_cost(schedule, market)
        if self.cost_scale == 1.0:
            return c
        extra = (self.cost_scale - 1.0) * c.temporary
        return replace(c, temporary=c.temporary + extra, total=c.total + extra,
                          quantiles={p: v + extra for p, v in c.quantiles.items()})  # fmt: skip

    def params(self) -> dict[str, Any]:
        return {"kind": "pretrade", "symbol": self.symbol, "source": self.source, "cost_scale": self.cost_scale,
                **{k: float(v) for k, v in self.describe.items() if isinstance(v, int | float)}}  # fmt: skip


def _steps(h: float) -> float:
    from impactlab.schedules.pretrade import _steps as steps

    return float(steps(h))


def _part(s: Any) -> float:
    from impactlab.schedules.pretrade import _part as part

    return float(part(s))


class ServiceModels:
    """The symbols' models, calibrated at start-up, with their versions in ``store``.

    Parameters
    ----------
    models
        The calibrated models by symbol (:func:`calibrate_symbols`).
    store
        Where versions are journalled (table ``model_versions``), before they are used; a store that already
        holds versions of a symbol resumes its latest.
    clock
        Nanoseconds now (injected for tests).
    """

    def __init__(
        self, models: dict[str, SymbolModel], store: Store, *, clock: Callable[[], int] = time.time_ns
    ) -> None:
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        self.models: dict[str, SymbolModel] = {}
        for sym, m in models.items():
            latest = self._latest_row(sym)
            if latest is not None:  # a restart: carry on from the last recorded version
                p = json.loads(latest["params_json"])
                m = replace(m, version=latest["version"], created_ns=int(latest["created_ns"]),
                            cost_scale=float(p["cost_scale"]), reason=latest["reason"])  # fmt: skip
            else:
                m = self._record(replace(m, cost_scale=1.0), reason="start-up calibration", n_obs=0)
            self.models[sym] = m

    @classmethod
    def calibrate(cls, symbols: tuple[str, ...], store: Store, *, data_dir: Path | None = None,
                  clock: Callable[[], int] = time.time_ns) -> ServiceModels:  # fmt: skip
        """Calibrate each symbol on its LOBSTER day (seconds each) and journal (or resume) its versions."""
        return cls(calibrate_symbols(symbols, data_dir=data_dir), store, clock=clock)

    # -- versions ---------------------------------------------------------------------------------------

    def _rows(self, symbol: str | None = None) -> list[dict[str, Any]]:
        rows = [r for r in self.store.read("model_versions").to_pylist() if r["version"].startswith("pretrade-")]
        if symbol is not None:
            rows = [r for r in rows if json.loads(r["params_json"]).get("symbol") == symbol]
        return sorted(rows, key=lambda r: (r["created_ns"], r["version"]))

    def _latest_row(self, symbol: str) -> dict[str, Any] | None:
        rows = self._rows(symbol)
        return rows[-1] if rows else None

    def _record(self, m: SymbolModel, *, reason: str, n_obs: int) -> SymbolModel:
        n = len(self._rows(m.symbol)) + 1
        now = int(self.clock())
        m = replace(m, version=f"pretrade-{m.symbol}-v{n}", created_ns=now, reason=reason)
        row = {"version": m.version, "created_ns": now, "params_json": json.dumps(m.params()), "reason": reason,
               "n_obs": int(n_obs)}  # fmt: skip
        self.store.write("model_versions", pa.Table.from_pylist([row], schema=MODEL_VERSIONS.remove_metadata()))
        return m

    def versions(self) -> list[dict[str, Any]]:
        """Every version, oldest first, with its parameters and whether it is the one in use."""
        live = {m.version for m in self.models.values()}
        keys = ("version", "created_ns", "reason", "n_obs")
        return [{**{k: r[k] for k in keys}, "params": json.loads(r["params_json"]), "live": r["version"] in live}
                for r in self._rows()]  # fmt: skip

    def get(self, symbol: str) -> SymbolModel:
        m = self.models.get(symbol)
        if m is None:
            raise ServiceError(f"unknown symbol {symbol!r}; the service has {sorted(self.models)}")
        return m

    # -- pricing ----------------------------------------------------------------------------------------

    def estimate(
        self, symbol: str, side: int, quantity: float, horizon_s: float, threshold_bps: float
    ) -> dict[str, Any]:
        """Expected temporary, permanent and total cost (bps) of working ``quantity`` by VWAP over ``horizon_s``,
        its standard deviation, 5/50/95% quantiles and P(cost > threshold)."""
        from impactlab.schedules.volume import vwap

        m = self.get(symbol)
        mk = m.market(side)
        s = vwap(quantity, horizon_s, curve=mk.volume_curve, daily_volume=mk.adv, step_s=_steps(horizon_s),
                 start_s=mk.start_s, side=side)  # fmt: skip
        c = m.schedule_cost(s, mk)
        temp, perm, total = float(c.temporary), float(c.permanent), float(c.total)
        sd = float(c.std)
        z = (threshold_bps - total) / sd if sd > 0 else (math.inf if threshold_bps >= total else -math.inf)
        q = {p: total + float(stats.norm.ppf(p)) * sd for p in (0.05, 0.5, 0.95)}
        return {
            "symbol": symbol, "side": "buy" if side > 0 else "sell", "quantity": quantity, "horizon_s": horizon_s,
            "temporary_bps": temp, "permanent_bps": perm, "total_bps": total, "std_bps": sd,
            "total_usd": total * float(m.day.spec.notional(quantity, mk.price)) / 1e4,
            "notional": float(m.day.spec.notional(quantity, mk.price)),
            "currency": m.day.spec.quote_currency, "arrival_price": float(mk.price),
            "participation": _part(s), "quantiles_bps": {f"{p:g}": v for p, v in q.items()},
            "threshold_bps": threshold_bps, "prob_exceeds": float(stats.norm.sf(z)) if np.isfinite(z) else float(z < 0),
            "model": "half spread + OW transient + square-root permanent" if m.book is not None
            else "half spread + square-root law", "model_version": m.version,
            "extrapolated_features": list(c.extrapolated_features),
        }  # fmt: skip

    def recalibrate(self, symbol: str, predicted_bps: Any, realised_bps: Any, *, reason: str,
                    max_step: float = 1.5) -> SymbolModel:  # fmt: skip
        """A new version whose temporary cost is scaled by the least-squares ratio (through the origin) of the
        realised to the predicted cost of the orders seen, by at most ``max_step`` either way in one step and
        within [0.2, 5] in all; recorded before it is used."""
        from impactlab.hedging.model import recalibrate

        with self._lock:
            m = self.get(symbol)
            try:
                fit = recalibrate(np.asarray(predicted_bps, float), np.asarray(realised_bps, float))
            except Exception as exc:  # too few priced orders: record nothing, say why
                raise ServiceError(f"cannot recalibrate {symbol}: {exc}") from exc
            step = float(np.clip(fit.factor, 1.0 / max_step, max_step))
            if step != fit.factor:
                reason += f" (fitted × {fit.factor:.3g}, held to × {step:.3g} this step)"
            new = self._record(replace(m, cost_scale=float(np.clip(m.cost_scale * step, 0.2, 5.0))),
                               reason=reason, n_obs=fit.n_obs)  # fmt: skip
            self.models[symbol] = new
            log.warning("recalibrated %s: %s -> %s (scale %.3f, %s)", symbol, m.version, new.version, new.cost_scale,
                        reason)  # fmt: skip
            return new


def calibrate_symbols(symbols: tuple[str, ...], *, data_dir: Path | None = None) -> dict[str, SymbolModel]:
    """Each symbol's pre-trade model calibrated on its day, found through the data catalog (unversioned).

    A symbol is ``SYMBOL`` or ``SYMBOL@VENUE`` (where it trades on several venues) and may carry a date,
    ``SYMBOL:YYYY-MM-DD``.
    """
    from impactlab.calibration.pretrade import book_cost_model, market_context
    from impactlab.cli.schedules import volume_days
    from impactlab.data.catalog import load_market
    from impactlab.errors import ImpactLabError

    out = {}
    for raw in symbols:
        name, _, date = raw.partition(":")
        sym, _, venue = name.partition("@")
        try:
            day = load_market(sym, date or None, data=data_dir, venue=venue or None)
        except ImpactLabError as exc:
            raise ServiceError(f"no market data for {raw!r}: {exc}") from exc
        book = book_cost_model(day)
        vdays = volume_days(day, data_dir)
        start = min(1800.0, 0.1 * day.session_s)
        markets = {s: market_context(day, start_s=start, side=s, volume_days=vdays) for s in (1, -1)}
        out[day.symbol] = SymbolModel(day.symbol, f"{day.label} ({day.source})", day, markets, book.model, book.book,
                                      book.describe(), "", 0)  # fmt: skip
    return out
