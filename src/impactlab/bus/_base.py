"""The bus interface: publish, subscribe, acknowledge, replay from an offset.

Every implementation keeps one ordered log per bus; a message's ``seq`` is its place in that log (1-based),
the offset a replay starts from.  A *durable* subscription remembers what its consumer acknowledged, so a
consumer that restarts under the same name resumes after its last acknowledgement; acknowledging ``seq``
acknowledges everything before it on that subscription.  A publish with a ``msg_id`` already in the log is
dropped (idempotent publishing: a restarted producer may repeat itself without duplicating anything).

Subjects are dot-separated tokens (``md.GOOG``, ``fills.GOOG``); a subscription's filter may use ``*`` (one
token) and ``>`` (the rest), as NATS does.  A Kafka implementation would map subjects to topics, ``seq`` to
offsets and durable names to consumer groups, in one new module.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType

from impactlab.errors import BusError

__all__ = ["Bus", "Message", "Subscription", "check_subject", "check_subscription", "subject_matches"]

_TOKEN = re.compile(r"^[A-Za-z0-9_\-]+$")


def check_subject(subject: str, *, wildcards: bool = False) -> str:
    """``subject`` if it is valid (tokens of letters, digits, ``_`` or ``-``; ``*``/``>`` where allowed)."""
    toks = subject.split(".") if isinstance(subject, str) else []
    ok = bool(toks) and len(subject) <= 256
    for i, t in enumerate(toks):
        if wildcards and (t == "*" or (t == ">" and i == len(toks) - 1)):
            continue
        ok = ok and bool(_TOKEN.match(t))
    if not ok:
        raise BusError(f"bad subject {subject!r}: dot-separated tokens of letters, digits, '_' or '-'")
    return subject


def check_subscription(subject: str, durable: str | None, start_seq: int | None) -> None:
    """Refuse a bad :meth:`Bus.subscribe` (every implementation checks the same way)."""
    check_subject(subject, wildcards=True)
    if durable is not None:
        check_subject(durable)
    if start_seq is not None and start_seq < 1:
        raise BusError(f"'start_seq' must be >= 1, got {start_seq}")


def subject_matches(pattern: str, subject: str) -> bool:
    """Whether ``subject`` matches the filter ``pattern`` (NATS wildcards)."""
    p, s = pattern.split("."), subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(s) > i
        if i >= len(s) or (tok != "*" and tok != s[i]):
            return False
    return len(p) == len(s)


@dataclass(frozen=True)
class Message:
    """One message as delivered: its subject, payload, place in the log and publisher's id."""

    subject: str
    data: bytes
    seq: int
    msg_id: str | None = None
    redelivered: bool = False


class Subscription(ABC):
    """Messages of one filter, in log order."""

    @abstractmethod
    async def next(self, timeout_s: float = 1.0) -> Message | None:
        """The next message, or ``None`` if none arrives within ``timeout_s``."""

    @abstractmethod
    async def ack(self, msg: Message) -> None:
        """Acknowledge ``msg`` and everything delivered before it (durable subscriptions remember it)."""

    @abstractmethod
    async def close(self) -> None:
        """Stop receiving; a durable consumer's position is kept."""


class Bus(ABC):
    """A message bus (see the module doc)."""

    @abstractmethod
    async def publish(self, subject: str, data: bytes, *, msg_id: str | None = None) -> int:
        """Append a message and wait until the bus has it; returns its ``seq`` (the existing one for a
        duplicate ``msg_id``)."""

    @abstractmethod
    async def publish_nowait(self, subject: str, data: bytes) -> None:
        """Send without waiting for the bus to confirm (market data); :meth:`flush` waits for all of them."""

    @abstractmethod
    async def flush(self) -> None:
        """Wait until every message sent so far is in the log."""

    @abstractmethod
    async def subscribe(
        self, subject: str, *, durable: str | None = None, start_seq: int | None = None
    ) -> Subscription:
        """Messages matching ``subject``: a durable consumer resumes after its last acknowledgement
        (``start_seq`` sets where a new one begins); without ``durable``, from ``start_seq`` (default 1)."""

    @abstractmethod
    async def last_seq(self) -> int:
        """The ``seq`` of the newest message in the log (0 if empty)."""

    @abstractmethod
    async def close(self) -> None:
        """Release the connection."""

    async def __aenter__(self) -> Bus:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
