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
from impactlab.testing.reference import reference_lobster_replay
from impactlab.testing.synthetic import SyntheticDay, write_synthetic_lobster

__all__ = [
    "FlakyFit",
    "SyntheticDay",
    "check_impact_model",
    "reference_lobster_replay",
    "shared_files",
    "simulate_bars",
    "simulate_book_resilience",
    "simulate_impact_events",
    "simulate_parent_orders",
    "simulate_trades",
    "write_synthetic_lobster",
]
