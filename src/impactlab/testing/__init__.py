"""Public test kit: synthetic data with known structure and independent reference implementations."""

from impactlab.testing.contract import check_impact_model
from impactlab.testing.faults import FlakyFit
from impactlab.testing.impact import (
    simulate_bars,
    simulate_book_resilience,
    simulate_impact_events,
    simulate_parent_orders,
    simulate_trades,
)
from impactlab.testing.paths import shared_files
from impactlab.testing.reference import ReferenceL3Book, reference_replay
from impactlab.testing.synthetic import SyntheticDay, write_synthetic_lobster

__all__ = [
    "FlakyFit",
    "ReferenceL3Book",
    "SyntheticDay",
    "check_impact_model",
    "reference_replay",
    "shared_files",
    "simulate_bars",
    "simulate_book_resilience",
    "simulate_impact_events",
    "simulate_parent_orders",
    "simulate_trades",
    "write_synthetic_lobster",
]
