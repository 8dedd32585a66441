"""The feature set of machine-learned impact forecasts on blocks (built by :mod:`impactlab.calibration.blocks`)."""

__all__ = ["BLOCK_FEATURES"]

BLOCK_FEATURES = (
    "log_q_over_adv",
    "q_over_near_depth_1",
    "q_over_near_depth_5",
    "spread_bps",
    "near_depth_1",
    "far_depth_1",
    "imbalance_1_signed",
    "ofi_10s_signed",
    "signed_volume_60s_signed",
    "volume_60s",
    "realized_vol_60s_bps",
    "seconds_since_open",
    "horizon_s",
    "participation",
)
"""Features known at t, signed so that positive means 'against the block' where a sign matters."""
