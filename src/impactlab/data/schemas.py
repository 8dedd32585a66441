"""Typed schemas of everything impactlab reads, stores and passes between stages.

Conventions (``ARCHITECTURE.md``): prices are float64 in currency, quantities in shares or contracts,
timestamps int64 nanoseconds since the Unix epoch (UTC), and sides are ``+1`` buy / ``-1`` sell.

Each table is a :class:`pyarrow.Schema` whose fields carry a ``unit`` and a ``doc`` in their metadata;
the loaders, the validators and the store all work from these one definitions.  The system's own
records (:class:`ParentOrder`, :class:`ChildOrder`, :class:`Fill`) are also frozen dataclasses that
validate themselves on construction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

import pyarrow as pa

from impactlab.errors import DataValidationError

__all__ = [
    "BOOK_LEVEL_FIELDS",
    "BREAKS",
    "CHILD_ORDERS",
    "COST_PREDICTIONS",
    "ENGINE_STATE",
    "FILLS",
    "HEDGES",
    "HEDGE_EVENTS",
    "LOAD_REPORTS",
    "MESSAGES",
    "MODEL_VERSIONS",
    "ORDER_EVENTS",
    "PARENT_ORDERS",
    "QUARANTINE",
    "QUOTES",
    "TRADES",
    "UNIVERSE_FITS",
    "UNIVERSE_RUNS",
    "ChildOrder",
    "Fill",
    "LobsterEventType",
    "OrderType",
    "ParentOrder",
    "Side",
    "book_snapshot_schema",
    "describe",
]


class Side(IntEnum):
    """Trade or order side; the one place the sign convention is defined."""

    BUY = 1
    SELL = -1


class LobsterEventType(IntEnum):
    """LOBSTER message types (``LOBSTER_SampleFiles_ReadMe.txt``)."""

    SUBMISSION = 1
    CANCELLATION = 2  # partial deletion
    DELETION = 3  # total deletion
    EXECUTION_VISIBLE = 4
    EXECUTION_HIDDEN = 5
    TRADING_HALT = 7


class OrderType(StrEnum):
    """Child-order types."""

    MARKET = "market"
    LIMIT = "limit"
    IOC = "ioc"


def _f(name: str, typ: pa.DataType, unit: str, doc: str, *, nullable: bool = False) -> pa.Field:
    return pa.field(name, typ, nullable=nullable, metadata={"unit": unit, "doc": doc})


MESSAGES = pa.schema(
    [
        _f("ts_ns", pa.int64(), "ns since epoch, UTC", "event time"),
        _f("event_type", pa.int8(), "LobsterEventType", "1 submit, 2 cancel, 3 delete, 4/5 execute, 7 halt"),
        _f("order_id", pa.int64(), "id", "exchange order reference"),
        _f("size", pa.int64(), "shares", "shares affected by the event"),
        _f("price", pa.float64(), "currency", "limit price of the order affected"),
        _f("side", pa.int8(), "+1 bid / -1 ask", "side of the resting order affected"),
    ]
)
"""Order-book messages (LOBSTER layout, converted to the conventions)."""

BOOK_LEVEL_FIELDS = ("ask_price", "ask_size", "bid_price", "bid_size")


def book_snapshot_schema(levels: int) -> pa.Schema:
    """Schema of an L1–L``levels`` book snapshot table: ``ts_ns`` then, per level k, ask/bid price/size.

    Empty levels hold NaN prices and zero sizes.
    """
    if not 1 <= levels <= 100:
        raise ValueError(f"'levels' must be in [1, 100], got {levels}")
    fields = [_f("ts_ns", pa.int64(), "ns since epoch, UTC", "time of the state")]
    for k in range(1, levels + 1):
        fields += [
            _f(f"ask_price_{k}", pa.float64(), "currency", f"level-{k} ask price, NaN when empty", nullable=True),
            _f(f"ask_size_{k}", pa.float64(), "shares", f"level-{k} ask size"),
            _f(f"bid_price_{k}", pa.float64(), "currency", f"level-{k} bid price, NaN when empty", nullable=True),
            _f(f"bid_size_{k}", pa.float64(), "shares", f"level-{k} bid size"),
        ]
    return pa.schema(fields)


TRADES = pa.schema(
    [
        _f("ts_ns", pa.int64(), "ns since epoch, UTC", "trade time"),
        _f("price", pa.float64(), "currency", "trade price"),
        _f("size", pa.float64(), "shares", "traded quantity, > 0"),
        _f("sign", pa.int8(), "+1 buyer-initiated / -1 seller-initiated / 0 unknown", "aggressor side"),
        _f("trade_id", pa.int64(), "id", "venue trade id, -1 if unknown"),
    ]
)
"""Trades (prints)."""

QUOTES = pa.schema(
    [
        _f("ts_ns", pa.int64(), "ns since epoch, UTC", "quote time"),
        _f("bid_price", pa.float64(), "currency", "best bid"),
        _f("bid_size", pa.float64(), "shares", "size at the best bid"),
        _f("ask_price", pa.float64(), "currency", "best ask"),
        _f("ask_size", pa.float64(), "shares", "size at the best ask"),
    ]
)
"""Top-of-book quotes."""

PARENT_ORDERS = pa.schema(
    [
        _f("order_id", pa.string(), "id", "parent order id"),
        _f("symbol", pa.string(), "ticker", "instrument"),
        _f("side", pa.int8(), "+1 buy / -1 sell", "side"),
        _f("quantity", pa.float64(), "shares", "parent quantity, > 0"),
        _f("start_ns", pa.int64(), "ns since epoch, UTC", "start of the execution window"),
        _f("end_ns", pa.int64(), "ns since epoch, UTC", "end of the execution window"),
        _f("arrival_mid", pa.float64(), "currency", "mid at the start; null until known", nullable=True),
        _f("avg_price", pa.float64(), "currency", "average execution price; null until known", nullable=True),
        _f("end_mid", pa.float64(), "currency", "mid at the end; null until known", nullable=True),
        _f(
            "post_mid",
            pa.float64(),
            "currency",
            "mid at a fixed horizon after the end; null until known",
            nullable=True,
        ),
        _f("adv", pa.float64(), "shares/day", "average daily volume; null until known", nullable=True),
        _f("daily_vol", pa.float64(), "fraction/day^0.5", "daily volatility; null until known", nullable=True),
        _f("shares_outstanding", pa.float64(), "shares", "optional", nullable=True),
        _f("spread_bps", pa.float64(), "bps", "optional quoted spread at arrival", nullable=True),
        _f("executed_end_ns", pa.int64(), "ns since epoch, UTC", "when execution ended (what TCA measures the end "
           "mid at); null until known", nullable=True),
        _f("post_s", pa.float64(), "s", "how long after the end the post-trade mid was read; null until known",
           nullable=True),
    ]
)  # fmt: skip
"""Parent orders and, once executed, their outcomes: the interchange format of calibration.

An order in flight has null outcome columns; a completed one has them all."""

CHILD_ORDERS = pa.schema(
    [
        _f("client_order_id", pa.string(), "id", "idempotent client order id"),
        _f("parent_order_id", pa.string(), "id", "parent order id"),
        _f("symbol", pa.string(), "ticker", "instrument"),
        _f("side", pa.int8(), "+1 buy / -1 sell", "side"),
        _f("quantity", pa.float64(), "shares", "order quantity, > 0"),
        _f("order_type", pa.string(), "OrderType", "market, limit or ioc"),
        _f("limit_price", pa.float64(), "currency", "limit price, null for market orders", nullable=True),
        _f("venue", pa.string(), "name", "destination venue"),
        _f("created_ns", pa.int64(), "ns since epoch, UTC", "time the order was created"),
    ]
)
"""Child orders sent to venues."""

FILLS = pa.schema(
    [
        _f("fill_id", pa.string(), "id", "execution id, unique"),
        _f("client_order_id", pa.string(), "id", "child order filled"),
        _f("parent_order_id", pa.string(), "id", "parent order"),
        _f("symbol", pa.string(), "ticker", "instrument"),
        _f("side", pa.int8(), "+1 buy / -1 sell", "side"),
        _f("quantity", pa.float64(), "shares", "filled quantity, > 0"),
        _f("price", pa.float64(), "currency", "fill price"),
        _f("ts_ns", pa.int64(), "ns since epoch, UTC", "fill time"),
        _f("venue", pa.string(), "name", "venue"),
        _f("liquidity", pa.string(), "maker/taker", "liquidity flag"),
        _f("fee", pa.float64(), "currency", "fee paid (negative for a rebate)"),
    ]
)
"""Fills (executions) of the system's own child orders."""

BREAKS = pa.schema(
    [
        _f("break_id", pa.string(), "id", "venue and execution id (or order and check), unique"),
        _f("ts_ns", pa.int64(), "ns since epoch, UTC", "time the break was found"),
        _f("kind", pa.string(), "name", "fill (a fill the order could not take) or reconciliation"),
        _f("venue", pa.string(), "name", "venue that reported it"),
        _f("client_order_id", pa.string(), "id", "child order concerned"),
        _f("parent_order_id", pa.string(), "id", "its parent, empty if the order is unknown"),
        _f("exec_id", pa.string(), "id", "the venue's execution id, empty for a reconciliation"),
        _f("quantity", pa.float64(), "shares", "shares the venue says executed (fill) or differ (reconciliation)"),
        _f("price", pa.float64(), "currency", "fill price, NaN for a reconciliation"),
        _f("reason", pa.string(), "text", "why it is a break"),
    ]
)
"""Breaks: executions the venue reports that the order book of record cannot take (a fill on a finished
order, past its limit or beyond its size; a status that disagrees with the store).  Each halts its parent;
the venue may hold a position the fills table does not, so a person must look at every row."""

ORDER_EVENTS = pa.schema(
    [
        _f("event_id", pa.string(), "id", "client order id and sequence number, unique"),
        _f("client_order_id", pa.string(), "id", "child order"),
        _f("seq", pa.int64(), "count", "event number within the order, from 0"),
        _f("ts_ns", pa.int64(), "ns since epoch, UTC", "time the event was recorded"),
        _f("state", pa.string(), "OrderState", "state after the event"),
        _f("filled", pa.float64(), "shares", "cumulative filled quantity after the event"),
        _f("reason", pa.string(), "text", "why (reject or cancel reason, risk check), empty if none"),
    ]
)
"""The order state machine's journal: one row per state change, written before it is acted on."""

COST_PREDICTIONS = pa.schema(
    [
        _f("prediction_id", pa.string(), "id", "parent order id and model name, unique"),
        _f("parent_order_id", pa.string(), "id", "parent order"),
        _f("model", pa.string(), "name", "impact model that made the prediction"),
        _f("predicted_bps", pa.float64(), "bps", "pre-trade expected cost"),
        _f("realised_bps", pa.float64(), "bps", "implementation shortfall measured by TCA", nullable=True),
        _f("ts_ns", pa.int64(), "ns since epoch, UTC", "time the realised cost was recorded"),
        _f("symbol", pa.string(), "ticker", "instrument (null in stores of older releases)", nullable=True),
        _f("lower_bps", pa.float64(), "bps", "lower end of the forecast's 90% interval", nullable=True),
        _f("upper_bps", pa.float64(), "bps", "upper end of the forecast's 90% interval", nullable=True),
        _f("predicted_temporary_bps", pa.float64(), "bps", "forecast temporary cost", nullable=True),
        _f("realised_temporary_bps", pa.float64(), "bps", "TCA's temporary impact", nullable=True),
        _f("parts_json", pa.string(), "JSON", "the forecast's parts at the day's calibration and its timing sd, "
           "what a refit reads", nullable=True),
    ]
)  # fmt: skip
"""Predicted against realised cost of each parent order, per model (what recalibration and drift read)."""

MODEL_VERSIONS = pa.schema(
    [
        _f("version", pa.string(), "id", "model version, unique"),
        _f("created_ns", pa.int64(), "ns since epoch, UTC", "time the version was made"),
        _f("params_json", pa.string(), "JSON", "the model's parameters (a safe format: never a pickle)"),
        _f("reason", pa.string(), "text", "why it was made: initial, schedule, drift"),
        _f("n_obs", pa.int64(), "count", "own orders it was fitted on (0 for the market-day calibration)"),
        _f("symbol", pa.string(), "ticker", "instrument (null in stores of older releases)", nullable=True),
        _f("status", pa.string(), "name", "live, pending (held for approval) or rejected", nullable=True),
        _f("activated_ns", pa.int64(), "ns since epoch, UTC", "time it went live", nullable=True),
        _f("reference_bps", pa.float64(), "bps", "its predicted cost of the reference order", nullable=True),
    ]
)
"""Versions of every instrument's cost model (:class:`impactlab.calibration.ModelVersions`), written before
they price an order."""

HEDGES = pa.schema(
    [
        _f("hedge_id", pa.string(), "id", "hedge decision, unique"),
        _f("ts_ns", pa.int64(), "ns since epoch, UTC", "time of the decision"),
        _f("underlying", pa.string(), "symbol", "what is bought or sold"),
        _f("delta_shares", pa.float64(), "shares", "the book's net delta that triggered the hedge"),
        _f("side", pa.int8(), "Side", "+1 buy, -1 sell"),
        _f("quantity", pa.float64(), "shares", "hedge quantity, > 0"),
        _f("policy", pa.string(), "name", "immediate, twap, almgren-chriss"),
        _f("horizon_s", pa.float64(), "s", "chosen horizon"),
        _f("step_s", pa.float64(), "s", "schedule interval"),
        _f("model_version", pa.string(), "id", "impact model version that priced it"),
        _f("expected_cost_usd", pa.float64(), "currency", "predicted execution cost"),
        _f("risk_usd2", pa.float64(), "currency²", "variance of the unhedged exposure while it works"),
        _f("arrival_mid", pa.float64(), "currency", "mid at the decision"),
        _f("regime", pa.string(), "name", "market regime at the decision"),
        _f("parent_order_id", pa.string(), "id", "the parent order that executes it"),
    ]
)
"""Hedge decisions, written before the hedge is sent to execution."""

HEDGE_EVENTS = pa.schema(
    [
        _f("event_id", pa.string(), "id", "hedge id and event kind, unique"),
        _f("hedge_id", pa.string(), "id", "hedge"),
        _f("ts_ns", pa.int64(), "ns since epoch, UTC", "time of the event"),
        _f("kind", pa.string(), "name", "decided, executing, done, held, approved"),
        _f("filled", pa.float64(), "shares", "shares filled so far"),
        _f("realised_cost_usd", pa.float64(), "currency", "filled shares' cost against the arrival mid, fees in",
           nullable=True),
        _f("temporary_cost_usd", pa.float64(), "currency", "TCA's temporary impact: fills against the mid when "
           "each child was sent", nullable=True),
        _f("detail", pa.string(), "text", "reason or note"),
    ]
)  # fmt: skip
"""The hedging journal: one row per change of a hedge's state."""

ENGINE_STATE = pa.schema(
    [
        _f("key", pa.string(), "name", "state entry, unique"),
        _f("value_json", pa.string(), "JSON", "its value"),
        _f("ts_ns", pa.int64(), "ns since epoch, UTC", "time it was written"),
    ]
)
"""Small named state a restarted engine resumes from (the last market-data offset it processed)."""

UNIVERSE_RUNS = pa.schema(
    [
        _f("run_id", pa.string(), "id", "universe calibration run, unique"),
        _f("started_ns", pa.int64(), "ns since epoch, UTC", "start of the run"),
        _f("finished_ns", pa.int64(), "ns since epoch, UTC", "end of the run (null while it runs)", nullable=True),
        _f("data_dir", pa.string(), "path", "the partitioned dataset"),
        _f("models", pa.string(), "names", "models fitted, comma-separated"),
        _f("executor", pa.string(), "name", "local processes or the Dask scheduler's address"),
        _f("workers", pa.int64(), "count", "worker processes"),
        _f("partitions", pa.int64(), "count", "instrument-days in the run"),
        _f("partitions_ok", pa.int64(), "count", "instrument-days fitted", nullable=True),
        _f("partitions_failed", pa.int64(), "count", "instrument-days that failed every attempt", nullable=True),
        _f("wall_s", pa.float64(), "s", "wall time of the run", nullable=True),
    ]
)
"""One row per universe calibration run."""

UNIVERSE_FITS = pa.schema(
    [
        _f("version", pa.string(), "id", "model version MODEL:SYMBOL:DATE:RUN, unique"),
        _f("run_id", pa.string(), "id", "the run"),
        _f("symbol", pa.string(), "symbol", "instrument"),
        _f("date", pa.string(), "ISO date", "trading day"),
        _f("model", pa.string(), "name", "model name as the CLI spells it"),
        _f("status", pa.string(), "code", "ok, model-failed (this model could not be fitted), failed (the partition)"),
        _f("n_obs", pa.int64(), "count", "observations fitted", nullable=True),
        _f("params_json", pa.string(), "JSON", "parameters", nullable=True),
        _f("stderr_json", pa.string(), "JSON", "standard errors", nullable=True),
        _f("oos_rmse_bps", pa.float64(), "bps", "walk-forward out-of-sample RMSE", nullable=True),
        _f("oos_r2", pa.float64(), "ratio", "walk-forward out-of-sample R²", nullable=True),
        _f("result_json", pa.string(), "JSON", "the full calibration report", nullable=True),
        _f("error", pa.string(), "text", "why it failed", nullable=True),
        _f("attempts", pa.int64(), "count", "tasks sent for the partition"),
        _f("elapsed_s", pa.float64(), "s", "worker time of the partition"),
        _f("worker", pa.string(), "host:pid", "the process that fitted it"),
        _f("created_ns", pa.int64(), "ns since epoch, UTC", "time recorded"),
    ]
)
"""Universe calibration results: one model version per instrument-day and model."""

QUARANTINE = pa.schema(
    [
        _f("load_id", pa.string(), "id", "the load that quarantined the row"),
        _f("source", pa.string(), "path", "file the row came from"),
        _f("line", pa.int64(), "1-based line", "line (CSV) or row (Parquet) in the source"),
        _f("field", pa.string(), "name", "field that failed"),
        _f("value", pa.string(), "text", "value as read"),
        _f("reason", pa.string(), "code", "validation rule that failed"),
    ]
)
"""Rows a batch load set aside, with the reason."""

LOAD_REPORTS = pa.schema(
    [
        _f("load_id", pa.string(), "id", "unique id of the load"),
        _f("kind", pa.string(), "name", "lobster, binance, trades, quotes, parent_orders, fills"),
        _f("source", pa.string(), "path", "file(s) loaded"),
        _f("rows_read", pa.int64(), "rows", "rows read"),
        _f("rows_accepted", pa.int64(), "rows", "rows kept"),
        _f("rows_quarantined", pa.int64(), "rows", "rows set aside"),
        _f("reasons_json", pa.string(), "JSON", "quarantine counts by reason"),
        _f("loaded_ns", pa.int64(), "ns since epoch, UTC", "wall time of the load"),
    ]
)
"""One row per batch load."""


def describe(schema: pa.Schema) -> list[tuple[str, str, str, str]]:
    """``(name, type, unit, doc)`` for every field of a schema: the documentation of a table."""
    out = []
    for fld in schema:
        meta = {k.decode(): v.decode() for k, v in (fld.metadata or {}).items()}
        out.append((fld.name, str(fld.type), meta.get("unit", ""), meta.get("doc", "")))
    return out


def _require(cond: bool, name: str, value: object, rule: str) -> None:
    if not cond:
        raise DataValidationError(f"{name!r} must be {rule}, got {value!r}", field=name, value=value)


def _finite_positive(name: str, value: float) -> None:
    _require(isinstance(value, int | float) and math.isfinite(value) and value > 0, name, value, "finite and > 0")


@dataclass(frozen=True, slots=True)
class ParentOrder:
    """A parent order: what the desk wants done.

    Parameters
    ----------
    order_id, symbol
        Identifiers.
    side
        ``Side.BUY`` or ``Side.SELL``.
    quantity
        Shares, > 0.
    start_ns, end_ns
        Execution window, ns since epoch; ``end_ns >= start_ns``.
    """

    order_id: str
    symbol: str
    side: Side
    quantity: float
    start_ns: int
    end_ns: int

    def __post_init__(self) -> None:
        _require(bool(self.order_id), "order_id", self.order_id, "non-empty")
        _require(bool(self.symbol), "symbol", self.symbol, "non-empty")
        _require(self.side in (Side.BUY, Side.SELL), "side", self.side, "+1 or -1")
        object.__setattr__(self, "side", Side(self.side))
        _finite_positive("quantity", self.quantity)
        _require(self.end_ns >= self.start_ns, "end_ns", self.end_ns, f">= start_ns ({self.start_ns})")


@dataclass(frozen=True, slots=True)
class ChildOrder:
    """A child order sent to a venue; ``client_order_id`` makes resubmission idempotent."""

    client_order_id: str
    parent_order_id: str
    symbol: str
    side: Side
    quantity: float
    order_type: OrderType
    venue: str
    created_ns: int
    limit_price: float | None = None

    def __post_init__(self) -> None:
        _require(bool(self.client_order_id), "client_order_id", self.client_order_id, "non-empty")
        _require(self.side in (Side.BUY, Side.SELL), "side", self.side, "+1 or -1")
        object.__setattr__(self, "side", Side(self.side))
        object.__setattr__(self, "order_type", OrderType(self.order_type))
        _finite_positive("quantity", self.quantity)
        if self.order_type is OrderType.MARKET:
            _require(self.limit_price is None, "limit_price", self.limit_price, "None for a market order")
        else:
            _require(self.limit_price is not None, "limit_price", self.limit_price, "set for a limit order")
            _finite_positive("limit_price", float(self.limit_price))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of a child order."""

    fill_id: str
    client_order_id: str
    parent_order_id: str
    symbol: str
    side: Side
    quantity: float
    price: float
    ts_ns: int
    venue: str
    liquidity: str = "taker"
    fee: float = 0.0
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        _require(bool(self.fill_id), "fill_id", self.fill_id, "non-empty")
        _require(self.side in (Side.BUY, Side.SELL), "side", self.side, "+1 or -1")
        object.__setattr__(self, "side", Side(self.side))
        _finite_positive("quantity", self.quantity)
        _finite_positive("price", self.price)
        _require(self.liquidity in ("maker", "taker"), "liquidity", self.liquidity, "'maker' or 'taker'")
        _require(math.isfinite(self.fee), "fee", self.fee, "finite")
