"""The service's one frozen configuration."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from impactlab.errors import ServiceError

__all__ = ["API_KEY_HEADER", "SCOPES", "ServiceConfig"]

API_KEY_HEADER = "X-API-Key"
SCOPES = ("read", "trade", "model-admin")
"""What a key may do: ``read`` (estimates, reports, dashboards, metrics), ``trade`` (submit fills for TCA)
and ``model-admin`` (recalibrate and approve a live model's change)."""


@dataclass(frozen=True)
class ServiceConfig:
    """Everything ``impactlab serve`` is told; :meth:`from_dict` refuses unknown keys.

    Parameters
    ----------
    host, port
        Where uvicorn listens (loopback by default).
    api_keys
        Keys accepted in the ``X-API-Key`` header, each ``KEY`` (every scope) or ``SCOPE+SCOPE:KEY`` with
        scopes from :data:`SCOPES` (``read:…``, ``trade:…``, ``read+trade:…``, ``model-admin:…``). With
        none, every endpoint that changes state is refused: the service is read-only until keys are
        configured (``IMPACTLAB_API_KEYS``, comma separated).
    keys_for_reads
        Also require a key on read endpoints (estimates, reports, dashboards, metrics).
    symbols
        Instruments whose models the service calibrates at start-up, found through the data catalog:
        ``SYMBOL``, ``SYMBOL@VENUE`` where it trades on several, ``SYMBOL:YYYY-MM-DD`` for a date.
    data_dir
        Market data (default ``IMPACTLAB_DATA``).
    store_path
        The service's store: TCA'd orders, fills, predictions and model versions.
    hedging_dir
        Hedging stores whose engine status is served (read-only).
    bus_url
        A NATS server (``nats://HOST:PORT``): the service then runs TCA on every hedge the live engine
        finishes (``hedge.>``, durable consumer ``service-tca``); ``IMPACTLAB_BUS_URL`` sets it too.
    max_body_bytes
        Larger request bodies are refused with 413 before they are parsed.
    drift_window, drift_min_orders
        Orders in the drift monitor's current window, and how many it needs before it may alert.
    psi_alert, ks_alpha, error_bias_alert
        Alert thresholds: PSI of a feature, KS p-value, and the relative bias |Σ(realised − predicted)| / Σ|predicted|.
    fill_band_bps, max_fee_bps
        A submitted fill priced further than ``fill_band_bps`` from the mid at its time, or with a fee above
        ``max_fee_bps`` of its notional, is implausible: the submission is refused (422) and nothing is
        recorded.
    writes_per_minute
        State-changing requests one key may make per minute (429 beyond).
    recalibrate_interval_s, approve_above
        At most one recalibration of a symbol per ``recalibrate_interval_s``; one that moves the predicted
        cost of the reference order (0.5% of ADV by VWAP over 30 minutes) by more than the fraction
        ``approve_above`` is held for approval (``POST /models/{version}/approve`` with a model-admin key, or
        ``impactlab models approve``) while the live version keeps serving.
    workers
        Threads that run the CPU work of requests, off the event loop (``/health`` answers while they work);
        0 runs it on the event loop (one request at a time, as a single-threaded embedding wants).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    api_keys: tuple[str, ...] = ()
    keys_for_reads: bool = False
    symbols: tuple[str, ...] = ("GOOG",)
    data_dir: Path | None = None
    store_path: Path | None = None
    hedging_dir: Path | None = None
    bus_url: str | None = None
    max_body_bytes: int = 1_000_000
    drift_window: int = 200
    drift_min_orders: int = 20
    psi_alert: float = 0.25
    ks_alpha: float = 0.01
    error_bias_alert: float = 0.5
    fill_band_bps: float = 1_000.0
    max_fee_bps: float = 100.0
    writes_per_minute: int = 120
    recalibrate_interval_s: float = 60.0
    approve_above: float = 0.5
    workers: int = 4
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not 0 < self.port < 65_536:
            raise ServiceError(f"'port' must be in 1…65535, got {self.port!r}")
        for entry in self.api_keys:
            _, key = self.parse_key(entry)
            if len(key) < 16:
                raise ServiceError("every API key must be at least 16 characters")
        if not (self.fill_band_bps > 0 and self.max_fee_bps > 0 and self.writes_per_minute >= 1):
            raise ServiceError("'fill_band_bps', 'max_fee_bps' and 'writes_per_minute' must be > 0")
        if not (self.recalibrate_interval_s >= 0 and 0 < self.approve_above <= 10 and 0 <= self.workers <= 64):
            raise ServiceError("need recalibrate_interval_s >= 0, 0 < approve_above <= 10, 0 <= workers <= 64")
        import re

        ok = re.compile(r"^[A-Z0-9][A-Z0-9._-]{0,23}(@[A-Z0-9-]{1,24})?(:\d{4}-\d{2}-\d{2})?$")
        if not self.symbols or any(not ok.match(s) for s in self.symbols):
            raise ServiceError(
                "'symbols' must be upper-case instruments (SYMBOL, SYMBOL@VENUE, SYMBOL:YYYY-MM-DD), "
                f"got {self.symbols!r}"
            )
        if not 1_000 <= self.max_body_bytes <= 100_000_000:
            raise ServiceError(f"'max_body_bytes' must be in [1e3, 1e8], got {self.max_body_bytes!r}")
        if not (self.drift_window >= 10 and 2 <= self.drift_min_orders <= self.drift_window):
            raise ServiceError("need drift_window >= 10 and 2 <= drift_min_orders <= drift_window")
        for name in ("psi_alert", "error_bias_alert"):
            if not getattr(self, name) > 0:
                raise ServiceError(f"{name!r} must be > 0, got {getattr(self, name)!r}")
        if not 0 < self.ks_alpha < 1:
            raise ServiceError(f"'ks_alpha' must be in (0, 1), got {self.ks_alpha!r}")
        if self.bus_url is not None and not self.bus_url.startswith(("nats://", "tls://")):
            raise ServiceError(f"'bus_url' must be a nats:// or tls:// URL, got {self.bus_url!r}")

    @staticmethod
    def parse_key(entry: str) -> tuple[frozenset[str], str]:
        """``(scopes, key)`` of one ``api_keys`` entry: ``SCOPE+SCOPE:KEY``, or a bare ``KEY`` with every scope."""
        head, sep, key = entry.partition(":")
        if not sep:
            return frozenset(SCOPES), entry
        scopes = frozenset(head.split("+"))
        if not scopes <= set(SCOPES):
            raise ServiceError(f"unknown API key scope(s) {sorted(scopes - set(SCOPES))}; known: {list(SCOPES)}")
        return scopes, key

    def key_scopes(self) -> list[tuple[bytes, frozenset[str]]]:
        """Every key (bytes, for a constant-time comparison) with its scopes."""
        return [(k.encode(), s) for s, k in map(self.parse_key, self.api_keys)]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ServiceConfig:
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        unknown = set(d) - known
        if unknown:
            raise ServiceError(f"unknown service setting(s) {sorted(unknown)}; known: {sorted(known)}")
        kw = dict(d)
        for k in ("api_keys", "symbols"):
            if k in kw:
                kw[k] = tuple(kw[k])
        for k in ("data_dir", "store_path", "hedging_dir"):
            if kw.get(k) is not None:
                kw[k] = Path(kw[k])
        return cls(**kw)

    @classmethod
    def from_env(cls, **overrides: Any) -> ServiceConfig:
        """Defaults, API keys from ``IMPACTLAB_API_KEYS`` (comma separated) and the bus from
        ``IMPACTLAB_BUS_URL``, then ``overrides``."""
        keys = tuple(k.strip() for k in os.environ.get("IMPACTLAB_API_KEYS", "").split(",") if k.strip())
        env: dict[str, Any] = {"api_keys": keys}
        if os.environ.get("IMPACTLAB_BUS_URL"):
            env["bus_url"] = os.environ["IMPACTLAB_BUS_URL"]
        return cls.from_dict({**env, **{k: v for k, v in overrides.items() if v is not None}})
