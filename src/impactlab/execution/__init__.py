"""Execution: the child-order slicer, the Cont–Kukanov smart order router, the order state machine with
its store journal, pre-trade risk checks and the kill switch, and venue adapters.

The path of a child order: :class:`Slicer` (how much, how urgent) → router (where, market or limit) →
:class:`OrderManager` (risk gate, journal, send) → :class:`VenueAdapter` → execution reports back into
the order manager (journalled, de-duplicated, bad ones refused and counted).
"""

from impactlab.execution.engine import (
    ChildChoice,
    ChildContext,
    ChildPolicy,
    ExecutionEngine,
    ExecutionResult,
    SimClock,
    SlicePlan,
    Slicer,
    WallClock,
)
from impactlab.execution.orders import (
    Break,
    ExecutionReport,
    ManagedOrder,
    OrderManager,
    OrderState,
    VenueAdapter,
    child_id,
)
from impactlab.execution.overlay import OverlayChildPolicy
from impactlab.execution.risk import (
    KillSwitch,
    MarketSnapshot,
    RiskGate,
    RiskLimits,
    guarded_order_manager,
    kill_switch_path,
    load_limits,
    session_window_volume,
)
from impactlab.execution.router import (
    ContKukanovRouter,
    NaiveRouter,
    RouteDecision,
    ck_expected_cost,
    ck_single_venue,
    queue_outflow_samples,
)
from impactlab.execution.venues import SimulatedVenue, VenueQuote

__all__ = [
    "Break",
    "ChildChoice",
    "ChildContext",
    "ChildPolicy",
    "ContKukanovRouter",
    "ExecutionEngine",
    "ExecutionReport",
    "ExecutionResult",
    "KillSwitch",
    "ManagedOrder",
    "MarketSnapshot",
    "NaiveRouter",
    "OrderManager",
    "OrderState",
    "OverlayChildPolicy",
    "RiskGate",
    "RiskLimits",
    "RouteDecision",
    "SimClock",
    "SimulatedVenue",
    "SlicePlan",
    "Slicer",
    "VenueAdapter",
    "VenueQuote",
    "WallClock",
    "child_id",
    "ck_expected_cost",
    "ck_single_venue",
    "guarded_order_manager",
    "kill_switch_path",
    "load_limits",
    "queue_outflow_samples",
    "session_window_volume",
]
