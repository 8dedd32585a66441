"""Market simulation: a matching engine, calibrated order flow (Cont–Stoikov–Talreja, Hawkes), historical
replay with the trader's own impact, an Almgren–Chriss world and Gymnasium environments.

Importing this package registers ``impactlab/Liquidation-v0`` and ``impactlab/LOBExecution-v0`` with
Gymnasium.
"""

from __future__ import annotations

import gymnasium as _gym

from impactlab.simulation.ac_world import AlmgrenChrissWorld
from impactlab.simulation.backtest import BacktestResult, run_schedule
from impactlab.simulation.envs import LiquidationEnv, LOBExecutionConfig, LOBExecutionEnv, lob_observation
from impactlab.simulation.facts import StylisedFacts, stylised_facts
from impactlab.simulation.flow import (
    HawkesParams,
    QueueReactiveMarket,
    QueueReactiveParams,
    fit_hawkes,
    fit_queue_reactive,
    market_order_times,
)
from impactlab.simulation.models import ConstantLatency, FeeModel, LatencyModel, LognormalLatency, OrderEvent
from impactlab.simulation.replay import ImpactOverlay, ReplayData, ReplayMarket
from impactlab.simulation.venue import BookView, Venue

__all__ = [
    "AlmgrenChrissWorld",
    "BacktestResult",
    "BookView",
    "ConstantLatency",
    "FeeModel",
    "HawkesParams",
    "ImpactOverlay",
    "LOBExecutionConfig",
    "LOBExecutionEnv",
    "LatencyModel",
    "LiquidationEnv",
    "LognormalLatency",
    "OrderEvent",
    "QueueReactiveMarket",
    "QueueReactiveParams",
    "ReplayData",
    "ReplayMarket",
    "StylisedFacts",
    "Venue",
    "fit_hawkes",
    "fit_queue_reactive",
    "lob_observation",
    "market_order_times",
    "run_schedule",
    "stylised_facts",
]

for _id, _entry in (
    ("impactlab/Liquidation-v0", "impactlab.simulation.envs:LiquidationEnv"),
    ("impactlab/LOBExecution-v0", "impactlab.simulation.envs:LOBExecutionEnv"),
):
    if _id not in _gym.registry:
        _gym.register(id=_id, entry_point=_entry)
