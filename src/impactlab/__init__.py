"""impactlab: market-impact models, optimal execution and the closed hedging loop."""

from __future__ import annotations

from impactlab.errors import (
    CalibrationError,
    ConvergenceWarning,
    DataValidationError,
    ImpactLabError,
    InfeasibleScheduleError,
    InsufficientDepthError,
    SimulationError,
)

__version__ = "0.1.0"

__all__ = [
    "CalibrationError",
    "ConvergenceWarning",
    "DataValidationError",
    "ImpactLabError",
    "InfeasibleScheduleError",
    "InsufficientDepthError",
    "SimulationError",
    "__version__",
]
