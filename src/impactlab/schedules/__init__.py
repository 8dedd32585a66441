"""Execution schedules: Almgren–Chriss, Obizhaeva–Wang, transient and nonlinear impact, TWAP/VWAP/POV, pre-trade."""

from impactlab.schedules._schedule import CostModel, Schedule, ScheduleCost
from impactlab.schedules.almgren_chriss import AlmgrenChriss, EfficientFrontier, serial_correlation_gain
from impactlab.schedules.costs import CombinedCost, LinearImpact, ModelCost, SpreadCost
from impactlab.schedules.market import MarketContext
from impactlab.schedules.nonlinear import PowerLawTemporaryImpact, optimal_nonlinear
from impactlab.schedules.pretrade import CurvePoint, PreTradeReport, StrategyResult, pretrade
from impactlab.schedules.transient import (
    DecayKernel,
    ObizhaevaWangSolution,
    PriceManipulationWarning,
    TransientImpact,
    obizhaeva_wang_optimum,
)
from impactlab.schedules.volume import VolumeCurve, pov, twap, vwap

__all__ = [
    "AlmgrenChriss",
    "CombinedCost",
    "CostModel",
    "CurvePoint",
    "DecayKernel",
    "EfficientFrontier",
    "LinearImpact",
    "MarketContext",
    "ModelCost",
    "ObizhaevaWangSolution",
    "PowerLawTemporaryImpact",
    "PreTradeReport",
    "PriceManipulationWarning",
    "Schedule",
    "ScheduleCost",
    "SpreadCost",
    "StrategyResult",
    "TransientImpact",
    "VolumeCurve",
    "obizhaeva_wang_optimum",
    "optimal_nonlinear",
    "pov",
    "pretrade",
    "serial_correlation_gain",
    "twap",
    "vwap",
]
