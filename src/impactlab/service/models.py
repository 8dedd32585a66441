"""The models the service serves: per symbol, the instrument's cost model
(:class:`~impactlab.calibration.InstrumentModel`, the one the pre-trade report and the hedging engine use)
calibrated on its market day, with its versions in the store's one version table
(:class:`~impactlab.calibration.ModelVersions`).  Recalibration refits every part of the model on the orders
the service has seen filled; a change of the reference order's cost beyond the configured fraction waits for
approval while the live version keeps serving."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from impactlab.calibration.costmodel import InstrumentModel, ModelVersions
from impactlab.data import Store
from impactlab.errors import ServiceError

__all__ = ["ServiceModels", "calibrate_symbols"]

log = logging.getLogger(__name__)


class ServiceModels:
    """The symbols' models, calibrated at start-up, with their versions in ``store``.

    Parameters
    ----------
    models
        The calibrated models by symbol (:func:`calibrate_symbols`).
    store
        Where versions are journalled (table ``model_versions``), before they are used; a store that already
        holds a live version of a symbol resumes it.
    clock
        Nanoseconds now (injected for tests).
    approve_above
        A recalibration moving the reference order's cost by more than this fraction is held for approval.
    """

    def __init__(self, models: Mapping[str, InstrumentModel], store: Store, *,
                 clock: Callable[[], int] = time.time_ns, approve_above: float = 0.5) -> None:  # fmt: skip
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        self.versions_table = ModelVersions(store, clock=clock, approve_above=approve_above)
        self.base = dict(models)
        self.models: dict[str, InstrumentModel] = {s: self.versions_table.resume(m) for s, m in models.items()}

    @classmethod
    def calibrate(cls, symbols: tuple[str, ...], store: Store, *, data_dir: Path | None = None,
                  clock: Callable[[], int] = time.time_ns, approve_above: float = 0.5) -> ServiceModels:  # fmt: skip
        """Calibrate each symbol on its market day (seconds each) and journal (or resume) its versions."""
        return cls(calibrate_symbols(symbols, data_dir=data_dir), store, clock=clock, approve_above=approve_above)

    def versions(self) -> list[dict[str, Any]]:
        """Every version, oldest first, with its parameters and status (``live`` for the one in use)."""
        return self.versions_table.listing()

    def get(self, symbol: str) -> InstrumentModel:
        m = self.models.get(symbol)
        if m is None:
            raise ServiceError(f"unknown symbol {symbol!r}; the service has {sorted(self.models)}")
        return m

    def refresh(self, symbol: str) -> InstrumentModel:
        """Switch to the store's live version of ``symbol`` (after an approval, from this process or another)."""
        with self._lock:
            m = self.get(symbol)
            row = self.versions_table.live_row(symbol)
            if row is not None and row["version"] != m.version:
                m = self.models[symbol] = self.base[symbol].restored(row)
            return m

    def pending(self) -> list[dict[str, Any]]:
        return [r for r in self.versions() if r["status"] == "pending"]

    # -- pricing ----------------------------------------------------------------------------------------

    def estimate(
        self, symbol: str, side: int, quantity: float, horizon_s: float, threshold_bps: float
    ) -> dict[str, Any]:
        """Expected temporary, permanent and total cost (bps) of working ``quantity`` by VWAP over ``horizon_s``,
        its standard deviation, 5/50/95% quantiles and P(cost > threshold)."""
        return self.get(symbol).estimate(side, quantity, horizon_s, threshold_bps)

    def recalibrate(self, symbol: str, rows: Sequence[Mapping[str, Any]], *, reason: str) -> InstrumentModel:
        """Refit ``symbol``'s model on the service's own priced orders (rows of ``cost_predictions`` with their
        parts) and record the new version: live, or pending approval when it moves the reference order's cost
        by more than the configured fraction (the live version keeps serving).  Returns the recorded version."""
        with self._lock:
            m = self.get(symbol)
            held = self.versions_table.pending_row(symbol)
            if held is not None:
                raise ServiceError(f"cannot recalibrate {symbol}: {held['version']} is held for approval (approve or "
                                   "reject it first)")  # fmt: skip
            try:
                cand = m.recalibrated(rows, reason=reason)
            except Exception as exc:  # too few priced orders: record nothing, say why
                raise ServiceError(f"cannot recalibrate {symbol}: {exc}") from exc
            new = self.versions_table.propose(m, cand)
            if new.status == "live":
                self.models[symbol] = new
            log.warning("recalibrated %s: %s -> %s (%s)", symbol, m.version, new.version, new.status)
            return new

    def approve(self, version: str, *, by: str = "") -> InstrumentModel:
        """Make a pending version live and serve it."""
        row = self.versions_table.approve(version, by=by)
        return self.refresh(str(row["symbol"]))


def calibrate_symbols(symbols: tuple[str, ...], *, data_dir: Path | None = None) -> dict[str, InstrumentModel]:
    """Each symbol's cost model calibrated on its day, found through the data catalog (unversioned).

    A symbol is ``SYMBOL`` or ``SYMBOL@VENUE`` (where it trades on several venues) and may carry a date,
    ``SYMBOL:YYYY-MM-DD``.
    """
    from impactlab.calibration.costmodel import calibrate_instrument
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
        out[day.symbol] = calibrate_instrument(day, volume_days=volume_days(day, data_dir))
    return out
