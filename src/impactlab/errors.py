"""The one exception tree of impactlab.

Every error the library raises on purpose derives from :class:`ImpactLabError`, so a caller can catch
the whole family; each also derives from the matching built-in (``ValueError``) where that reads
naturally.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "BusError",
    "CalibrationError",
    "ConvergenceWarning",
    "DataValidationError",
    "ExecutionError",
    "HedgingError",
    "ImpactLabError",
    "InfeasibleScheduleError",
    "InsufficientDepthError",
    "PolicyError",
    "RiskLimitError",
    "ServiceError",
    "SimulationError",
]


class ImpactLabError(Exception):
    """Base class of every error raised by impactlab."""


class DataValidationError(ImpactLabError, ValueError):
    """Input data that cannot be read as it stands.

    The message names the file, the line (1-based, as an editor shows it), the field and the value.

    Parameters
    ----------
    message
        What is wrong.
    path
        The file the data came from, if any.
    line
        1-based line number in the file (for Parquet and in-memory data: the 1-based row).
    field
        Column or JSON key.
    value
        The offending value, as read.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
        value: object = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.value = value
        where = []
        if self.path is not None:
            where.append(f"file {self.path!r}")
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field {field!r}")
        if value is not None:
            text = repr(value)
            where.append(f"value {text[:120] + '…' if len(text) > 120 else text}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)


class InsufficientDepthError(ImpactLabError, ValueError):
    """A market order larger than the visible depth, with no partial fill asked for."""


class CalibrationError(ImpactLabError, ValueError):
    """A model could not be fitted from the data given."""


class InfeasibleScheduleError(ImpactLabError, ValueError):
    """No schedule satisfies the constraints."""


class SimulationError(ImpactLabError, RuntimeError):
    """The simulator reached a state it cannot continue from."""


class PolicyError(ImpactLabError, ValueError):
    """An execution agent's configuration or saved policy is invalid."""


class ExecutionError(ImpactLabError, RuntimeError):
    """An order cannot be sent, routed or tracked as asked (bad configuration, unknown order, venue down)."""


class RiskLimitError(ExecutionError):
    """A pre-trade risk check refused an order; ``check`` names the limit, ``value`` and ``limit`` say by how much."""

    def __init__(self, message: str, *, check: str, value: object = None, limit: object = None) -> None:
        super().__init__(message)
        self.check = check
        self.value = value
        self.limit = limit


class HedgingError(ImpactLabError, ValueError):
    """A position, market-data message or hedge the hedging engine cannot act on (the loop counts it and
    carries on)."""


class ServiceError(ImpactLabError, ValueError):
    """A service setting, or a request the service cannot serve (unknown symbol, missing market path)."""


class BusError(ImpactLabError, RuntimeError):
    """The message bus cannot do what was asked (no server, a stream or consumer refused, a bad subject)."""


class ConvergenceWarning(UserWarning):
    """An optimisation stopped before converging; the message gives the reason and the fit is kept."""
