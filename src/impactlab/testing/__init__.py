"""Public test kit: synthetic data with known structure and independent reference implementations."""

from impactlab.testing.reference import reference_lobster_replay
from impactlab.testing.synthetic import SyntheticDay, write_synthetic_lobster

__all__ = ["SyntheticDay", "reference_lobster_replay", "write_synthetic_lobster"]
