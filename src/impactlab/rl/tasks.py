"""What an agent is trained or judged on: an execution task (symbol, market, size, horizon) and the
environment built from it, calibrated on the symbol's LOBSTER day."""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np

from impactlab.config import data_dir
from impactlab.data.market import MarketDay
from impactlab.errors import PolicyError
from impactlab.schedules import AlmgrenChriss, VolumeCurve
from impactlab.simulation import (
    AlmgrenChrissWorld,
    ImpactOverlay,
    LiquidationEnv,
    LOBExecutionConfig,
    LOBExecutionEnv,
    QueueReactiveMarket,
    ReplayData,
    fit_queue_reactive,
)

__all__ = ["ExecutionTask", "MarketSetup", "liquidation_env", "load_day", "market_setup"]

NS = 1_000_000_000


@dataclass(frozen=True)
class ExecutionTask:
    """An order to work and the market to work it in.

    Parameters
    ----------
    symbol
        LOBSTER symbol whose day calibrates (``market="sim"``) or is replayed (``"replay"``).
    market
        ``"replay"`` (the real day, with the trader's own impact) or ``"sim"`` (CST flow fitted to the day).
    side, quantity, horizon_s, step_s
        The order: +1 buy / −1 sell, shares, seconds to finish, seconds between decisions.
    action
        ``"box"`` or ``"discrete"`` (the environment's action space).
    overlay
        Replay only: move later prices by the trader's own impact (Obizhaeva–Wang fitted on the day).
    """

    symbol: str = "GOOG"
    market: Literal["replay", "sim"] = "replay"
    side: int = 1
    quantity: float = 2_000.0
    horizon_s: float = 600.0
    step_s: float = 60.0
    action: Literal["box", "discrete"] = "discrete"
    overlay: bool = True

    def __post_init__(self) -> None:
        if self.market not in ("replay", "sim"):
            raise PolicyError(f"'market' must be 'replay' or 'sim', got {self.market!r}")
        if not self.symbol or not self.symbol.isalnum():
            raise PolicyError(f"'symbol' must be alphanumeric, got {self.symbol!r}")
        # the environment's config validates the rest, with messages naming the field
        self.env_config()

    @property
    def n_steps(self) -> int:
        return round(self.horizon_s / self.step_s)

    def env_config(self) -> LOBExecutionConfig:
        return LOBExecutionConfig(
            side=self.side, quantity=self.quantity, horizon_s=self.horizon_s, step_s=self.step_s, action=self.action
        )

    def replace(self, **changes: Any) -> ExecutionTask:
        return ExecutionTask(**{**asdict(self), **changes})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExecutionTask:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise PolicyError(f"unknown task field(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)


@functools.lru_cache(maxsize=4)
def load_day(symbol: str, root: Path | None = None) -> MarketDay:
    """The day of ``symbol`` in the catalog of ``root`` (default ``IMPACTLAB_DATA``; the deepest file), cached."""
    from impactlab.data.catalog import load_market
    from impactlab.errors import DataValidationError

    try:
        return load_market(symbol, data=root or data_dir())
    except DataValidationError as exc:
        raise PolicyError(str(exc)) from exc


@dataclass(frozen=True, eq=False)
class MarketSetup:
    """Everything calibrated on the day that the environments and the classical schedules need."""

    task: ExecutionTask
    day: MarketDay
    replay: ReplayData | None
    overlay: ImpactOverlay | None
    volume_curve: VolumeCurve
    almgren_chriss: AlmgrenChriss
    risk_aversion: float

    def make_env(self, *, seed_offset: int = 0) -> LOBExecutionEnv:
        """A fresh environment of the task (cheap: the calibration is shared)."""
        t = self.task
        cfg = LOBExecutionConfig(**{**asdict(t.env_config()), "seed_offset": seed_offset})
        if t.market == "replay":
            return LOBExecutionEnv(cfg, market="replay", replay_data=self.replay, overlay=self.overlay)
        params = _fitted_flow(self.day)
        price = float(params.extra["price"])
        spread = max(1, round(params.extra["mean_spread_ticks"]))
        tick = self.day.tick_size

        def factory(seed: int, start_ns: int) -> QueueReactiveMarket:
            return QueueReactiveMarket(params, price=price, tick_size=tick, initial_spread_ticks=spread, seed=seed)

        return LOBExecutionEnv(cfg, market="sim", venue_factory=factory)

    def seconds_since_open(self, start_ns: int) -> float:
        """Clock of the volume curve at an episode's start (0 on the simulator, which has no time of day)."""
        if self.task.market == "sim":
            return 0.0
        return max(float(start_ns - self.day.start_ns) / NS, 0.0)


@functools.lru_cache(maxsize=8)
def _fitted_flow(day: MarketDay) -> Any:
    return fit_queue_reactive(day)


@functools.lru_cache(maxsize=8)
def _replay(day: MarketDay) -> ReplayData:
    return ReplayData.from_day(day)


@functools.lru_cache(maxsize=8)
def _book(day: MarketDay) -> Any:
    from impactlab.calibration import calibrate_ow_book

    return calibrate_ow_book(day)


def market_setup(task: ExecutionTask, *, root: Path | None = None, risk_aversion: float = 1e-6) -> MarketSetup:
    """Calibrate the task's market on its symbol's day (any source with two or more book levels).

    ``risk_aversion`` (per currency) sets the Almgren–Chriss baseline's λ; its ε, η, γ and σ are the
    instrument's cost model (:func:`~impactlab.calibration.calibrate_instrument`, what every decision prices
    with) linearised at the task's own TWAP (:meth:`~impactlab.calibration.InstrumentModel.linearised`).
    """
    from impactlab.calibration.costmodel import calibrate_instrument

    day = load_day(task.symbol, root)
    book = _book(day)
    overlay = None
    replay = None
    if task.market == "replay":
        replay = _replay(day)
        if task.overlay:
            overlay = ImpactOverlay.from_model(book.model(), price=day.first_mid())
    ac = calibrate_instrument(day).linearised(task.quantity, task.horizon_s, task.n_steps, task.side)
    if not (np.isfinite(risk_aversion) and risk_aversion >= 0):
        raise PolicyError(f"'risk_aversion' must be >= 0, got {risk_aversion!r}")
    return MarketSetup(task, day, replay, overlay, VolumeCurve.from_days([day]), ac, float(risk_aversion))


def liquidation_env(
    *, risk_aversion: float = 1e-6, world: AlmgrenChrissWorld | None = None, mark_to_market: bool = True
) -> LiquidationEnv:
    """The Almgren–Chriss world of the paper's example (X = 10⁶ shares, 5 days, 5 steps) as an environment
    (``mark_to_market=False``: the training variant with the zero-mean price noise taken out of the reward)."""
    return LiquidationEnv(world, risk_aversion=risk_aversion, mark_to_market=mark_to_market)
