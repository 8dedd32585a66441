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


LOADERS = {
    "data/lobster.py",
    "data/binance.py",
    "data/_binance_book.py",
    "data/_binance_parse.py",
    "data/databento.py",
    "data/taq.py",
    "data/generic.py",
    "data/tabular.py",
    "data/catalog.py",
    "data/schemas.py",
    "data/__init__.py",
    "testing/synthetic.py",  # the test kit writes LOBSTER files for the loader's tests
}
VENDOR_TOKENS = (
    "import databento",
    "from databento",
    "databento_dbn",
    "price_e4",
    "event_type",
    "LobsterEventType",
    "DUMMY_ASK",
    "DUMMY_BID",
    "lastUpdateId",
    "bid_px_00",
    "ts_recv",
    "BIDSIZ",
    "OFRSIZ",
    "find_lobster_pairs",
    "load_lobster(",
    "load_binance(",
    "34_200",
    "57_600",
    "23_400",
    "session_open_ns",
)


def test_no_module_outside_the_loaders_reads_a_vendor_layout() -> None:
    """One market-data model: vendor modules, vendor fields and a hard-coded 09:30 session live only in the
    loaders (the universe dataset keeps its own session columns; the CLI's demo names the sample files)."""
    from pathlib import Path

    import impactlab

    root = Path(impactlab.__file__).parent
    allowed_elsewhere = {
        "session_open_ns": {"data/universe.py", "calibration/universe.py", "calibration/partitions.py",
                            "simulation/universe.py"},
        "load_lobster(": {"cli/main.py", "calibration/runner.py"},  # explicit LOBSTER pairs (--lobster, demo)
        "load_binance(": {"cli/main.py", "calibration/runner.py"},  # explicit Binance captures (--trades, demo)
        "find_lobster_pairs": {"cli/main.py"},  # the demo's LOBSTER book check
        "23_400": {"simulation/universe.py", "service/schemas.py", "schedules/volume.py", "execution/engine.py"},
        "34_200": {"simulation/universe.py"},
    }  # fmt: skip
    bad = []
    for path in sorted(root.rglob("*.py")):
        rel = str(path.relative_to(root))
        if rel in LOADERS:
            continue
        text = path.read_text()
        for tok in VENDOR_TOKENS:
            if tok in text and rel not in allowed_elsewhere.get(tok, set()):
                bad.append(f"{rel}: {tok}")
    assert not bad, bad
