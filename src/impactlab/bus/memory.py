"""The in-process bus: the default, with the semantics of the NATS JetStream one and no server."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from impactlab.bus._base import Bus, Message, Subscription, check_subject, check_subscription, subject_matches
from impactlab.errors import BusError

__all__ = ["InMemoryBus"]


@dataclass
class _Consumer:
    pattern: str
    acked: int = 0  # every seq <= acked is acknowledged
    active: bool = False


@dataclass
class _Log:
    messages: list[Message] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)
    consumers: dict[str, _Consumer] = field(default_factory=dict)
    subjects: set[str] = field(default_factory=set)  # subjects already checked
    _changed: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None

    def changed(self) -> asyncio.Event:
        """Set by every publish; a waiting subscriber clears it first.  One per event loop: the bus outlives
        an ``asyncio.run`` (a restarted engine in the same process)."""
        loop = asyncio.get_running_loop()
        if self._changed is None or self._changed[0] is not loop:
            self._changed = (loop, asyncio.Event())
        return self._changed[1]


class _MemorySubscription(Subscription):
    def __init__(self, log: _Log, pattern: str, start: int, consumer: _Consumer | None) -> None:
        self.log, self.pattern, self.pos, self.consumer = log, pattern, start - 1, consumer
        self.closed = False

    async def next(self, timeout_s: float = 1.0) -> Message | None:
        if self.closed:
            raise BusError("subscription is closed")
        changed = self.log.changed()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        msgs = self.log.messages
        while True:
            while self.pos < len(msgs):  # no await in this scan, so no publish can slip in between
                m = msgs[self.pos]
                self.pos += 1
                if subject_matches(self.pattern, m.subject):
                    again = self.consumer is not None and m.seq <= self.consumer.acked
                    return Message(m.subject, m.data, m.seq, m.msg_id, again) if again else m
            left = deadline - loop.time()
            if left <= 0:
                return None
            changed.clear()
            try:
                await asyncio.wait_for(changed.wait(), left)
            except TimeoutError:
                return None

    async def ack(self, msg: Message) -> None:
        if self.consumer is not None:
            self.consumer.acked = max(self.consumer.acked, msg.seq)

    async def close(self) -> None:
        self.closed = True
        if self.consumer is not None:
            self.consumer.active = False


class InMemoryBus(Bus):
    """A bus in this process: one log, durable consumers and de-duplication by message id.

    It lives as long as the object: a consumer that is closed and subscribes again under the same durable
    name resumes after its last acknowledgement (a restarted engine in the same process); nothing survives
    the process (that is what the NATS bus is for).
    """

    def __init__(self) -> None:
        self._log = _Log()

    async def publish(self, subject: str, data: bytes, *, msg_id: str | None = None) -> int:
        log = self._log
        if subject not in log.subjects:
            log.subjects.add(check_subject(subject))
        if msg_id is not None and msg_id in log.ids:
            return log.ids[msg_id]
        seq = len(log.messages) + 1
        log.messages.append(Message(subject, bytes(data), seq, msg_id))
        if msg_id is not None:
            log.ids[msg_id] = seq
        log.changed().set()
        return seq

    async def publish_nowait(self, subject: str, data: bytes) -> None:
        await self.publish(subject, data)

    async def flush(self) -> None:
        return None

    async def subscribe(
        self, subject: str, *, durable: str | None = None, start_seq: int | None = None
    ) -> Subscription:
        check_subscription(subject, durable, start_seq)
        if durable is None:
            return _MemorySubscription(self._log, subject, start_seq or 1, None)
        c = self._log.consumers.get(durable)
        if c is None:
            c = self._log.consumers[durable] = _Consumer(subject, acked=(start_seq or 1) - 1)
        elif c.pattern != subject:
            raise BusError(f"durable consumer {durable!r} follows {c.pattern!r}, not {subject!r}")
        if c.active:
            raise BusError(f"durable consumer {durable!r} already has a subscriber")
        c.active = True
        return _MemorySubscription(self._log, subject, c.acked + 1, c)

    async def last_seq(self) -> int:
        return len(self._log.messages)

    async def close(self) -> None:
        return None
