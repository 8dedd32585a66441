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
    ):
        assert issubclass(cls, errors.ImpactLabError)
    assert issubclass(errors.DataValidationError, ValueError)
    e = errors.DataValidationError("bad", path="f.csv", line=3, field="size", value="x")
    assert "f.csv" in str(e) and "line 3" in str(e) and "'size'" in str(e) and "'x'" in str(e)
