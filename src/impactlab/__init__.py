"""impactlab: market-impact models, optimal execution and the closed hedging loop."""

from __future__ import annotations

import os as _os
from pathlib import Path as _Path

# compiled kernels are cached in the user's cache folder, not beside the installed sources (set
# NUMBA_CACHE_DIR to choose another); numba reads this when it is first imported, which the kernels do
_os.environ.setdefault(
    "NUMBA_CACHE_DIR",
    str(_Path(_os.environ.get("XDG_CACHE_HOME") or _Path.home() / ".cache") / "impactlab" / "numba"),
)

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
