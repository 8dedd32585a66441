"""Every public name imports, __all__ is sorted, and nothing private leaks."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = [
    "impactlab",
    "impactlab.data",
    "impactlab.book",
    "impactlab.features",
    "impactlab.testing",
    "impactlab.errors",
    "impactlab.schedules",
    "impactlab.simulation",
    "impactlab.rl",
    "impactlab.execution",
    "impactlab.tca",
    "impactlab.hedging",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_public_and_importable(name: str) -> None:
    mod = importlib.import_module(name)
    exported = list(mod.__all__)
    assert exported == sorted(exported), f"{name}.__all__ is not sorted"
    for attr in exported:
        assert hasattr(mod, attr), f"{name}.{attr} is in __all__ but missing"
        assert not attr.startswith("_") or attr == "__version__", f"{name} exports private {attr}"


def test_exception_tree() -> None:
    from impactlab import errors

    for cls in (
        errors.DataValidationError,
        errors.CalibrationError,
        errors.InfeasibleScheduleError,
        errors.SimulationError,
        errors.InsufficientDepthError,
        errors.PolicyError,
        errors.ExecutionError,
        errors.RiskLimitError,
        errors.HedgingError,
        errors.ServiceError,
    ):
        assert issubclass(cls, errors.ImpactLabError)
    assert issubclass(errors.DataValidationError, ValueError)
    e = errors.DataValidationError("bad", path="f.csv", line=3, field="size", value="x")
    assert "f.csv" in str(e) and "line 3" in str(e) and "'size'" in str(e) and "'x'" in str(e)


LAYERS = [
    "data",
    "bus",
    "book",
    "features",
    "impact",
    "simulation",
    "schedules",
    "calibration",
    "rl",
    "execution",
    "tca",
    "hedging",
    "service",
    "cli",
]


@pytest.mark.parametrize("layer", LAYERS[:-1])
def test_lower_layers_never_import_upper_ones(layer: str) -> None:
    """ARCHITECTURE.md: each stage imports only those below it (checked in a fresh interpreter)."""
    import subprocess
    import sys

    code = f"import sys, impactlab.{layer}; print(','.join(m for m in {LAYERS!r} if 'impactlab.' + m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    loaded = out.split(",") if out else []
    above = LAYERS[LAYERS.index(layer) + 1 :]
    assert not set(loaded) & set(above), f"impactlab.{layer} pulls in {sorted(set(loaded) & set(above))}"
