"""Prometheus metrics of the service, in a registry of its own: request latency, prediction error, drift
alerts, model versions, and the hedging engine's hedge counts and circuit-breaker state (read at scrape)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["ServiceMetrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
_ERROR_BUCKETS = (-50.0, -20.0, -10.0, -5.0, -2.0, -1.0, 0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
REGIMES = ("normal", "volatility spike", "spread blow-out", "data gap")


class ServiceMetrics:
    """The service's metrics; ``state`` is read at scrape time for the model and hedging gauges."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.latency = Histogram("impactlab_http_request_duration_seconds", "Request latency by route",
                                 ("method", "route", "status"), buckets=_LATENCY_BUCKETS, registry=r)  # fmt: skip
        self.errors = Histogram("impactlab_prediction_error_bps", "Realised minus predicted cost of TCA'd orders",
                                ("symbol",), buckets=_ERROR_BUCKETS, registry=r)  # fmt: skip
        self.orders = Counter("impactlab_tca_orders", "Orders submitted for TCA", ("symbol",), registry=r)
        self.drift_alert = Gauge("impactlab_drift_alert", "1 while the live model's drift monitor alerts",
                                 ("symbol",), registry=r)  # fmt: skip
        self.drift_psi = Gauge("impactlab_feature_psi", "PSI of a feature against the training window",
                               ("symbol", "feature"), registry=r)  # fmt: skip
        r.register(_ScrapeCollector(state))

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.latency.labels(method, route, str(status)).observe(seconds)

    def prediction_error(self, symbol: str, error_bps: float) -> None:
        self.errors.labels(symbol).observe(error_bps)
        self.orders.labels(symbol).inc()

    def drift(self, symbol: str, report: dict[str, Any]) -> None:
        self.drift_alert.labels(symbol).set(1.0 if report["alert"] else 0.0)
        for f in report["features"]:
            if f["psi"] is not None:
                self.drift_psi.labels(symbol, f["feature"]).set(f["psi"])

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _ScrapeCollector:
    """Gauges read from the state when Prometheus scrapes: model versions and the hedging engine."""

    def __init__(self, state: Any) -> None:
        self.state = state

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from impactlab.service.app import hedging_summary

        s = self.state
        scale = GaugeMetricFamily(
            "impactlab_model_multiplier",
            "Each cost part's multiplier in the live model (1 at the market-day calibration)",
            labels=["symbol", "version", "part"],
        )
        for sym, m in s.models.models.items():
            for part, v in m.multipliers.items():
                if part in m.parts:
                    scale.add_metric([sym, m.version, part], float(v))
        yield scale
        h = hedging_summary(s)
        hedges = GaugeMetricFamily(
            "impactlab_hedges", "Hedges journalled, by store and state", labels=["store", "state"]
        )
        breaker = GaugeMetricFamily("impactlab_circuit_breaker", "1 for the circuit breaker's current regime",
                                    labels=["source", "regime"])  # fmt: skip
        trips = GaugeMetricFamily("impactlab_circuit_breaker_trips", "Breaker trips by reason (live engine)",
                                  labels=["reason"])  # fmt: skip
        for row in h["stores"]:
            if "error" in row:
                continue
            hedges.add_metric([row["store"], "decided"], row["hedges"])
            hedges.add_metric([row["store"], "done"], row["hedges_done"])
            if row["last_regime"] is not None:
                for g in REGIMES:
                    breaker.add_metric([row["store"], g], 1.0 if row["last_regime"] == g else 0.0)
        e = h["engine"]
        if e is not None:
            hedges.add_metric(["live", "done"], e["hedges_done"])
            for g in REGIMES:
                breaker.add_metric(["live", g], 1.0 if e["regime"] == g else 0.0)
            for reason, n in e["breaker_trips"].items():
                trips.add_metric([reason], n)
        yield hedges
        yield breaker
        yield trips
